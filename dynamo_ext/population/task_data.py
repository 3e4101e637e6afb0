"""TaskData: a task's training and test data, checked once when it is made, and task accuracy.

Inputs x [N, T, I] (float), targets y [N] class labels read at the last step,
[N, T] class labels read at every step (neurogym's convention; a negative
label marks a step that is not scored), or [N, T, C] real targets at every
step; a user's tensors or NumPy arrays enter through ``TaskData.from_tensors``
(batch first, or time major as neurogym's ``Dataset`` gives them;
docs/guide/own-networks.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import Tensor

from .._checks import check_choice, check_positive_int


def _as_tensor(value, name: str, dtype: Optional[torch.dtype]) -> Tensor:
    """A field as a tensor (NumPy arrays accepted), cast to ``dtype`` when one is given."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, Tensor):
        raise ValueError(f"TaskData: field {name!r} must be a torch.Tensor or a NumPy array, got {type(value).__name__}")
    if dtype is None:
        return value
    if dtype == torch.int64 and value.is_floating_point():
        if not bool((value == value.round()).all()):
            raise ValueError(f"TaskData: field {name!r} must hold integer class labels, got non-integer values")
    if value.dtype in (torch.complex64, torch.complex128, torch.bool):
        raise ValueError(f"TaskData: field {name!r} must be real-valued, got dtype {value.dtype}")
    return value.to(dtype)


def _check_finite(t: Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"TaskData: field {name!r} must be finite, got {bad} NaN/Inf entries")


@dataclass(repr=False)
class TaskData:
    """A task's train and test split: a generated one (``load_task``) or a user's own tensors.

    Attributes:
        name: the task's name (any non-empty string; a generated task's is one of TASKS).
        x_train, x_test: [N, T, I] float32 inputs, batch first.
        y_train, y_test: int64 class labels in [0, C) when ``output_kind == "classes"``: [N]
            (read at the last time step) or [N, T] (one per step, as neurogym's datasets; steps
            whose label is negative, e.g. PyTorch's ignore_index -100, are not scored); float32
            targets [N, T, C] when ``output_kind == "real"`` (read at every step).
        output_kind: "classes" or "real".
        n_outputs: C, the number of logits or real outputs.
        config: the generator's settings, stored in manifests.
        generated: True for the tasks ``load_task`` makes (a saved population stores their
            settings and makes them again); False for a user's data (a saved population
            stores the tensors themselves).

    Tensors or NumPy arrays are accepted; inputs (and real targets) become float32,
    class labels int64, at construction, where everything is checked.

    Raises:
        ValueError: a field of the wrong type, rank, size or dtype, NaN/Inf in the
            inputs or real targets, labels outside [0, n_outputs), an n_outputs that
            does not match the targets (the message names the field).
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    output_kind: str
    n_outputs: int
    config: Dict[str, Any] = field(default_factory=dict)
    generated: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"TaskData: field 'name' must be a non-empty string, got {self.name!r}")
        check_choice(self.output_kind, "output_kind", ("classes", "real"))
        self.n_outputs = check_positive_int(self.n_outputs, "n_outputs")
        for split in ("train", "test"):
            x = _as_tensor(getattr(self, f"x_{split}"), f"x_{split}", torch.float32)
            if x.dim() != 3 or 0 in x.shape:
                raise ValueError(f"TaskData: field 'x_{split}' must be [N, T, I] with N, T, I >= 1, "
                                 f"got shape {tuple(x.shape)}")
            _check_finite(x, f"x_{split}")
            classes = self.output_kind == "classes"
            y = _as_tensor(getattr(self, f"y_{split}"), f"y_{split}", torch.int64 if classes else torch.float32)
            want = (x.shape[0],) if classes else (x.shape[0], x.shape[1], self.n_outputs)
            if classes and y.dim() == 2:
                want = (x.shape[0], x.shape[1])  # one label per step
            if tuple(y.shape) != want:
                what = ("[N] or [N, T] class labels" if classes else "[N, T, n_outputs] real targets")
                raise ValueError(f"TaskData: field 'y_{split}' must be {what} of shape {list(want)} (x_{split} is "
                                 f"{list(x.shape)}, n_outputs={self.n_outputs}), got shape {tuple(y.shape)}")
            scored = y[y >= 0] if classes and y.dim() == 2 else y
            if classes and scored.numel() and (int(scored.min()) < 0 or int(scored.max()) >= self.n_outputs):
                raise ValueError(f"TaskData: field 'y_{split}' must hold labels in [0, {self.n_outputs}) "
                                 f"(n_outputs)" + (", or negative for steps not scored" if y.dim() == 2 else "") +
                                 f", got values in [{int(scored.min())}, {int(scored.max())}]")
            if not classes:
                _check_finite(y, f"y_{split}")
            setattr(self, f"x_{split}", x)
            setattr(self, f"y_{split}", y)
        if self.output_kind == "classes" and self.y_train.dim() != self.y_test.dim():
            raise ValueError(f"TaskData: fields 'y_train' and 'y_test' must both be [N] or both [N, T] labels, got "
                             f"shapes {tuple(self.y_train.shape)} and {tuple(self.y_test.shape)}")
        if self.x_test.shape[1:] != self.x_train.shape[1:]:
            raise ValueError(f"TaskData: field 'x_test' must have the steps and inputs of x_train "
                             f"{list(self.x_train.shape[1:])}, got {list(self.x_test.shape[1:])}")

    @classmethod
    def from_tensors(cls, name: str, x_train, y_train, x_test, y_test, output_kind: Optional[str] = None,
                     n_outputs: Optional[int] = None, time_major: bool = False) -> "TaskData":
        """A task from a user's own tensors or NumPy arrays.

        Args:
            x_train, x_test: [N, T, I] inputs, batch first ([T, N, I] with ``time_major``).
            y_train, y_test: class labels [N] or [N, T] (integers; one per step, negative for
                steps not scored), or real targets [N, T, C] ([T, N] and [T, N, C] with ``time_major``).
            output_kind: "classes" or "real"; default: "classes" for integer targets,
                "real" for floating ones.
            n_outputs: C; default: the largest label + 1 (classes) or the targets' last size.
            time_major: the tensors are time major, as neurogym's ``Dataset`` returns them
                (inputs [T, B, I], labels [T, B]); they are stored batch first.

        Raises:
            ValueError: as the constructor.
        """
        if time_major:
            x_train, y_train, x_test, y_test = (_time_major(v, n) for v, n in (
                (x_train, "x_train"), (y_train, "y_train"), (x_test, "x_test"), (y_test, "y_test")))
        y = _as_tensor(y_train, "y_train", None)
        if output_kind is None:
            output_kind = "real" if y.is_floating_point() else "classes"
        if n_outputs is None:
            if output_kind == "classes":
                y_te = _as_tensor(y_test, "y_test", None)
                n_outputs = int(max(int(y.max()) if y.numel() else 0, int(y_te.max()) if y_te.numel() else 0)) + 1
                n_outputs = max(n_outputs, 1)
            else:
                if y.dim() != 3:
                    raise ValueError(f"argument 'y_train' must hold real targets of shape [N, T, C] (add a channel "
                                     f"dimension for one output: y[..., None]), got shape {tuple(y.shape)}")
                n_outputs = int(y.shape[-1])
        return cls(name, x_train, y_train, x_test, y_test, output_kind, n_outputs)

    def __repr__(self) -> str:
        return (f"TaskData(name={self.name!r}, output_kind={self.output_kind!r}, n_outputs={self.n_outputs}, "
                f"x_train={list(self.x_train.shape)}, x_test={list(self.x_test.shape)}, "
                f"generated={self.generated})")

    @property
    def input_size(self) -> int:
        return int(self.x_train.shape[-1])

    @property
    def seq_len(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def per_step(self) -> bool:
        """Whether the class labels are one per step [N, T] (neurogym's convention)."""
        return self.output_kind == "classes" and self.y_train.dim() == 2

    def sequence_labels(self, split: str = "train") -> Tensor:
        """One class label per sequence [N]: the labels themselves, or per-step labels' last scored
        step (the decision, in neurogym's tasks). Classes only."""
        y = getattr(self, f"y_{split}")
        if y.dim() == 1:
            return y
        last = (y >= 0).long().cumsum(1).argmax(1)  # the last step with a label >= 0
        return y.gather(1, last[:, None]).squeeze(1).clamp(min=0)


def _time_major(value, name: str):
    """A time-major field [T, N, ...] as batch first [N, T, ...]."""
    t = _as_tensor(value, name, None)
    if t.dim() < 2:
        raise ValueError(f"argument '{name}' must be time major [T, N, ...] (time_major=True), got shape "
                         f"{tuple(t.shape)}")
    return t.transpose(0, 1).contiguous()


def accuracy(task: TaskData, outputs: Tensor, targets: Tensor) -> float:
    """Task accuracy of model outputs [N, T, C] against targets.

    Classes: fraction of sequences whose last-step argmax equals the label [N];
    per-step labels [N, T]: fraction of the scored steps (label >= 0) whose argmax
    equals the label. Real (flip-flop): fraction of (sequence, step, channel) with
    a nonzero target where the output has the target's sign.
    """
    if task.output_kind == "classes":
        if targets.dim() == 2:
            scored = targets >= 0
            hits = (outputs.argmax(-1) == targets) & scored
            return float(hits.sum() / scored.sum().clamp(min=1))
        return float((outputs[:, -1].argmax(-1) == targets).float().mean())
    mask = targets != 0
    return float(((outputs.sign() == targets.sign()) & mask).sum() / mask.sum().clamp(min=1))
