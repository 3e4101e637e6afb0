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

# from this many distinct models in a minibatch on, dynamo_loss takes batched_hidden_loss (fit step,
# 64 models of 64 units, batch 128, CPU: 15.7 ms batched against 21.5 ms per model; at 16 models the two
# are within the machine's noise)
BATCHED_MIN_MODELS = 32


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


def width_buckets(widths: Sequence[int], ratio: float = 1.5, slack: int = 16) -> List[List[int]]:
    """Positions of ``widths`` grouped so that each group's widest is at most ``ratio`` times (or
    ``slack`` units more than) its narrowest: padding a group to its widest wastes little."""
    order = sorted(range(len(widths)), key=lambda i: widths[i])
    groups: List[List[int]] = []
    for i in order:
        if groups and widths[i] <= max(ratio * widths[groups[-1][0]], widths[groups[-1][0]] + slack):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def batched_hidden_loss(z: Tensor, model_idx: Tensor, seq_idx: Tensor, counts: Tensor, widths: Sequence[int],
                        flat_w: Tensor, flat_b: Tensor, targets) -> Tensor:
    """sum_n ||A_n z_n + c_n - htilde_n||^2 / d_n (as ``grouped_hidden_loss``, to rounding) in a number of
    tensor operations that does not grow with the number M of models in the batch: the M maps come
    concatenated in one [sum d_n + 1, D] matrix (a zero row last), the models grouped by width
    (``width_buckets``), and per group every row's map gathered zero-padded to the group's widest
    ([R_g, d_max, D], one index) and applied by one ``baddbmm`` to the row's states minus its targets
    (one ``take``: ``Targets.hidden_rows``, zeros in the padding, so the padded residuals are exactly 0).
    The arithmetic is that of the per-model GEMMs plus the padding within a group (at most 1.5x);
    what no longer grows with M is the count of operator calls and autograd nodes.

    Args:
        z: [B, T, D] meta states, rows sorted by model.
        model_idx, seq_idx: [B] population index and sequence of each row (sorted by model).
        counts: [M] rows per distinct model, in order; widths: their hidden sizes d_n.
        flat_w, flat_b: [sum d_n + 1, D] and [sum d_n + 1]: the M maps' A_n and c_n one after another,
            in order, then a row of zeros.
        targets: a ``loss.Targets`` (``hidden_rows``).

    Returns:
        0-dim tensor, differentiable in z, flat_w and flat_b.
    """
    widths = [int(w) for w in widths]
    D = z.shape[-1]
    zero_row = flat_w.shape[0] - 1
    offsets = torch.tensor([0] + widths[:-1]).cumsum(0)
    width_of = torch.as_tensor(widths, dtype=torch.long)
    local = torch.repeat_interleave(torch.arange(len(widths)), counts.cpu())  # row -> position among the M models
    loss = z.new_zeros(())
    for group in width_buckets(widths):
        in_group = torch.zeros(len(widths), dtype=torch.bool)
        in_group[torch.as_tensor(group, dtype=torch.long)] = True
        whole = len(group) == len(widths)
        rows = None if whole else in_group[local].nonzero().squeeze(1)
        at = local if whole else local[rows]  # each row's model position
        width = max(widths[i] for i in group)
        span = torch.arange(width)
        d = width_of[at]
        idx = (offsets[at][:, None] + span).masked_fill_(span >= d[:, None], zero_row).to(z.device)
        z_g = z if whole else z.index_select(0, rows.to(z.device))
        mi, si = (model_idx, seq_idx) if whole else (model_idx[rows], seq_idx[rows])
        # residual A_n z + c_n - htilde in one baddbmm; its padded columns are exactly 0 (zero weights, bias
        # and targets there), so no mask; each row scaled by 1/sqrt(d_n), then one dot product
        # index_select, whose backward is one index_add_ (advanced indexing's is a slower accumulating index_put)
        flat_idx = idx.reshape(-1)
        start = flat_b.index_select(0, flat_idx).view(1, *idx.shape).transpose(0, 1) \
            - targets.hidden_rows(mi, si, width).to(z.device)
        w_rows = flat_w.index_select(0, flat_idx).view(*idx.shape, D)
        r = torch.baddbmm(start, z_g, w_rows.transpose(1, 2))  # [R, T, width]
        r = r * d.to(r).rsqrt().to(r.device)[:, None, None]
        loss = loss + torch.dot(r.reshape(-1), r.reshape(-1))
    return loss
