"""FixedPoints: the fixed points found, their residuals, Jacobians and eigenvalues, and their classes.

A point z* is stable iff the discrete-time step Jacobian dcell/dz at z* has
max |lambda| < 1 (Sussillo & Barak 2013); it is a slow point when its
residual q = ||cell(z*) - z*||^2 / 2 is small but not zero.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import torch
from torch import Tensor

from .. import _io
from ..meta.rnn import MetaRNN
from ..uses.averaging import resolve_ids
from .cells import CellWeights


@dataclass
class FixedPoints:
    """Fixed points (or slow points) of one cell at constant inputs.

    Attributes:
        states: [P, D] float64; inputs: [P, I] the constant input of each point.
        residuals: [P] ||cell(z) - z||_inf; q: [P] 0.5 ||cell(z) - z||_2^2.
        iterations: [P] Newton iterations; converged: [P] bool.
        jacobians: [P, D, D] the step Jacobian dcell/dz at each point.
        cell: the fused cell that solved them ("tanh", "gru", "lstm"), or
            "autograd" (a step function solved by ``reference.newton_solve``).
        contexts: [C, I] when ``find_fixed_points`` got several contexts
            (``per_context`` splits the points by them), else None.
    """

    states: Tensor
    inputs: Tensor
    residuals: Tensor
    q: Tensor
    iterations: Tensor
    converged: Tensor
    jacobians: Tensor
    weights: Optional[CellWeights] = field(repr=False)
    meta: Optional[MetaRNN] = field(default=None, repr=False)
    slow_points: Optional["FixedPoints"] = field(default=None, repr=False)
    cell: str = "autograd"
    contexts: Optional[Tensor] = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.states.shape[0])

    def __repr__(self) -> str:
        if len(self) == 0:
            return f"FixedPoints(0 points, cell={self.cell!r}, state_size={self.states.shape[1]})"
        n_unstable = self.n_unstable
        slow = len(self.slow_points) if self.slow_points is not None else 0
        return (f"FixedPoints({len(self)} points: {int((n_unstable == 0).sum())} stable, "
                f"{int((n_unstable == 1).sum())} with 1 unstable direction, {int((n_unstable > 1).sum())} with more; "
                f"{slow} slow points; cell={self.cell!r}, state_size={self.states.shape[1]}, "
                + (f"{len(self.contexts)} contexts, " if self.contexts is not None else "") +
                f"max residual {float(self.residuals.max()):.1e})")

    @property
    def eigenvalues(self) -> Tensor:
        """[P, D] complex eigenvalues of dcell/dz, sorted by decreasing modulus."""
        ev = torch.linalg.eigvals(self.jacobians)
        order = ev.abs().argsort(dim=-1, descending=True)
        return torch.gather(ev, -1, order)

    @property
    def is_stable(self) -> Tensor:
        """[P] bool: max |eigenvalue| < 1 (discrete-time stability)."""
        if len(self) == 0:
            return torch.zeros(0, dtype=torch.bool)
        return self.eigenvalues.abs().amax(-1) < 1

    @property
    def n_unstable(self) -> Tensor:
        """[P] number of eigenvalues with modulus > 1 (unstable directions)."""
        if len(self) == 0:
            return torch.zeros(0, dtype=torch.long)
        return (self.eigenvalues.abs() > 1).sum(-1)

    def select(self, mask: Tensor) -> "FixedPoints":
        return FixedPoints(self.states[mask], self.inputs[mask], self.residuals[mask], self.q[mask],
                           self.iterations[mask], self.converged[mask], self.jacobians[mask], self.weights, self.meta,
                           cell=self.cell, contexts=self.contexts)

    def per_context(self) -> list:
        """One FixedPoints per context (the rows of ``contexts``, or of the distinct inputs), in order;
        each with its slow points."""
        contexts = self.contexts if self.contexts is not None else torch.unique(self.inputs, dim=0)
        out = []
        for c in contexts:
            fps = self.select((self.inputs == c).all(-1))
            fps.contexts = None
            if self.slow_points is not None:
                fps.slow_points = self.slow_points.select((self.slow_points.inputs == c).all(-1))
                fps.slow_points.contexts = None
            out.append(fps)
        return out

    def deduplicate(self, tol: float = 1e-6) -> "FixedPoints":
        """Keep one point per cluster of states closer than ``tol`` (Euclidean), the lowest q first."""
        if len(self) == 0:
            return self
        order = self.q.argsort()
        covered = torch.zeros(len(self), dtype=torch.bool)
        keep = []
        for i in order.tolist():  # greedy, lowest q first; one vector test per kept point
            if covered[i]:
                continue
            keep.append(i)
            covered |= ((self.states - self.states[i]).norm(dim=-1) <= tol) & (self.inputs == self.inputs[i]).all(-1)
        return self.select(torch.tensor(sorted(keep), dtype=torch.long))

    def to_base(self, model_id: Union[int, str]) -> Tensor:
        """States mapped into a base model's hidden coordinates through its linear map A_n (MetaRNN only)."""
        if self.meta is None:
            raise ValueError("to_base needs fixed points of a MetaRNN; these come from a plain RNN (or were "
                             "loaded without one: FixedPoints.load(path, meta=...))")
        n = resolve_ids(self.meta, [model_id], "model_id")[0]
        hmap = self.meta.maps[n]
        with torch.no_grad():
            return hmap.to_base(self.states.to(hmap.mean.dtype)).to(self.states.dtype)

    _FIELDS = ("states", "inputs", "residuals", "q", "iterations", "converged", "jacobians")
    FORMAT = "dynamo_ext.FixedPoints/1"

    def save(self, path: Union[str, Path]) -> Path:
        """Write the points (and their slow points and contexts) to one safetensors file, atomically.

        The tensors are stored as they are; the cell's name and the format version go in the file's
        JSON header. The solver's weights and the meta-model are not stored: ``load`` takes the
        meta-model back to map states with ``to_base``. No pickle is involved.

        Raises:
            ValueError: ``path`` is an existing folder.
        """
        path = Path(path)
        if path.is_dir():
            raise ValueError(f"argument 'path' must be a file path, got the folder {str(path)!r}")
        tensors = {k: getattr(self, k) for k in self._FIELDS}
        if self.slow_points is not None:
            tensors.update({f"slow.{k}": getattr(self.slow_points, k) for k in self._FIELDS})
        if self.contexts is not None:
            tensors["contexts"] = self.contexts
        _io.write_tensors(path, tensors, metadata={"format": self.FORMAT, "cell": self.cell})
        return path

    @classmethod
    def load(cls, path: Union[str, Path], meta: Optional[MetaRNN] = None) -> "FixedPoints":
        """Fixed points written by ``save``; ``meta`` (the meta-model they were found in) restores
        ``to_base``.

        Raises:
            ValueError: a missing or corrupted file, or a safetensors file of something else.
        """
        header = _io.read_metadata(path, "fixed points file")
        if header.get("format") != cls.FORMAT:
            raise ValueError(f"fixed points file {str(path)!r} was not written by FixedPoints.save (format "
                             f"{header.get('format')!r}, expected {cls.FORMAT!r})")
        t = _io.read_tensors(path, "fixed points file")

        def build(prefix: str) -> "FixedPoints":
            return cls(*(t[prefix + k] for k in cls._FIELDS), weights=None, meta=meta, cell=header["cell"],
                       contexts=t.get("contexts") if not prefix else None)

        fps = build("")
        fps.slow_points = build("slow.") if "slow.states" in t else None
        return fps

    def plot(self, ax=None, trajectories: Optional[Tensor] = None, title: str = "Fixed points", path=None):
        """Draw the points in the principal-component plane of their states (or of ``trajectories``
        [B, T, D], drawn in grey): filled black stable, open red unstable, labelled with their number
        of unstable directions. Draws into ``ax`` (a matplotlib Axes) or a new Figure; returns the
        Figure (saved as PNG at ``path`` when given)."""
        from .plots import plot_fixed_points

        return plot_fixed_points(self, path, trajectories=trajectories, title=title, ax=ax)
