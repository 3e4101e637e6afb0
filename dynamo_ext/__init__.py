"""dynamo_ext: DYNAMO (dynamical model embedding) for PyTorch.

Cotler, Tai, Hernandez, Elias, Sussillo, "Analyzing Populations of Neural
Networks via Dynamical Model Embedding", arXiv:2302.14078 (2023).

A population of trained base models (RNNs, or CNNs of one depth family) is
emulated by one meta-model (MetaRNN, MetaCNN) whose low-dimensional model
embedding theta selects which base model it emulates.
"""
from ._extension import load_extension as _load_extension

_C = _load_extension()

from . import ops, reference  # noqa: E402
from .tasks import TaskData, load_task  # noqa: E402
from .ctrnn import CTRNN  # noqa: E402
from .zoo import BaseRNN, Population, Recording, train_population  # noqa: E402
from .meta import MetaRNN  # noqa: E402
from .cnn import BaseCNN  # noqa: E402
from .meta_cnn import MetaCNN  # noqa: E402
from .fit import FitResult, fit, load_meta, save_meta  # noqa: E402
from .embed import embed  # noqa: E402
from .average import average  # noqa: E402
from .cluster import ClusterResult, cluster  # noqa: E402
from .adapt import adapt  # noqa: E402
from .reparameterize import reparameterize  # noqa: E402
from . import baselines  # noqa: E402
from . import fixed_points, fidelity  # noqa: E402
from .fixed_points import find_fixed_points  # noqa: E402

__version__ = "0.1.0"
WITH_CUDA = bool(_C.WITH_CUDA)

__all__ = [
    "BaseCNN", "BaseRNN", "CTRNN", "ClusterResult", "FitResult", "MetaCNN", "MetaRNN", "Population", "Recording", "TaskData",
    "WITH_CUDA", "adapt", "average", "baselines", "cluster", "embed", "fidelity", "find_fixed_points", "fit",
    "fixed_points", "load_meta", "load_task", "ops", "reference", "reparameterize", "save_meta", "train_population",
]
