"""One-step maps z_next = f(x, z) of recurrent modules, and their Jacobians by autograd.

A base network's *state* z concatenates what its next step depends on:
h (tanh / ReLU RNN, GRU, CT-RNN), [h; c] (LSTM), and for L stacked layers the
layers' states in order, [z_1; ...; z_L] (an LSTM layer's z_l = [h_l; c_l]).
The readout sees the top layer's h. ``step_function`` gives f for
torch.nn.RNN / GRU / LSTM of any depth, their Cell modules, and any module
with a ``step(x, z)`` method (the step protocol, e.g. ``dynamo_ext.CTRNN``,
``BaseRNN``, a user's module); ``find_fixed_points`` solves z = f(x*, z) on it
with the Newton / Levenberg-Marquardt rule of ``reference.newton_solve`` when
no fused cell of ``ops.newton_fixed_points`` matches.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from torch import Tensor, nn

from .ctrnn import CTRNN

Step = Callable[[Tensor, Tensor], Tensor]
LAYERS = (nn.RNN, nn.GRU, nn.LSTM)
CELLS = (nn.RNNCell, nn.GRUCell, nn.LSTMCell)


def layer_state_size(rnn: nn.Module) -> int:
    """State size of a torch.nn.RNN / GRU / LSTM (any depth) or CTRNN: L * H, or L * 2H for the LSTM."""
    per_layer = 2 * rnn.hidden_size if isinstance(rnn, (nn.LSTM, nn.LSTMCell)) else rnn.hidden_size
    return getattr(rnn, "num_layers", 1) * per_layer


def check_layer(rnn: nn.Module, name: str = "rnn") -> None:
    """Raise ValueError for bidirectional or projected (proj_size > 0) recurrent layers."""
    if getattr(rnn, "bidirectional", False):
        raise ValueError(f"argument '{name}' must be unidirectional (bidirectional=False), got {rnn}: a "
                         "bidirectional network has no forward-in-time state")
    if getattr(rnn, "proj_size", 0):
        raise ValueError(f"argument '{name}' must be an LSTM without projection (proj_size=0), got {rnn}")


def top_hidden(rnn: nn.Module, z: Tensor) -> Tensor:
    """The top layer's h [..., H] from states z [..., D] in the layout of ``layer_step``."""
    H, L = rnn.hidden_size, getattr(rnn, "num_layers", 1)
    per = 2 * H if isinstance(rnn, (nn.LSTM, nn.LSTMCell)) else H
    return z[..., (L - 1) * per:(L - 1) * per + H]


def layer_step(rnn: nn.Module, x: Tensor, z: Tensor) -> Tensor:
    """One step of a torch.nn.RNN / GRU / LSTM (any depth), a Cell module or a CTRNN.

    x [B, I]; z [B, D] with D = ``layer_state_size(rnn)`` in the layout
    [z_1; ...; z_L] (LSTM layers z_l = [h_l; c_l]). Returns z' [B, D].
    """
    B = z.shape[0]
    if isinstance(rnn, CTRNN):
        return rnn.step(x, z)
    if isinstance(rnn, CELLS):
        if isinstance(rnn, nn.LSTMCell):
            h, c = rnn(x, (z[:, :rnn.hidden_size], z[:, rnn.hidden_size:]))
            return torch.cat([h, c], -1)
        return rnn(x, z)
    L, H = rnn.num_layers, rnn.hidden_size
    inp = x.unsqueeze(1) if rnn.batch_first else x.unsqueeze(0)
    if isinstance(rnn, nn.LSTM):
        zl = z.reshape(B, L, 2, H)
        state = (zl[:, :, 0].transpose(0, 1).contiguous(), zl[:, :, 1].transpose(0, 1).contiguous())
        _, (h, c) = rnn(inp, state)
        return torch.stack([h, c], 2).transpose(0, 1).reshape(B, L * 2 * H)
    _, h = rnn(inp, z.reshape(B, L, H).transpose(0, 1).contiguous())
    return h.transpose(0, 1).reshape(B, L * H)


def has_step_protocol(model: nn.Module) -> bool:
    """Whether ``model`` has a ``step(x, z)`` method and ``state_size`` and ``input_size`` attributes."""
    return callable(getattr(model, "step", None)) and hasattr(model, "state_size") and hasattr(model, "input_size")


def step_function(model: nn.Module) -> Optional[Tuple[Step, int, int]]:
    """(f, state size D, input size I) of ``model``, or None when it has no step map.

    ``model`` may be a recurrent layer or cell (``layer_step``), a module with
    a ``step(x [B, I], z [B, D]) -> z' [B, D]`` method and ``state_size`` and
    ``input_size`` attributes (the step protocol), or a module holding exactly
    one recurrent layer among its children.
    """
    if isinstance(model, LAYERS + CELLS + (CTRNN,)):
        check_layer(model, "model")
        return (lambda x, z: layer_step(model, x, z)), layer_state_size(model), model.input_size
    if has_step_protocol(model):
        return model.step, int(model.state_size), int(model.input_size)
    inner = [m for m in model.children() if isinstance(m, LAYERS + CELLS + (CTRNN,))]
    return step_function(inner[0]) if len(inner) == 1 else None


def run_steps(step: Step, x: Tensor, state_size: int, z0: Optional[Tensor] = None) -> Tensor:
    """States [B, T, D] of the step map from z0 [B, D] (default zeros) on inputs x [B, T, I]: the
    ``record`` of a module of the step protocol (outputs are then its readout of these states)."""
    z = x.new_zeros(x.shape[0], state_size) if z0 is None else z0
    states = []
    for t in range(x.shape[1]):
        z = step(x[:, t], z)
        states.append(z)
    return torch.stack(states, 1)


def autograd_jacobian(step: Step, x: Tensor, z: Tensor) -> Tuple[Tensor, Tensor]:
    """(f(x, z) [K, D], the step Jacobian df/dz [K, D, D]) by D reverse-mode passes.

    The K rows must not interact (a batched step map); works for any module
    autograd can differentiate, without requiring vmap support of its ops.
    """
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        out = step(x, z)
        if out.shape != z.shape:
            raise ValueError(f"the step function must return states of shape {tuple(z.shape)} (the input "
                             f"states'), got {tuple(out.shape)}")
        rows = [torch.autograd.grad(out[:, i].sum(), z, retain_graph=i < z.shape[1] - 1, allow_unused=True)[0]
                for i in range(z.shape[1])]
    rows = [torch.zeros_like(z) if r is None else r for r in rows]
    return out.detach(), torch.stack(rows, 1)
