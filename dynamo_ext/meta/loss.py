"""The DYNAMO loss over minibatch rows of (base model n, probe sequence).

Loss (docs/method.md, "The loss", after arXiv:2302.14078 Eq. 2-4), averaged over the
rows of a minibatch and time:
    L = lambda_h * ||A_n z_t + c_n - htilde^n_t||^2 / d_n
      + lambda_y * KL(softmax(y^n_t) || softmax(yhat_t))     (MSE for real outputs)
      + lambda_theta * mean_n ||theta_n||^2
with htilde the base hidden states standardised per model (per-unit mean,
one scale per model; both kept in the meta-model's HiddenMap buffers).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_tensor
from ..population.recording import Recording
from .hidden_loss import gathered_hidden_loss, has_linear_maps
from .packed import PackedMaps
from .rnn import MetaModel


class Targets:
    """Standardised hidden-state and output targets of a recording, ready for minibatches.

    ``models`` lists the population indices of the recording's models, in
    order (default: all of them); ``storage`` (e.g. torch.float16) keeps the
    standardised hidden states in a narrower dtype, converted to ``dtype`` per
    batch; with torch.distributed each rank holds only
    its own share. ``hidden``, ``means`` and ``scales`` map a population index
    to that model's tensor; ``outputs[model_idx, seq_idx]`` takes population indices.
    """

    def __init__(self, rec: Recording, dtype: torch.dtype, models: Optional[Sequence[int]] = None,
                 storage: Optional[torch.dtype] = None):
        self.dtype = dtype  # what the loss reads; ``storage`` (default dtype): how the hidden targets are kept
        self.models = list(range(rec.n_models)) if models is None else [int(n) for n in models]
        if len(self.models) != rec.n_models:
            raise ValueError(f"argument 'models' must name the recording's {rec.n_models} models, "
                             f"got {len(self.models)} indices")
        self.x = rec.x.to(dtype)
        self.means, self.scales, self.hidden = {}, {}, {}
        for n, h in zip(self.models, rec.hidden):
            check_tensor(h, f"recording.hidden[{n}]", ndim=3)
        # every model's standardised hidden states [S, T, d_n], one block after another in one flat buffer
        # (``hidden[n]`` is a view of its block): the compiled hidden-state loss reads a minibatch's rows
        # there in place (``row_targets``), each row one contiguous T x d_n stretch
        widths = [int(h.shape[-1]) for h in rec.hidden]
        self._steps = int(rec.hidden[0].shape[1]) if rec.hidden else 0
        sizes = [int(h.numel()) for h in rec.hidden]
        self._flat = torch.empty(sum(sizes), dtype=storage or dtype)
        bases = [0]
        for n, h, size in zip(self.models, rec.hidden, sizes):
            mean = h.mean(dim=(0, 1))
            scale = (h - mean).pow(2).mean().sqrt().clamp(min=1e-6)
            self.means[n] = mean
            self.scales[n] = scale
            block = self._flat[bases[-1]:bases[-1] + size].view(h.shape)
            block.copy_((h - mean) / scale)
            self.hidden[n] = block
            bases.append(bases[-1] + size)
        lookup = max(self.models, default=-1) + 1
        self._base = torch.zeros(lookup, dtype=torch.long)
        self._width = torch.zeros(lookup, dtype=torch.long)
        held = torch.as_tensor(self.models, dtype=torch.long)
        self._base[held] = torch.as_tensor(bases[:-1], dtype=torch.long)
        self._width[held] = torch.as_tensor(widths, dtype=torch.long)
        check_tensor(rec.outputs, "recording.outputs", ndim=4)
        self.output_kind = rec.output_kind
        y = rec.outputs.to(dtype)
        self.outputs = ModelRows(F.log_softmax(y, dim=-1) if rec.output_kind == "classes" else y, self.models)

    def row_targets(self, model_idx: Tensor, seq_idx: Tensor, dtype: torch.dtype,
                    device: torch.device) -> Tuple[Tensor, Tensor]:
        """Standardised hidden targets of rows (model_idx[b], seq_idx[b]) as (flat, start): row b's
        [T, d_n] block at ``flat[start[b]:start[b] + T * d_n]``. On the CPU in the stored dtype, the whole buffer
        itself (no copy); otherwise the rows' blocks gathered (one ``torch.take``), converted and moved."""
        d = self._width[model_idx]
        start = self._base[model_idx] + seq_idx * self._steps * d
        if self._flat.dtype == dtype and torch.device(device).type == "cpu":
            return self._flat, start
        size = d * self._steps
        begin = torch.cumsum(size, 0) - size
        index = torch.repeat_interleave(start - begin, size) + torch.arange(int(size.sum()))
        return torch.take(self._flat, index).to(device=device, dtype=dtype), begin


class ModelRows:
    """``[model, sequences]`` indexing, by population index, of a [N_held, S, ...] tensor of held models."""

    def __init__(self, values: Tensor, models: Sequence[int]):
        self.values = values
        self.lookup = torch.full((max(models, default=-1) + 1,), -1, dtype=torch.long)
        self.lookup[torch.as_tensor(list(models), dtype=torch.long)] = torch.arange(len(models))

    def __getitem__(self, key):
        model, seq = key
        return self.values[self.lookup[model], seq]


def _log_softmax_last(y: Tensor) -> Tensor:
    """log_softmax over the last dimension (the classes), computed over the first dimension of a
    class-first copy: PyTorch's CPU kernel over a short last dimension is slow (fit-step
    profile: 0.8 ms for [256, 40, 10], 0.08 ms over the leading dimension); same values."""
    return F.log_softmax(y.movedim(-1, 0).contiguous(), 0).movedim(0, -1)


def dynamo_loss(meta: MetaModel, targets: Targets, model_idx: Tensor, seq_idx: Tensor,
                lambda_h: float, lambda_y: float, lambda_theta: float, batch_rows: Optional[int] = None,
                theta_rows: Optional[Sequence[int]] = None, packed: Optional[PackedMaps] = None) -> Dict[str, Tensor]:
    """The DYNAMO loss on one minibatch of (model, sequence) rows; see the module docstring.

    ``packed`` (a ``packed.PackedMaps`` of ``meta.maps``, as ``fit`` holds while it runs): the
    minibatch's maps are read from its table, and their gradients land there (``PackedMaps.step``)
    rather than on the maps' parameters.

    ``batch_rows`` (default ``len(model_idx)``) and ``theta_rows`` (default all
    models) let a rank of a distributed fit compute its share of a larger
    minibatch: its rows' sums divided by the whole minibatch's row count, and the
    theta penalty of its own models only, so that the shares add up to the loss.
    """
    B = len(model_idx) if batch_rows is None else batch_rows
    device = meta.theta.device
    loss_h = meta.theta.new_zeros(())
    loss_y = meta.theta.new_zeros(())
    if len(model_idx):
        # the loss sums over rows: grouping them by model first makes each model's rows of z
        # one contiguous slice (no per-model gather, no scatter in the backward)
        order = torch.argsort(model_idx, stable=True)
        model_idx, seq_idx = model_idx[order], seq_idx[order]
        models, counts = torch.unique_consecutive(model_idx, return_counts=True)
        x = targets.x[seq_idx].to(device)
        z, yhat = meta(x, model_idx.to(device))
        T = z.shape[1]  # steps of the recording: the sequence length, or 1 for a CNN
        ids, sizes = models.tolist(), counts.tolist()
        # linear maps (every fit's): one compiled op over every row, each reading its model's block of one
        # table (hidden_loss.gathered_hidden_loss); other maps: one autograd call per model
        if packed is not None or has_linear_maps(meta.maps, ids):
            widths = [meta.maps[n].out_features for n in ids]
            if packed is not None:
                table = packed.gather_table(ids)
            else:
                table = torch.cat([torch.cat([meta.maps[n].linear.weight, meta.maps[n].linear.bias[:, None]], 1)
                                   for n in ids])
            loss_h = gathered_hidden_loss(z, model_idx, seq_idx, counts, widths, table, targets)
        else:
            for n, z_n, seq_n in zip(ids, z.split(sizes), seq_idx.split(sizes)):
                h_n = targets.hidden[n][seq_n].to(device=device, dtype=z.dtype)
                pred = meta.maps[n](z_n)
                loss_h = loss_h + F.mse_loss(pred, h_n, reduction="sum") / pred.shape[-1]
        loss_h = loss_h / (B * T)
        tgt = targets.outputs[model_idx, seq_idx].to(device)
        if targets.output_kind == "classes":
            loss_y = F.kl_div(_log_softmax_last(yhat), tgt, log_target=True, reduction="sum") / (B * T)
        else:
            loss_y = F.mse_loss(yhat, tgt, reduction="sum") / (B * T * tgt.shape[-1])
    theta = meta.theta if theta_rows is None else meta.theta[torch.as_tensor(list(theta_rows), dtype=torch.long)]
    loss_theta = theta.pow(2).sum() / meta.n_models
    loss = lambda_h * loss_h + lambda_y * loss_y + lambda_theta * loss_theta
    return {"loss": loss, "loss_h": loss_h, "loss_y": loss_y, "loss_theta": loss_theta}
