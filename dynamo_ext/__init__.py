"""dynamo_ext: DYNAMO (dynamical model embedding) for PyTorch.

Cotler, Tai, Hernandez, Elias, Sussillo, "Analyzing Populations of Neural
Networks via Dynamical Model Embedding", arXiv:2302.14078 (2023).

A population of trained base models (RNNs, or CNNs of one depth family) is
emulated by one meta-model (MetaRNN, MetaCNN) whose low-dimensional model
embedding theta selects which base model it emulates.

The package follows the method's parts: ``population`` (tasks, base models,
training, recording), ``meta`` (meta-models, loss, fitting, checkpoints),
``uses`` (embed, average, cluster, adapt, reparameterize), ``dynamics``
(fixed points, scans, fidelity), ``compare`` (the baseline and peer
measures), ``report`` (analysis, Markdown and HTML); ``ops`` and
``reference`` are the compiled ops and their plain-PyTorch references.
"""
from ._extension import load_extension as _load_extension

_C = _load_extension()

from . import ops, reference  # noqa: E402
from .population import CTRNN, BaseCNN, BaseRNN, Population, Recording, TaskData, load_task, train_population  # noqa: E402,E501
from .meta import FitResult, MetaCNN, MetaRNN, fit, load_meta, save_meta  # noqa: E402
from .uses.embed import embed  # noqa: E402
from .uses.average import average  # noqa: E402
from .uses.cluster import ClusterResult, cluster  # noqa: E402
from .uses.adapt import adapt  # noqa: E402
from .uses.reparameterize import reparameterize  # noqa: E402
from . import compare, dynamics, report, uses  # noqa: E402
from .dynamics import fidelity, find_fixed_points  # noqa: E402
from . import _legacy  # noqa: E402

_legacy.install(__name__)
baselines = compare  # the comparison package's name before the layout by the method's parts
fixed_points = dynamics  # find_fixed_points, FixedPoints, scan, ... (dynamo_ext.dynamics)

__version__ = "0.1.0"
WITH_CUDA = bool(_C.WITH_CUDA)

__all__ = [
    "BaseCNN", "BaseRNN", "CTRNN", "ClusterResult", "FitResult", "MetaCNN", "MetaRNN", "Population", "Recording", "TaskData",
    "WITH_CUDA", "adapt", "average", "baselines", "cluster", "compare", "dynamics", "embed", "fidelity",
    "find_fixed_points", "fit", "fixed_points", "load_meta", "load_task", "ops", "reference", "report",
    "reparameterize", "save_meta", "train_population", "uses",
]
