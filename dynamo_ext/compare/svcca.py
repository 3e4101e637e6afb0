"""Singular vector CCA (SVCCA) between two models' hidden trajectories.

Raghu, Gilmer, Yosinski & Sohl-Dickstein, NeurIPS 2017 (arXiv:1706.05806):
keep the top singular directions holding 99% of the variance, then the mean
canonical correlation.
"""
from __future__ import annotations

import numpy as np

from .representation import paired_representations
from .all_pairs import arrays_form, gemm_estimate, shared_matrix
from .registry import Measure, register


def svcca(h_a, h_b, variance_kept: float = 0.99) -> float:
    """SVCCA similarity: mean canonical correlation of the top singular subspaces.

    Args:
        h_a, h_b: hidden states on the same probe inputs ([S, T, d] or [n, d]).
        variance_kept: fraction of variance kept by the SVD step (Raghu et al.
            2017: 0.99); Representation arguments keep their own.

    Returns:
        Mean canonical correlation in [0, 1].

    Raises:
        ValueError: different sample counts, variance_kept outside (0, 1].
    """
    a, b = paired_representations(h_a, h_b, variance_kept)
    # the top directions are orthonormal bases of the reduced representations: the
    # canonical correlations are the singular values of ua^T ub
    from scipy.linalg import svd  # SciPy loaded when first used

    rho = svd(a.top_directions.T @ b.top_directions, compute_uv=False)
    return float(np.clip(rho, 0.0, 1.0).mean())


MEASURE = register(Measure(
    name="svcca", description="1 - SVCCA (mean canonical correlation of the top singular subspaces)",
    range="in [0, 1]",
    source="Raghu, Gilmer, Yosinski & Sohl-Dickstein, NeurIPS 2017 (arXiv:1706.05806)",
    reads="hidden", matrix=shared_matrix("svcca"), pair=lambda a, b: 1.0 - svcca(a, b), arrays=arrays_form("svcca"),
    options=("variance_kept",), estimate_seconds=gemm_estimate("svcca")))
