"""Training one base model on a task: its settings, loss and test accuracy.

Adam (AdamW for CNNs) with a one-cycle schedule; cross-entropy at the last step
for classes, MSE for real targets (docs/method.md, "Base models and their recording").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._checks import check_positive_float, check_positive_int
from .base_cnn import FAMILIES
from .families import build_base_model
from .protocol import scores_forward
from .tasks import TaskData, accuracy

# Adam learning rates that train each architecture reliably on MNIST-1D
# (the tanh RNN diverges to chance level at 1e-2).
# ReLU and CT-RNNs: not tuned (the tanh RNN's order of magnitude; ReLU RNNs reach 0.985-0.988 on the
# flip-flop and 0.90-0.93 on pulse integration at 1e-3, 80 epochs).
DEFAULT_LR = {"rnn": 2e-3, "relu_rnn": 1e-3, "ctrnn": 2e-3, "gru": 1e-2, "lstm": 1e-2,
              "relu": 1e-2, "tanh": 1e-2, "gelu": 1e-2}


# Decoupled weight decay (AdamW) per family: without it, tanh CNNs on MNIST-1D stop at 0.84-0.91 test
# accuracy; with 0.1 (and widths >= 32) they reach 0.92-0.93. RNNs train without it.
DEFAULT_WEIGHT_DECAY = {"rnn": 0.0, **{f: 0.1 for f in FAMILIES}}


@dataclass
class TrainConfig:
    """Base-model training settings (Adam, or AdamW with weight decay, a one-cycle schedule, gradient
    clipping at 1)."""

    epochs: int = 40
    lr: Optional[float] = None  # None: the architecture's default, DEFAULT_LR
    batch_size: int = 100
    clip: float = 1.0
    weight_decay: Optional[float] = None  # None: the family's default, DEFAULT_WEIGHT_DECAY

    def validate(self) -> "TrainConfig":
        check_positive_int(self.epochs, "epochs")
        if self.lr is not None:
            check_positive_float(self.lr, "lr")
        if self.weight_decay is not None:
            check_positive_float(self.weight_decay, "weight_decay", allow_zero=True)
        check_positive_int(self.batch_size, "batch_size")
        check_positive_float(self.clip, "clip")
        return self


def task_loss(task: TaskData, outputs: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy at the last step (classes [N]), at every scored step (per-step classes [N, T]:
    label >= 0), or MSE at every step (real outputs)."""
    if task.output_kind == "classes":
        if targets.dim() == 2:
            scored = targets >= 0
            return F.cross_entropy(outputs[scored], targets[scored])
        return F.cross_entropy(outputs[:, -1], targets)
    return F.mse_loss(outputs, targets)


@torch.no_grad()
def evaluate(model: nn.Module, task: TaskData, batch_size: int = 1000) -> float:
    """Test accuracy of a model mapping x [B, T, I] to outputs [B, T, C] (tasks.accuracy): its
    ``forward``, or for a module of the recording protocol without one, the outputs of its ``record``;
    the inputs are cast to the model's parameter dtype."""
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    x = task.x_test if param is None else task.x_test.to(param.dtype)
    run = model if scores_forward(model) or not hasattr(model, "record") else (lambda xb: model.record(xb)[1])
    outs = torch.cat([run(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return accuracy(task, outs, task.y_test)


def train_base_model(arch: str, hidden_size: int, task: TaskData, seed: int,
                     config: Optional[TrainConfig] = None, progress: Optional[tqdm] = None,
                     family: str = "rnn") -> nn.Module:
    """Train one base model on ``task`` from seed ``seed``; deterministic for a given seed.

    ``family`` "rnn" gives a BaseRNN of ``arch`` (rnn, gru, lstm); "cnn1d" or
    "cnn2d" a BaseCNN whose ``arch`` is its activation (relu, tanh, gelu) and
    ``hidden_size`` its width."""
    config = (config or TrainConfig()).validate()
    with torch.random.fork_rng(devices=[]):  # initial weights from ``seed``; the caller's random state kept
        torch.manual_seed(seed)
        model = build_base_model(family, arch, task, hidden_size)
    lr = config.lr if config.lr is not None else DEFAULT_LR[arch]
    wd = config.weight_decay if config.weight_decay is not None else DEFAULT_WEIGHT_DECAY[family]
    opt = (torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd) if wd > 0
           else torch.optim.Adam(model.parameters(), lr=lr))
    n = len(task.x_train)
    steps_per_epoch = math.ceil(n / config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=config.epochs * steps_per_epoch)
    g = torch.Generator().manual_seed(seed)
    for _ in range(config.epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, config.batch_size):
            idx = perm[i:i + config.batch_size]
            loss = task_loss(task, model(task.x_train[idx]), task.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            opt.step()
            sched.step()
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return model
