"""The cell weights the fused Newton op reads, gathered from a meta-model or a torch RNN.

For a meta-model at an embedding theta the cell's input bias is
b_ih + U theta (docs/method.md, "The meta-model"); for nn.RNN / GRU / LSTM (one layer) and
their Cell modules, the layer's own weights. Everything else is solved by the
autograd path of ``dynamo_ext.dynamics.fixed_points`` (NoFusedCell).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

import torch
from torch import Tensor, nn

from .. import reference
from ..meta.rnn import MetaRNN

SUPPORTED = ("MetaRNN, torch.nn.RNN / GRU / LSTM (tanh or ReLU, any number of layers, unidirectional, no "
             "projection), their Cell modules, dynamo_ext.CTRNN, a module with step(x, z), state_size and input_size "
             "(the step protocol), or a module holding exactly one recurrent module (a BaseRNN, a user's RNN with "
             "its readout)")
FUSED = "MetaRNN, one-layer torch.nn.RNN (tanh), GRU, LSTM and their Cell modules"


class NoFusedCell(ValueError):
    """The model's cell is not one that ``ops.newton_fixed_points`` fuses (the autograd solver takes it)."""


TORCH_LAYERS = (nn.RNN, nn.GRU, nn.LSTM)
TORCH_CELLS = (nn.RNNCell, nn.GRUCell, nn.LSTMCell)


@dataclass
class CellWeights:
    """One cell's weights with its conditioning bias (zero for plain PyTorch RNNs)."""

    cell: str
    w_ih: Tensor
    w_hh: Tensor
    b_ih: Tensor
    b_hh: Tensor
    cond: Tensor  # [G*D]

    @property
    def hidden_size(self) -> int:
        return int(self.w_hh.shape[1])

    @property
    def state_size(self) -> int:
        """D: the hidden size H, or 2H for the LSTM's state [h; c]."""
        return reference.state_size(self.cell, self.hidden_size)

    @property
    def input_size(self) -> int:
        return int(self.w_ih.shape[1])

    def to(self, device) -> "CellWeights":
        """The same weights on ``device``."""
        return CellWeights(self.cell, *(getattr(self, f.name).to(device) for f in fields(self)[1:]))


def cell_weights(model: nn.Module, theta: Optional[Tensor] = None, dtype=torch.float64) -> CellWeights:
    """The cell of ``model`` as plain tensors (``theta`` [m] required for a MetaRNN).

    ``model`` may also be a module that holds exactly one supported recurrent
    module among its children (``BaseRNN``, or a user's network of an RNN
    and a readout): its cell is used. LSTM states are [h; c] (D = 2H), in
    the order ``BaseRNN.record`` stores them.

    Raises:
        NoFusedCell (a ValueError): modules without a fused cell
            (multi-layer, bidirectional, projected LSTMs, ReLU RNNs, others).
        ValueError: a MetaRNN without theta.
    """
    def t(p):
        return p.detach().to(dtype)

    if isinstance(model, MetaRNN):
        if theta is None:
            raise ValueError("argument 'theta' (or 'model_id') is required for a MetaRNN")
        cond = model.cond_map(theta.to(model.theta.dtype).reshape(1, -1))[0]
        return CellWeights(model.cell, t(model.w_ih), t(model.recurrent_weight(theta)), t(model.b_ih), t(model.b_hh),
                           t(cond))
    if not isinstance(model, TORCH_LAYERS + TORCH_CELLS):
        inner = [m for m in model.children() if isinstance(m, TORCH_LAYERS + TORCH_CELLS + (MetaRNN,))]
        if len(inner) != 1:
            raise NoFusedCell(f"argument 'model' must be one of: {FUSED}; got {type(model).__name__}"
                              + (f" holding {len(inner)} recurrent modules" if inner else ""))
        return cell_weights(inner[0], theta, dtype)
    if isinstance(model, TORCH_LAYERS):
        if model.num_layers != 1 or model.bidirectional:
            raise NoFusedCell(f"argument 'model' must have one layer and one direction, got {model}")
        if getattr(model, "proj_size", 0):
            raise ValueError(f"argument 'model' must be an LSTM without projection (proj_size=0), got {model}")
        names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    else:
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    if isinstance(model, (nn.RNN, nn.RNNCell)) and model.nonlinearity != "tanh":
        raise NoFusedCell(f"argument 'model' must use nonlinearity='tanh', got {model.nonlinearity!r}")
    cell = ("gru" if isinstance(model, (nn.GRU, nn.GRUCell)) else
            "lstm" if isinstance(model, (nn.LSTM, nn.LSTMCell)) else "tanh")
    w_ih, w_hh = getattr(model, names[0]), getattr(model, names[1])
    zeros = torch.zeros(w_hh.shape[0], dtype=dtype)
    b_ih = getattr(model, names[2], None)
    b_hh = getattr(model, names[3], None)
    return CellWeights(cell, t(w_ih), t(w_hh), zeros if b_ih is None else t(b_ih),
                       zeros if b_hh is None else t(b_hh), zeros.clone())
