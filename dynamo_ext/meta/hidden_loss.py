"""The hidden-state term of the DYNAMO loss over rows grouped by base model, in one autograd node.

For rows sorted by model (model n owns rows [s_n, s_n + c_n) of z), computes
    sum_n ||z_n A_n^T + c_n - htilde_n||^2 / d_n
(the numerator of the hidden-state term of docs/method.md, "The loss"; Cotler et al.,
arXiv:2302.14078, the loss on the meta-model's predicted hidden states).

Written per model with autograd this is a split of z, one linear, one
mse_loss and one division per model, and a backward that concatenates the
per-model gradients of z into a fresh tensor: in the fit-step profile at
configuration S the split's backward alone took 0.56 ms of a 7 ms step. Here
the forward keeps each model's residual and the backward writes each model's
gradient of z straight into its rows of one buffer.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

from .. import ops



class _GroupedHiddenLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: Tensor, counts: List[int], *tensors: Tensor) -> Tensor:
        n = len(counts)
        weights, biases, targets = tensors[:n], tensors[n:2 * n], tensors[2 * n:]
        D = z.shape[-1]
        residuals = []
        loss = z.new_zeros(())
        for z_n, w, b, tgt in zip(z.split(counts), weights, biases, targets):
            r = torch.addmm(b, z_n.reshape(-1, D), w.t()).sub_(tgt.reshape(-1, w.shape[0]))
            loss += torch.dot(r.view(-1), r.view(-1)) / w.shape[0]
            residuals.append(r)
        ctx.counts = counts
        ctx.save_for_backward(z, *weights, *residuals)
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        counts = ctx.counts
        n = len(counts)
        z, weights, residuals = ctx.saved_tensors[0], ctx.saved_tensors[1:n + 1], ctx.saved_tensors[n + 1:]
        D = z.shape[-1]
        grad_z = torch.empty_like(z, memory_format=torch.contiguous_format) if ctx.needs_input_grad[0] else None
        grad_w, grad_b = [], []
        start = 0
        for c, z_n, w, r in zip(counts, z.split(counts), weights, residuals):
            scale = grad * (2.0 / w.shape[0])  # d(||r||^2 / d_n) / dr = 2 r / d_n
            if grad_z is not None:
                rows = grad_z.narrow(0, start, c).view(-1, D)
                torch.mm(r, w, out=rows)
                rows.mul_(scale)
            grad_w.append(torch.mm(r.t(), z_n.reshape(-1, D)).mul_(scale))
            grad_b.append(r.sum(0).mul_(scale))
            start += c
        return (grad_z, None, *grad_w, *grad_b, *([None] * n))


def grouped_hidden_loss(z: Tensor, counts: Sequence[int], weights: Sequence[Tensor], biases: Sequence[Tensor],
                        targets: Sequence[Tensor]) -> Tensor:
    """sum_n ||A_n z_n + c_n - htilde_n||^2 / d_n over consecutive row groups of z, one group per model.

    Args:
        z: [B, T, D] (or [B, D]) meta states, rows sorted by model; float32/float64.
        counts: rows per group (sum = B).
        weights, biases: one map per group: A_n [d_n, D] and c_n [d_n] (as the ``.linear`` of
            dynamo_ext.meta.HiddenMap, or row blocks of ``packed.PackedMaps.gather``'s tables).
        targets: per group [c_n, T, d_n] (or [c_n, d_n]) standardised base hidden states.

    Returns:
        0-dim tensor, differentiable in z and the maps' weights and biases
        (not in the targets; no double backward).

    Raises:
        ValueError: counts, weights, biases and targets of different lengths, or counts not summing to B.
    """
    counts = [int(c) for c in counts]
    if not len(counts) == len(weights) == len(biases) == len(targets):
        raise ValueError(f"arguments 'counts', 'weights', 'biases' and 'targets' must have the same length, got "
                         f"{len(counts)}, {len(weights)}, {len(biases)} and {len(targets)}")
    if sum(counts) != z.shape[0]:
        raise ValueError(f"argument 'counts' must sum to z.shape[0] = {z.shape[0]}, got {sum(counts)}")
    return _GroupedHiddenLoss.apply(z, counts, *weights, *biases, *[t.detach() for t in targets])


def has_linear_maps(maps: Sequence[nn.Module], ids: Optional[Sequence[int]] = None) -> bool:
    """Whether every map (or every map in ``ids``) is one nn.Linear with a bias, as grouped_hidden_loss needs."""
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
