"""Plain-PyTorch reference of every compiled op: the numerical ground truth.

Each function here computes exactly what the op of the same name in
dynamo_ext.ops computes, with eager PyTorch ops and autograd, and no compiled
code. Tests compare the ops against these on fresh random inputs, and the
meta-model's ``backend="reference"`` runs through them (it is also the only
implementation of the GRU cell until the fused GRU kernel lands).
"""
from __future__ import annotations

import torch
from torch import Tensor

CELLS = ("tanh", "gru")


def gate_count(cell: str) -> int:
    """Number of gate blocks G in the weights of a cell: 1 for tanh, 3 for GRU."""
    if cell == "tanh":
        return 1
    if cell == "gru":
        return 3
    raise ValueError(f"argument 'cell' must be one of {CELLS}, got {cell!r}")


def tanh_cell(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """One tanh-cell step: tanh(x_proj + W_h h + b_hh).

    x_proj already holds W_x x_t + b_ih + U theta (DESIGN.md section 1).
    """
    return torch.tanh(x_proj + h @ w_hh.T + b_hh)


def gru_cell(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """One GRU step in PyTorch's gate convention (r, z, n blocks).

    x_proj [B, 3D] holds the input-side pre-activations W_x x_t + b_ih + U theta:
    theta enters every gate's input side additively.
        r = sigmoid(xr + W_hr h + b_hr), u = sigmoid(xz + W_hz h + b_hz)
        n = tanh(xn + r * (W_hn h + b_hn)),  h' = (1 - u) * n + u * h
    """
    gh = h @ w_hh.T + b_hh
    xr, xz, xn = x_proj.chunk(3, dim=-1)
    hr, hz, hn = gh.chunk(3, dim=-1)
    r = torch.sigmoid(xr + hr)
    u = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return (1 - u) * n + u * h


def meta_rnn_sequence(
    x: Tensor,
    h0: Tensor,
    cond: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    cell: str = "tanh",
) -> Tensor:
    """Reference of ``ops.meta_rnn_sequence``: an eager loop over time steps.

    Args:
        x: [T, B, I] time-major inputs.
        h0: [B, D] initial meta state z_0.
        cond: [B, G*D] per-row conditioning bias U theta_n.
        w_ih: [G*D, I]; w_hh: [G*D, D]; b_ih, b_hh: [G*D].
        cell: "tanh" or "gru".

    Returns:
        [T, B, D] meta states z_1..z_T, same dtype and device as x.
    """
    step = {"tanh": tanh_cell, "gru": gru_cell}.get(cell)
    if step is None:
        raise ValueError(f"argument 'cell' must be one of {CELLS}, got {cell!r}")
    T, B, I = x.shape
    x_proj = (x.reshape(T * B, I) @ w_ih.T + b_ih).reshape(T, B, -1) + cond.unsqueeze(0)
    h = h0
    out = []
    for t in range(T):
        h = step(x_proj[t], h, w_hh, b_hh)
        out.append(h)
    return torch.stack(out, dim=0)
