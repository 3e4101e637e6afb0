"""The hidden-state term of the DYNAMO loss over a minibatch's rows, whatever the number of base models in it.

For rows of z sorted by model, computes
    sum_n ||z_n A_n^T + c_n - htilde_n||^2 / d_n
(the numerator of the hidden-state term of docs/method.md, "The loss"; Cotler et al.,
arXiv:2302.14078, the loss on the meta-model's predicted hidden states) in one compiled op
(``ops.hidden_map_loss``): every row reads its model's map from one table and its targets in place.
Written per model with autograd, each model in the batch cost a split of z, a linear, an mse_loss and
their backward: at N = 1024 base models (about 120 in a batch of 128 rows) the fit step grew to 1.7x
its time at N = 16; with the op it is 1.3x (docs/performance.md, "Cost against the population size").
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from .. import ops


def has_linear_maps(maps: Sequence[nn.Module], ids: Optional[Sequence[int]] = None) -> bool:
    """Whether every map (or every map in ``ids``) is one nn.Linear with a bias, as gathered_hidden_loss needs."""
    chosen = maps if ids is None else [maps[i] for i in ids]
    return all(isinstance(getattr(m, "linear", None), nn.Linear) and m.linear.bias is not None for m in chosen)


def gathered_hidden_loss(z: Tensor, model_idx: Tensor, seq_idx: Tensor, counts: Tensor, widths: Sequence[int],
                         table: Tensor, targets) -> Tensor:
    """sum_n ||A_n z_n + c_n - htilde_n||^2 / d_n (as ``grouped_hidden_loss``, to rounding) in one compiled
    op whatever the number M of models in the batch (``ops.hidden_map_loss``): the M maps come as one
    table [sum d_n (+ 1), D + 1] (A_n's rows with c_n beside them, one model after another, in order:
    ``packed.PackedMaps.gather_table``), each row of z reads its model's block, and the targets are read
    in place from the recording's flat buffer (``Targets.row_targets``).

    Args:
        z: [B, T, D] meta states, rows sorted by model.
        model_idx, seq_idx: [B] population index and sequence of each row (sorted by model).
        counts: [M] rows per distinct model, in order; widths: their hidden sizes d_n.
        table: the M maps, in order (extra rows after them are allowed and get a zero gradient).
        targets: a ``loss.Targets`` (``row_targets``).

    Returns:
        0-dim tensor, differentiable in z and table.
    """
    width_of = torch.as_tensor([int(w) for w in widths], dtype=torch.long)
    counts = counts.cpu()
    map_row = torch.repeat_interleave(width_of.cumsum(0) - width_of, counts)
    width = torch.repeat_interleave(width_of, counts)
    flat, start = targets.row_targets(model_idx, seq_idx, z.dtype, z.device)
    return ops.hidden_map_loss(z, table, map_row.to(z.device), width.to(z.device), flat, start.to(z.device))
