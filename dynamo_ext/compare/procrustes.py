"""Orthogonal Procrustes distance between two models' hidden trajectories.

Centred, unit-Frobenius-norm representations (Ding, Denain & Steinhardt,
NeurIPS 2021, arXiv:2108.01661; Williams et al., NeurIPS 2021), solved with
``scipy.linalg.orthogonal_procrustes``.
"""
from __future__ import annotations

import numpy as np

from .representation import paired_representations
from .all_pairs import arrays_form, gemm_estimate, shared_matrix
from .registry import Measure, register


def procrustes_distance(h_a, h_b) -> float:
    """Orthogonal Procrustes distance min_R ||X - Y R||_F over orthogonal R, X and Y centred and
    scaled to unit Frobenius norm (the smaller one zero-padded to the larger width).

    Returns:
        A distance in [0, sqrt(2)]: sqrt(2 - 2 ||X^T Y||_*).

    Raises:
        ValueError: different sample counts.
    """
    a, b = paired_representations(h_a, h_b)
    x, y = a.unit, b.unit
    width = max(x.shape[1], y.shape[1])
    x = np.pad(x, ((0, 0), (0, width - x.shape[1])))
    y = np.pad(y, ((0, 0), (0, width - y.shape[1])))
    from scipy.linalg import orthogonal_procrustes  # SciPy loaded when first used

    _, nuclear = orthogonal_procrustes(y, x)  # scale = sum of singular values of y^T x
    return float(np.sqrt(max(2.0 - 2.0 * nuclear, 0.0)))


MEASURE = register(Measure(
    name="procrustes", description="orthogonal Procrustes distance of centred, unit-norm representations",
    range="sqrt(2 - 2 * nuclear norm of X^T Y), in [0, sqrt(2)]",
    source="Williams, Kunz, Kornblith & Linderman, NeurIPS 2021; Ding, Denain & Steinhardt, NeurIPS 2021 (arXiv:2108.01661)",
    reads="hidden", matrix=shared_matrix("procrustes"), pair=procrustes_distance, arrays=arrays_form("procrustes"),
    options=(), estimate_seconds=gemm_estimate("procrustes")))
