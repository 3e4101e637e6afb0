"""Hidden trajectories as sample matrices, and their principal subspaces.

Each model's hidden states on the same probe inputs, flattened over sequences
and steps into n = S*T samples of d_n features: the input of every
representation-similarity measure in ``dynamo_ext.compare``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def is_on_disk(h) -> bool:
    """Whether ``h`` is hidden states read from a file on use (``population.disk_recording.HiddenOnDisk``)."""
    return hasattr(h, "chunks") and hasattr(h, "tensor")


def _sample_view(h):
    """Hidden states [S, T, d] (or [n, d]) as a view [n, d] of the caller's array or tensor (no copy where
    the layout allows), after checking it is finite and holds at least 4 samples; states on disk
    (``HiddenOnDisk``, checked finite when they were recorded) are kept as they are."""
    if is_on_disk(h):
        n = int(np.prod(h.shape[:-1]))
        if n < 4:
            raise ValueError(f"representations must hold at least 4 samples, got shape {tuple(h.shape)}")
        return h
    if isinstance(h, Tensor):
        a = h.detach().cpu()
        a = a.reshape(-1, a.shape[-1])
        bad = int((~torch.isfinite(a)).sum())
    else:
        a = np.asarray(h)
        if not np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float64)
        a = a.reshape(-1, a.shape[-1])
        bad = int((~np.isfinite(a)).sum())
    if bad:
        raise ValueError(f"representations must be finite, got {bad} NaN or Inf entries")
    if a.shape[0] < 4:
        raise ValueError(f"representations must hold at least 4 samples, got shape {tuple(a.shape)}")
    return a


def hsic_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Song et al. (2012) unbiased HSIC of the linear kernels K = x x^T, L = y y^T, in O(n d^2)."""
    n = x.shape[0]
    kd, ld = (x * x).sum(1), (y * y).sum(1)  # diag(K), diag(L)
    trace = float(np.square(x.T @ y).sum() - (kd * ld).sum())  # tr(K~ L~), K~ = K with zero diagonal
    k1, l1 = x @ x.sum(0) - kd, y @ y.sum(0) - ld  # K~ 1, L~ 1
    return (trace + k1.sum() * l1.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * float(k1 @ l1)) / (n * (n - 3))


class Representation:
    """One model's hidden states prepared for every pairwise comparison.

    It reads the given array or tensor in place (no copy; do not change it while the Representation is
    in use), or states on disk when asked for them, and keeps only its float64 column means, so N of
    them cost no more memory than the recording itself. The centred float64 samples [n, d] (``x``), the unit-norm version (Procrustes, ``unit``) and
    the top singular directions (SVCCA, ``top_directions``) are computed when asked for; ``svcca_map``,
    the [d, k] map from the centred samples to those directions, is kept (it is small)."""

    def __init__(self, h, variance_kept: float = 0.99):
        if not 0 < variance_kept <= 1:
            raise ValueError(f"argument 'variance_kept' must lie in (0, 1], got {variance_kept}")
        self._h = _sample_view(h)
        if is_on_disk(self._h):
            total = sum(c.reshape(-1, c.shape[-1]).sum(0, dtype=torch.float64) for c in self._h.chunks(256))
            self._mean = (total / self.n).numpy()
        elif isinstance(self._h, Tensor):
            self._mean = self._h.sum(0, dtype=torch.float64).numpy() / self._h.shape[0]
        else:
            self._mean = self._h.sum(0, dtype=np.float64) / self._h.shape[0]
        self.variance_kept = variance_kept
        self._hsic = self._top = self._map = self._norm = None

    @property
    def n(self) -> int:
        return int(np.prod(self._h.shape[:-1]))

    @property
    def width(self) -> int:
        return int(self._h.shape[-1])

    def centred(self) -> Tensor:
        """The centred samples as a new float64 tensor [n, d] (read from disk for states on disk)."""
        if is_on_disk(self._h):
            h = self._h.tensor().reshape(self.n, self.width)
        else:
            h = self._h if isinstance(self._h, Tensor) else torch.from_numpy(np.asarray(self._h))
        return h.to(torch.float64, copy=True).sub_(torch.from_numpy(self._mean))

    @property
    def x(self) -> np.ndarray:
        """Centred float64 samples [n, d] (computed on each access)."""
        return self.centred().numpy()

    def prepare(self, norm: bool = False, svcca: bool = False) -> Tensor:
        """The centred samples [n, d] (``centred``), read once, with the kept ``norm`` and ``svcca_map``
        computed from them where asked for and not yet kept."""
        x = self.centred()
        if norm and self._norm is None:
            self._norm = max(float(torch.linalg.norm(x)), 1e-300)
        if svcca and self._map is None:
            s2, v = np.linalg.eigh((x.t() @ x).numpy())
            s2, v = np.clip(s2[::-1], 0.0, None), v[:, ::-1]
            k = self._kept(s2)
            keep = s2[:k] > 1e-300
            self._map = np.ascontiguousarray(v[:, :k][:, keep] / np.sqrt(s2[:k][keep]))
        return x

    @property
    def norm(self) -> float:
        """||x||_F (at least 1e-300)."""
        if self._norm is None:
            self.prepare(norm=True)
        return self._norm

    @property
    def self_hsic(self) -> float:
        if self._hsic is None:
            x = self.x
            self._hsic = max(hsic_unbiased(x, x), 0.0)
        return self._hsic

    def _kept(self, s2: np.ndarray) -> int:
        """How many of the squared singular values ``s2`` (descending) hold ``variance_kept`` of their sum."""
        energy = np.cumsum(s2) / max(float(s2.sum()), 1e-300)
        return min(int(np.searchsorted(energy, self.variance_kept) + 1), len(s2))

    @property
    def top_directions(self) -> np.ndarray:
        """The left singular vectors [n, k] of x holding ``variance_kept`` of its variance (SVD; kept once
        computed)."""
        if self._top is None:
            from scipy.linalg import svd  # SciPy loaded when first used

            u, s, _ = svd(self.x, full_matrices=False)
            self._top = np.ascontiguousarray(u[:, :self._kept(s ** 2)])
        return self._top

    @property
    def svcca_map(self) -> np.ndarray:
        """W [d, k] = V_k diag(1 / s_k), so that x W = ``top_directions`` (up to signs), from the
        eigendecomposition of x^T x; its singular values below 1e-300 are left out."""
        if self._map is None:
            self.prepare(svcca=True)
        return self._map

    @property
    def unit(self) -> np.ndarray:
        """x / ||x||_F."""
        return self.x / self.norm


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
