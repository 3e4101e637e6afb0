"""Networks built, not trained, around a point attractor, a line attractor or a bistable switch.

A ground-truth population where geometry misleads, after DSA's Fig. 3 (Ostrow et al. 2023, after
Galgali et al. 2023): every network integrates a noisy scalar evidence input u_t in a latent x,

    x_{t+1} = f(x_t) + g u_t,   f(x) = a x (point, a < 1), x (line), x + k (x - x^3) (bistable),

with the gain g of each kind set so that the condition-averaged x at the last probe step is the
same for all three, and carries a copy of its input, v_t = beta u_t, whose size beta varies within
each kind. The hidden state is h_t = U [x_t; v_t] with U [d, 2] random orthonormal columns, the
output y_t = x_t. Geometry measures see mostly the input copy (its variance grows with beta), so
they group the networks by beta; the dynamics (the eigenvalue of f at 0: a, 1 or 1 + k, and the
fixed points: one, a continuum, or three) group them by kind. Each network follows the step
protocol (``record``, ``step``), so fixed points, fitting and every measure take it as they are.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_positive_int
from .population import Population
from .step import run_steps
from .task_data import TaskData

KINDS = ("point", "line", "bistable")
DEFAULTS: Dict = {"leak": 0.97, "k": 0.03, "betas": (0.5, 2.0, 5.0, 10.0), "state_size": 8,
                  "seq_len": 25, "coherences": (-0.04, -0.02, 0.0, 0.02, 0.04), "noise": 0.05}


def _slope(kind: str, leak: float, k: float) -> float:
    return {"point": leak, "line": 1.0, "bistable": 1.0 + k}[kind]


def matched_gain(kind: str, seq_len: int, leak: float, k: float) -> float:
    """The input gain g that gives ``kind`` the line attractor's mean x at step ``seq_len`` for a
    constant input (to first order in x: the bistable's cubic term is small on the probes)."""
    s = _slope(kind, leak, k)
    total = float(seq_len) if s == 1.0 else (s ** seq_len - 1.0) / (s - 1.0)
    return seq_len / total


class LatentAttractorRNN(nn.Module):
    """One network of the population: latent (x, v) embedded by U into d hidden units.

    Args:
        kind: "point", "line" or "bistable".
        beta: the size of the input copy v_t = beta u_t.
        state_size: d >= 2, the hidden units.
        seq_len, leak, k: as ``attractor_population``; they set f and the matched gain g.
        seed: draws U.

    Raises:
        ValueError: an unknown kind, d < 2, leak outside (0, 1), k <= 0.
    """

    input_size = 1

    def __init__(self, kind: str, beta: float, state_size: int = 8, seq_len: int = 25, leak: float = 0.97,
                 k: float = 0.03, seed: int = 0):
        super().__init__()
        check_choice(kind, "kind", KINDS)
        check_positive_int(state_size, "state_size", minimum=2)
        if not 0.0 < leak < 1.0:
            raise ValueError(f"argument 'leak' must be in (0, 1), got {leak}")
        if not k > 0.0:
            raise ValueError(f"argument 'k' must be positive, got {k}")
        self.arch, self.kind, self.state_size = kind, kind, state_size
        self.beta, self.leak, self.k = float(beta), float(leak), float(k)
        self.gain = matched_gain(kind, seq_len, leak, k)
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(state_size, 2, generator=g, dtype=torch.float64))
        self.register_buffer("embedding", q.float())  # U [d, 2]

    def f(self, x: Tensor) -> Tensor:
        if self.kind == "point":
            return self.leak * x
        if self.kind == "line":
            return x
        return x + self.k * (x - x ** 3)

    @property
    def slope(self) -> float:
        """f'(0), the latent's eigenvalue at the origin: ``leak`` (point), 1 (line), 1 + k (bistable)."""
        return _slope(self.kind, self.leak, self.k)

    def step(self, x: Tensor, z: Tensor) -> Tensor:
        """z' [B, d] from input x [B, 1] and state z [B, d] (the step protocol)."""
        U = self.embedding.to(z.dtype)
        lat = z @ U
        u = x[:, 0]
        new = torch.stack([self.f(lat[:, 0]) + self.gain * u, self.beta * u], -1)
        return new @ U.T

    def record(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """(hidden [B, T, d], outputs [B, T, 1] = x_t) on inputs x [B, T, 1]."""
        h = run_steps(self.step, x, self.state_size)
        return h, (h @ self.embedding.to(h.dtype))[..., :1]

    def forward(self, x: Tensor) -> Tensor:
        return self.record(x)[1]

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, beta={self.beta}, state_size={self.state_size}, gain={self.gain:.4f}"


def evidence_task(n_train: int = 400, n_test: int = 200, seq_len: int = DEFAULTS["seq_len"],
                  coherences: Sequence[float] = DEFAULTS["coherences"], noise: float = DEFAULTS["noise"],
                  seed: int = 0) -> TaskData:
    """Noisy evidence u_t = c + noise * eps_t (c drawn from ``coherences`` per trial), real targets:
    the sign of the evidence so far (the three kinds all compute it on the probes)."""
    check_positive_int(seq_len, "seq_len", minimum=2)
    g = torch.Generator().manual_seed(seed)
    c = torch.tensor(list(coherences), dtype=torch.float32)

    def split(n: int):
        check_positive_int(n, "n_train/n_test")
        cs = c[torch.randint(len(c), (n,), generator=g)]
        u = cs[:, None, None] + noise * torch.randn(n, seq_len, 1, generator=g)
        return u, torch.sign(torch.cumsum(u, 1))

    x_tr, y_tr = split(n_train)
    x_te, y_te = split(n_test)
    return TaskData.from_tensors("evidence", x_tr, y_tr, x_te, y_te, output_kind="real")


def attractor_population(betas: Sequence[float] = DEFAULTS["betas"], state_size: int = DEFAULTS["state_size"],
                         seq_len: int = DEFAULTS["seq_len"], leak: float = DEFAULTS["leak"],
                         k: float = DEFAULTS["k"], noise: float = DEFAULTS["noise"], seed: int = 0,
                         task: Optional[TaskData] = None) -> Population:
    """Three kinds x len(betas) networks on the evidence task (ids "<kind>-b<beta>"; labels: arch = kind).

    Raises:
        ValueError: empty ``betas``, or a setting ``LatentAttractorRNN`` refuses.
    """
    if len(betas) == 0:
        raise ValueError("argument 'betas' must hold at least one input-copy size, got an empty list")
    task = task or evidence_task(seq_len=seq_len, noise=noise, seed=seed)
    models, ids = [], []
    for i, kind in enumerate(KINDS):
        for j, beta in enumerate(betas):
            models.append(LatentAttractorRNN(kind, beta, state_size, seq_len, leak, k, seed=seed * 1000 + 10 * i + j))
            ids.append(f"{kind}-b{beta:g}")
    return Population.from_modules(models, task, ids=ids)


__all__ = ["DEFAULTS", "KINDS", "LatentAttractorRNN", "attractor_population", "evidence_task", "matched_gain"]
