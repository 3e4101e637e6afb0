"""dynamo_ext: DYNAMO (dynamical model embedding) for PyTorch.

Cotler, Tai, Hernandez, Elias, Sussillo, "Analyzing Populations of Neural
Networks via Dynamical Model Embedding", arXiv:2302.14078 (2023).

A population of trained base models (RNNs, or CNNs of one depth family) is
emulated by one meta-model (MetaRNN, MetaCNN) whose low-dimensional model
embedding theta selects which base model it emulates.

The package follows the method's parts: ``population`` (tasks, base models,
training, recording), ``meta`` (meta-models, loss, fitting, checkpoints),
``uses`` (embed, average, cluster, adapt, reparameterize, spread across fits), ``dynamics``
(fixed points, scans, fidelity), ``compare`` (the baseline and peer
measures), ``report`` (analysis, Markdown and HTML); ``ops`` and
``reference`` are the compiled ops and their plain-PyTorch references.
``DYNAMO`` (``estimator``) is the same method as a scikit-learn estimator;
``explore`` (``explorer``, the ``[explore]`` extra) opens the embedding space
in the browser. The report, the estimator and the explorer load when first
used: ``import dynamo_ext`` loads neither matplotlib, plotly, scikit-learn nor
SciPy.
"""
import importlib as _importlib

from ._extension import load_extension as _load_extension
from ._version import __version__  # noqa: F401

_C = _load_extension()

from . import ops, reference  # noqa: E402
from .population import CTRNN, BaseCNN, BaseRNN, Population, Recording, TaskData, load_task, train_population  # noqa: E402,E501
from .meta import FitResult, MetaCNN, MetaRNN, fit, load_meta, save_meta  # noqa: E402
from .uses import ClusterResult, Spread, adapt, average, cluster, embed, reparameterize, spread  # noqa: E402
from .meta.spread import FitSpread  # noqa: E402
from . import compare, dynamics, uses  # noqa: E402
from .dynamics import fidelity, find_fixed_points  # noqa: E402

WITH_CUDA = bool(_C.WITH_CUDA)

# Loaded when first used (PEP 562): the report draws with matplotlib and plotly, the estimator reads
# scikit-learn's base class, the explorer is a Dash app; ``import dynamo_ext`` loads none of them (nor SciPy).
_LAZY = {"report": "report", "cli": "cli", "demo": "demo", "DYNAMO": "estimator", "explore": "explorer",
         "explorer": "explorer"}
_LAZY_NAMES = {"DYNAMO": "DYNAMO", "explore": "explore"}  # a name inside its module, not the module


def __getattr__(name):
    if name in _LAZY:
        module = _importlib.import_module(f"{__name__}.{_LAZY[name]}")
        value = getattr(module, _LAZY_NAMES[name]) if name in _LAZY_NAMES else module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "BaseCNN", "BaseRNN", "CTRNN", "ClusterResult", "DYNAMO", "explore", "FitResult", "FitSpread", "Spread", "MetaCNN", "MetaRNN", "Population",
    "Recording", "TaskData", "WITH_CUDA", "adapt", "average", "cluster", "compare", "dynamics", "embed", "fidelity",
    "find_fixed_points", "fit", "load_meta", "load_task", "ops", "reference", "report", "reparameterize",
    "save_meta", "spread", "train_population", "uses",
]
