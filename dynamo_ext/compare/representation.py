"""Hidden trajectories as sample matrices, and their principal subspaces.

Each model's hidden states on the same probe inputs, flattened over sequences
and steps into n = S*T samples of d_n features: the input of every
representation-similarity measure in ``dynamo_ext.compare``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _samples(h) -> np.ndarray:
    """Hidden states [S, T, d] (or [n, d]) as centred float64 samples [n, d]."""
    a = h.detach().cpu().double().numpy() if isinstance(h, Tensor) else np.asarray(h, dtype=np.float64)
    a = a.reshape(-1, a.shape[-1])
    if not np.isfinite(a).all():
        raise ValueError(f"representations must be finite, got {int((~np.isfinite(a)).sum())} NaN or Inf entries")
    if a.shape[0] < 4:
        raise ValueError(f"representations must hold at least 4 samples, got shape {a.shape}")
    return a - a.mean(0)


def hsic_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Song et al. (2012) unbiased HSIC of the linear kernels K = x x^T, L = y y^T, in O(n d^2)."""
    n = x.shape[0]
    kd, ld = (x * x).sum(1), (y * y).sum(1)  # diag(K), diag(L)
    trace = float(np.square(x.T @ y).sum() - (kd * ld).sum())  # tr(K~ L~), K~ = K with zero diagonal
    k1, l1 = x @ x.sum(0) - kd, y @ y.sum(0) - ld  # K~ 1, L~ 1
    return (trace + k1.sum() * l1.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * float(k1 @ l1)) / (n * (n - 3))


class Representation:
    """One model's hidden states prepared once for every pairwise comparison: centred float64
    samples [n, d], its own unbiased HSIC, its top singular directions (SVCCA) and its
    unit-norm version (Procrustes)."""

    def __init__(self, h, variance_kept: float = 0.99):
        if not 0 < variance_kept <= 1:
            raise ValueError(f"argument 'variance_kept' must lie in (0, 1], got {variance_kept}")
        self.x = _samples(h)
        self.variance_kept = variance_kept
        self._hsic = self._top = self._unit = None

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def self_hsic(self) -> float:
        if self._hsic is None:
            self._hsic = max(hsic_unbiased(self.x, self.x), 0.0)
        return self._hsic

    @property
    def top_directions(self) -> np.ndarray:
        if self._top is None:
            from scipy.linalg import svd  # SciPy loaded when first used

            u, s, _ = svd(self.x, full_matrices=False)
            energy = np.cumsum(s ** 2) / max(float((s ** 2).sum()), 1e-300)
            k = int(np.searchsorted(energy, self.variance_kept) + 1)
            self._top = u[:, :min(k, len(s))]
        return self._top

    @property
    def unit(self) -> np.ndarray:
        if self._unit is None:
            self._unit = self.x / max(np.linalg.norm(self.x), 1e-300)
        return self._unit


def paired_representations(h_a, h_b, variance_kept: float = 0.99):
    """Two Representations of the same samples (arrays, tensors or Representations); ValueError when
    their sample counts differ."""
    a = h_a if isinstance(h_a, Representation) else Representation(h_a, variance_kept)
    b = h_b if isinstance(h_b, Representation) else Representation(h_b, variance_kept)
    if a.n != b.n:
        raise ValueError(f"representations must have the same number of samples (same probe inputs), "
                         f"got {a.n} and {b.n}")
    return a, b


def as_array(x, i: int) -> np.ndarray:
    """Entry ``i`` of ``data`` as a finite float64 array [trials, time, units] or [samples, units]."""
    if isinstance(x, torch.Tensor):
        a = x.detach().cpu().double().numpy()
    else:
        try:
            a = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"argument 'data' must hold arrays or tensors, entry {i} is a "
                             f"{type(x).__name__} ({exc})") from None
    if a.ndim not in (2, 3):
        raise ValueError(f"argument 'data' entry {i} must be [trials, time, units] or [samples, units], "
                         f"got shape {tuple(a.shape)}")
    if not np.isfinite(a).all():
        raise ValueError(f"argument 'data' entry {i} must be finite, got {int((~np.isfinite(a)).sum())} NaN or "
                         f"Inf values")
    return a
