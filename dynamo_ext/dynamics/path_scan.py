"""Fixed points along a path in embedding space: where the meta-model's attractors appear and vanish.

``scan`` solves the fixed points of the meta-model at each theta of a path
(``embedding_path``: straight lines between models' embeddings), the
bifurcation analysis of arXiv:2302.14078 section 4.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import Tensor

from .._checks import check_positive_int, check_tensor
from ..meta.rnn import MetaRNN
from ..uses.averaging import resolve_ids
from ..uses.extrapolation import support
from .fixed_points import find_fixed_points


@dataclass
class ScanResult:
    """Fixed points of a meta-model along a path or grid of embeddings.

    Attributes:
        thetas: [P, m] the embeddings scanned; points: one FixedPoints per theta.
    """

    thetas: Tensor
    points: list
    support: Optional[list] = None

    def table(self) -> list:
        """One row per theta: counts of fixed points by type (stable; saddles with one
        unstable direction; more unstable directions) and of slow points; the nearest base model and the
        distance to it in median nearest-neighbour distances, and whether that marks an extrapolation
        (``uses.extrapolation``)."""
        rows = []
        for i, (theta, fps) in enumerate(zip(self.thetas, self.points)):
            n_unstable = fps.n_unstable
            rows.append({"index": i, "theta": theta.tolist(), "n_fixed_points": len(fps),
                         "n_stable": int(fps.is_stable.sum()), "n_saddle_1": int((n_unstable == 1).sum()),
                         "n_unstable_more": int((n_unstable > 1).sum()), "n_slow_points": len(fps.slow_points)})
            if self.support is not None:
                s = self.support[i]
                rows[-1].update({"nearest_model": s["nearest_model"], "nn_distance": s["relative_distance"],
                                 "extrapolation": s["extrapolation"]})
        return rows


def embedding_path(meta: MetaRNN, start: Union[int, str], end: Union[int, str], steps: int = 11) -> Tensor:
    """[steps, m] embeddings on the straight line from model ``start``'s theta to model ``end``'s."""
    check_positive_int(steps, "steps", minimum=2)
    a, b = resolve_ids(meta, [start, end], "start/end")
    t = torch.linspace(0, 1, steps, dtype=meta.theta.dtype).unsqueeze(1)
    th = meta.theta.detach()
    return th[a] * (1 - t) + th[b] * t


def scan(meta: MetaRNN, thetas: Tensor, inputs: Optional[Tensor] = None, probe_x: Optional[Tensor] = None,
         n_inits: int = 128, noise: float = 0.01, tol: float = 1e-10, max_iter: int = 100, seed: int = 0,
         **kwargs) -> ScanResult:
    """Fixed points of ``meta`` at each embedding of ``thetas`` [P, m] (a path or a grid).

    Initial states come from the meta-model's own trajectories on ``probe_x``
    [B, T, I] at each theta when given, else uniform in [-1, 1]^D. Further
    keyword arguments go to ``find_fixed_points``. How the number and type of
    fixed points change along the scan shows the bifurcations of the
    embedding space (docs/method.md, "Fixed points").

    Raises:
        ValueError: thetas not of shape [P, m], bad settings.
    """
    if not isinstance(meta, MetaRNN):
        raise ValueError(f"argument 'meta' must be a MetaRNN, got {type(meta).__name__}")
    check_tensor(thetas, "thetas", shape=[None, meta.embedding_dim])
    points = []
    for theta in thetas:
        trajectories = None
        if probe_x is not None:
            with torch.no_grad():
                trajectories = meta(probe_x.to(meta.theta.dtype), theta=theta.to(meta.theta.dtype))[0]
        points.append(find_fixed_points(meta, inputs=inputs, trajectories=trajectories, n_inits=n_inits,
                                        noise=noise, tol=tol, max_iter=max_iter, theta=theta, seed=seed, **kwargs))
    return ScanResult(thetas.detach().clone(), points, [support(meta, t.to(meta.theta.dtype)) for t in thetas])
