"""Linear centred kernel alignment (CKA) between two models' hidden trajectories.

Kornblith, Norouzi, Lee & Hinton, ICML 2019 (arXiv:1905.00414), with the
debiased HSIC estimator of Song, Smola, Gretton, Bedo & Borgwardt (JMLR 2012,
Eq. 5) as used by Nguyen, Raghu & Kornblith (ICLR 2021, arXiv:2010.15327).
"""
from __future__ import annotations

import numpy as np

from .representation import hsic_unbiased, paired_representations
from .all_pairs import arrays_form, gemm_estimate, shared_matrix
from .registry import Measure, register


def linear_cka(h_a, h_b, debiased: bool = True) -> float:
    """Linear CKA between two representations of the same samples.

    Args:
        h_a, h_b: hidden states [S, T, d_a] and [S, T, d_b] (or [n, d]) on the
            same probe inputs; tensors, arrays or Representation objects.
        debiased: use the unbiased HSIC estimator (Song et al. 2012);
            otherwise ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on centred X, Y.

    Returns:
        CKA in [0, 1] (the debiased value may leave [0, 1] slightly); 1 means
        the same representation up to rotation and isotropic scaling.

    Raises:
        ValueError: different sample counts, fewer than 4 samples, NaN/Inf.
    """
    a, b = paired_representations(h_a, h_b)
    x, y = a.x, b.x
    if debiased:
        denom = np.sqrt(a.self_hsic * b.self_hsic)
        return float(hsic_unbiased(x, y) / denom) if denom > 0 else 0.0
    denom = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(np.square(x.T @ y).sum() / denom) if denom > 0 else 0.0


MEASURE = register(Measure(
    name="cka", description="1 - debiased linear CKA",
    range="in [0, 1] (the debiased estimate may exceed 1 slightly)",
    source="Kornblith, Norouzi, Lee & Hinton, ICML 2019 (arXiv:1905.00414); debiased HSIC: Song et al., JMLR 2012, Eq. 5",
    reads="hidden", matrix=shared_matrix("cka"), pair=lambda a, b: 1.0 - linear_cka(a, b), arrays=arrays_form("cka"),
    options=(), estimate_seconds=gemm_estimate("cka")))
