"""Dynamics: fixed points and slow points of base models and of the meta-model across embedding space.

For constant input x*, a fixed point solves z* = cell(z*, x*) (Sussillo &
Barak 2013); for the meta-model at theta, docs/method.md "Fixed points"
and arXiv:2302.14078 section 4.

Modules: ``cells`` (the weights the fused Newton op reads), ``fixed_points``
(the search: initial states, Newton / Levenberg-Marquardt, de-duplication),
``points`` (FixedPoints: residuals, Jacobians, eigenvalues, classes),
``path_scan`` (``scan``: fixed points along a path in embedding space), ``attractor_fidelity``
(``fidelity``: whether the meta-model at theta_n has base model n's attractors),
``linearization`` (its Jacobian there, in full and through the map A_n; the British
``linearisation`` answers for one release with a DeprecationWarning),
``plots`` (fixed points drawn into matplotlib axes).
"""
from .cells import FUSED, SUPPORTED, CellWeights, NoFusedCell, cell_weights
from .points import FixedPoints
from .fixed_points import SolverSettings, find_fixed_points
from .path_scan import ScanResult, embedding_path, scan
from .attractor_fidelity import fidelity

__all__ = ["CellWeights", "FUSED", "FixedPoints", "NoFusedCell", "SUPPORTED", "ScanResult", "SolverSettings", "cell_weights",
           "embedding_path", "fidelity", "find_fixed_points", "scan"]


def __getattr__(name):
    if name == "linearisation":  # the British spelling of one release; removed in the next
        import importlib
        import warnings

        warnings.warn("dynamo_ext.dynamics.linearisation is dynamo_ext.dynamics.linearization; the British "
                      "spelling will be removed in the next release", DeprecationWarning, stacklevel=2)
        return importlib.import_module(f"{__name__}.linearization")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
