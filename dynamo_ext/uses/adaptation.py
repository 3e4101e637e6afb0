"""Learning from few labels by optimising only the model embedding (docs/method.md, "The uses of the embedding").

With the meta-model's shared parameters phi frozen, theta (m numbers) is fitted
to a few labelled examples: cross-entropy on the last step's logits
(classification) or MSE at every step (real outputs), from several restarts
around the population's mean embedding (arXiv:2302.14078, semi-supervised
learning in the model embedding space). The result is an operable network.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_positive_float, check_positive_int, check_tensor
from ..compare.scratch import train_scratch
from ..meta.rnn import EmbeddedModel, MetaModel
from ..population.tasks import TaskData
from ..population.training import evaluate


def adapt(meta: MetaModel, x: Tensor, y: Tensor, *, steps: int = 200, lr: float = 0.05, restarts: int = 8,
          seed: int = 0) -> EmbeddedModel:
    """Fit theta alone to labelled examples; the meta-model's weights stay frozen.

    All restarts run as one batch: restart 0 starts at the mean of the
    embedding table, the others at the mean plus Gaussian noise of the
    table's per-coordinate standard deviation. Adam, full batch; the restart
    with the lowest final training loss is returned.

    Args:
        meta: a fitted MetaRNN or MetaCNN.
        x: [n, T, I] labelled inputs.
        y: [n] int64 class labels (meta.output_kind "classes"; or [n, T], one per step,
            negative for steps not scored) or float targets [n, T, C] ("real").
        steps, lr: Adam steps and learning rate; restarts: number of starts.

    Returns:
        EmbeddedModel at the fitted theta [m] (an nn.Module x -> outputs), with
        attribute ``train_loss`` (float).

    Raises:
        ValueError: x or y of the wrong shape, dtype or length, NaN/Inf.
    """
    check_tensor(x, "x", ndim=3)
    if x.shape[-1] != meta.input_size or len(x) == 0:
        raise ValueError(f"argument 'x' must have shape [n >= 1, T, {meta.input_size}], got {tuple(x.shape)}")
    if meta.output_kind == "classes":
        per_step = isinstance(y, Tensor) and y.dim() == 2
        check_tensor(y, "y", shape=[len(x), x.shape[1]] if per_step else [len(x)], dtypes=[torch.int64])
        scored = y[y >= 0] if per_step else y
        if scored.numel() == 0 or int(scored.min()) < 0 or int(scored.max()) >= meta.n_outputs:
            raise ValueError(f"argument 'y' must hold classes in [0, {meta.n_outputs})"
                             + (" (negative: steps not scored), at least one scored" if per_step else "") +
                             (f", got [{int(scored.min())}, {int(scored.max())}]" if scored.numel() else ", got none"))
    else:
        check_tensor(y, "y", shape=[len(x), x.shape[1], meta.n_outputs])
    check_positive_int(steps, "steps")
    check_positive_float(lr, "lr")
    check_positive_int(restarts, "restarts")

    table = meta.theta.detach()
    g = torch.Generator().manual_seed(seed)
    spread = table.std(0) if table.shape[0] > 1 else torch.ones_like(table[0])
    starts = table.mean(0) + torch.randn(restarts, meta.embedding_dim, generator=g, dtype=table.dtype) * spread
    starts[0] = table.mean(0)
    theta = starts.clone().requires_grad_(True)
    n = len(x)
    xs = x.to(table.dtype).repeat(restarts, 1, 1)
    ys = (y.repeat(restarts, *[1] * (y.dim() - 1)) if meta.output_kind == "classes"
          else y.to(table.dtype).repeat(restarts, 1, 1))
    frozen = [p for p in meta.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    was_training = meta.training
    meta.eval()
    try:
        opt = torch.optim.Adam([theta], lr=lr)
        for _ in range(steps):
            per_restart = _losses(meta, xs, ys, theta.repeat_interleave(n, 0), restarts)
            opt.zero_grad(set_to_none=True)
            per_restart.sum().backward()
            opt.step()
        with torch.no_grad():
            final = _losses(meta, xs, ys, theta.repeat_interleave(n, 0), restarts)
    finally:
        for p in frozen:
            p.requires_grad_(True)
        meta.train(was_training)
    best = int(final.argmin())
    net = meta.at(theta.detach()[best])
    net.train_loss = float(final[best])
    return net


def _losses(meta: MetaModel, xs: Tensor, ys: Tensor, theta_rows: Tensor, restarts: int) -> Tensor:
    """Mean loss per restart [restarts]."""
    _, yhat = meta(xs, theta=theta_rows)
    if meta.output_kind == "classes" and ys.dim() == 2:  # per-step labels: the mean over scored steps
        scored = (ys >= 0).float()
        steps = F.cross_entropy(yhat.transpose(1, 2), ys.clamp(min=0), reduction="none") * scored
        rows = steps.sum(1) / scored.sum(1).clamp(min=1)
    elif meta.output_kind == "classes":
        rows = F.cross_entropy(yhat[:, -1], ys, reduction="none")
    else:
        rows = (yhat - ys).pow(2).mean(dim=(1, 2))
    return rows.view(restarts, -1).mean(1)


def few_label_sample(task: TaskData, per_class: int, seed: int = 0):
    """``per_class`` training examples of each class (classes), or ``per_class`` sequences (real)."""
    check_positive_int(per_class, "per_class")
    g = torch.Generator().manual_seed(seed)
    if task.output_kind == "real":
        idx = torch.randperm(len(task.x_train), generator=g)[:per_class]
    else:
        labels = task.sequence_labels("train")  # per-step labels: the decision's
        idx = torch.cat([(labels == c).nonzero().squeeze(1)[
            torch.randperm(int((labels == c).sum()), generator=g)[:per_class]] for c in range(task.n_outputs)])
    return task.x_train[idx], task.y_train[idx]


def compare_few_labels(meta: MetaModel, task: TaskData, labels_per_class: Sequence[int] = (1, 5, 20),
                       scratch_arch: Optional[str] = None, scratch_hidden: Optional[int] = None,
                       scratch_epochs: int = 200, seed: int = 0, adapt_kwargs: Optional[Dict] = None) -> List[Dict]:
    """Test accuracy of ``adapt`` against a base model trained from scratch on the same few labels.

    The scratch model is of the meta-model's family: by default a GRU with 64
    units for a MetaRNN, a ReLU CNN of width 32 for a MetaCNN.

    Returns:
        One row per entry of ``labels_per_class``: labels_per_class,
        n_labelled, adapt_accuracy, scratch_accuracy, and adapt's theta.
    """
    family = getattr(meta, "family", "rnn")
    rows = []
    for k in labels_per_class:
        x, y = few_label_sample(task, k, seed=seed)
        net = adapt(meta, x, y, seed=seed, **(adapt_kwargs or {}))
        scratch = train_scratch(task, x, y, arch=scratch_arch or ("gru" if family == "rnn" else "relu"),
                                hidden_size=scratch_hidden or (64 if family == "rnn" else 32), seed=seed,
                                epochs=scratch_epochs, family=family)
        rows.append({"labels_per_class": k, "n_labelled": len(x), "adapt_accuracy": evaluate(net, task),
                     "scratch_accuracy": evaluate(scratch, task), "theta": net.theta.tolist()})
    return rows
