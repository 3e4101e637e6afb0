"""A leaky continuous-time RNN (CT-RNN), discretised with Euler steps.

The field's standard rate network (e.g. Song, Yang & Wang 2016; neurogym's
examples; Maheswaranathan et al. 2019 use its alpha = 1 limit):

    tau dh/dt = -h + f(W_hh h + W_ih x + b)   ->   h_{t+1} = (1 - alpha) h_t + alpha f(W_ih x_t + b_ih + W_hh h_t + b_hh)

with alpha = dt / tau in (0, 1] and f one of tanh, ReLU, softplus. With
alpha = 1 it is a discrete-time RNN (softplus RNNs are CTRNN(alpha=1,
nonlinearity="softplus")). ``CTRNN`` takes and returns what ``torch.nn.RNN``
does (batch-first by default), so ``BaseRNN`` and ``Population.from_modules``
wrap it like one, and ``step`` is the one-step map that ``find_fixed_points``
solves.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import (
    check_choice,
    check_positive_float,
    check_positive_int,
    check_tensor,
)

NONLINEARITIES = {"tanh": torch.tanh, "relu": torch.relu, "softplus": F.softplus}


class CTRNN(nn.Module):
    """Leaky (continuous-time) RNN: h <- (1 - alpha) h + alpha f(W_ih x + b_ih + W_hh h + b_hh).

    Args:
        input_size: I; hidden_size: H.
        dt, tau: Euler step and time constant (same units, e.g. ms); alpha = dt / tau
            must lie in (0, 1]. ``alpha`` given directly overrides them.
        nonlinearity: "tanh", "relu" or "softplus".
        batch_first: inputs [B, T, I] (default) or [T, B, I], as torch.nn.RNN.

    Shapes: ``forward(x, h0=None)`` takes x [B, T, I] and h0 [1, B, H]
    (default zeros) and returns (outputs [B, T, H], h_n [1, B, H]), as
    torch.nn.RNN; ``step(x [B, I], h [B, H])`` returns h' [B, H].
    Parameters are initialised like torch.nn.RNN's (uniform in +-1/sqrt(H)).

    Raises:
        ValueError: sizes not positive integers, alpha outside (0, 1], an unknown nonlinearity.
    """

    def __init__(self, input_size: int, hidden_size: int, dt: float = 1.0, tau: float = 1.0,
                 nonlinearity: str = "tanh", batch_first: bool = True, alpha: Optional[float] = None):
        super().__init__()
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = check_positive_int(hidden_size, "hidden_size")
        check_choice(nonlinearity, "nonlinearity", tuple(NONLINEARITIES))
        if alpha is None:
            alpha = check_positive_float(dt, "dt") / check_positive_float(tau, "tau")
        if not (isinstance(alpha, (int, float)) and 0 < alpha <= 1):
            raise ValueError(f"argument 'alpha' (dt / tau) must be in (0, 1], got {alpha!r}")
        self.alpha = float(alpha)
        self.nonlinearity = nonlinearity
        self.batch_first = bool(batch_first)
        self.num_layers, self.bidirectional = 1, False
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, alpha={self.alpha:g}, nonlinearity={self.nonlinearity!r}"
                + ("" if self.batch_first else ", batch_first=False"))

    def step(self, x: Tensor, h: Tensor) -> Tensor:
        """One Euler step: h' [B, H] from inputs x [B, I] and states h [B, H]."""
        pre = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        return (1 - self.alpha) * h + self.alpha * NONLINEARITIES[self.nonlinearity](pre)

    def forward(self, x: Tensor, h0: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """(outputs [B, T, H], h_n [1, B, H]) for x [B, T, I] (batch_first) and h0 [1, B, H]."""
        check_tensor(x, "x", ndim=3, finite=False)
        seq = x if self.batch_first else x.transpose(0, 1)
        B, T, _ = seq.shape
        h = seq.new_zeros(B, self.hidden_size) if h0 is None else h0.reshape(B, self.hidden_size)
        pre_x = F.linear(seq, self.weight_ih, self.bias_ih)  # the input side of every step at once
        f = NONLINEARITIES[self.nonlinearity]
        out = []
        for t in range(T):
            h = (1 - self.alpha) * h + self.alpha * f(pre_x[:, t] + F.linear(h, self.weight_hh, self.bias_hh))
            out.append(h)
        out = torch.stack(out, 1)
        return (out if self.batch_first else out.transpose(0, 1)), h.unsqueeze(0)
