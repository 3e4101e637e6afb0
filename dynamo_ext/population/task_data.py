"""TaskData: a task's training and test data, checked once when it is made, and task accuracy.

Inputs x [N, T, I] (float), targets y [N] class labels read at the last step
or [N, T, C] real targets at every step; a user's tensors or NumPy arrays
enter through ``TaskData.from_tensors`` (docs/guide/own-networks.md).
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
        y_train, y_test: int64 class labels [N] in [0, C) when ``output_kind == "classes"``
            (read at the last time step), float32 targets [N, T, C] when
            ``output_kind == "real"`` (read at every step).
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
        check_positive_int(self.n_outputs, "n_outputs")
        for split in ("train", "test"):
            x = _as_tensor(getattr(self, f"x_{split}"), f"x_{split}", torch.float32)
            if x.dim() != 3 or 0 in x.shape:
                raise ValueError(f"TaskData: field 'x_{split}' must be [N, T, I] with N, T, I >= 1, "
                                 f"got shape {tuple(x.shape)}")
            _check_finite(x, f"x_{split}")
            classes = self.output_kind == "classes"
            y = _as_tensor(getattr(self, f"y_{split}"), f"y_{split}", torch.int64 if classes else torch.float32)
            want = (x.shape[0],) if classes else (x.shape[0], x.shape[1], self.n_outputs)
            if tuple(y.shape) != want:
                what = "[N] class labels" if classes else "[N, T, n_outputs] real targets"
                raise ValueError(f"TaskData: field 'y_{split}' must be {what} of shape {list(want)} (x_{split} is "
                                 f"{list(x.shape)}, n_outputs={self.n_outputs}), got shape {tuple(y.shape)}")
            if classes and len(y) and (int(y.min()) < 0 or int(y.max()) >= self.n_outputs):
                raise ValueError(f"TaskData: field 'y_{split}' must hold labels in [0, {self.n_outputs}) "
                                 f"(n_outputs), got values in [{int(y.min())}, {int(y.max())}]")
            if not classes:
                _check_finite(y, f"y_{split}")
            setattr(self, f"x_{split}", x)
            setattr(self, f"y_{split}", y)
        if self.x_test.shape[1:] != self.x_train.shape[1:]:
            raise ValueError(f"TaskData: field 'x_test' must have the steps and inputs of x_train "
                             f"{list(self.x_train.shape[1:])}, got {list(self.x_test.shape[1:])}")

    @classmethod
    def from_tensors(cls, name: str, x_train, y_train, x_test, y_test, output_kind: Optional[str] = None,
                     n_outputs: Optional[int] = None) -> "TaskData":
        """A task from a user's own tensors or NumPy arrays.

        Args:
            x_train, x_test: [N, T, I] inputs, batch first.
            y_train, y_test: class labels [N] (integers) or real targets [N, T, C].
            output_kind: "classes" or "real"; default: "classes" for integer targets,
                "real" for floating ones.
            n_outputs: C; default: the largest label + 1 (classes) or the targets' last size.

        Raises:
            ValueError: as the constructor.
        """
        y = _as_tensor(y_train, "y_train", None)
        if output_kind is None:
            output_kind = "real" if y.is_floating_point() else "classes"
        if n_outputs is None:
            if output_kind == "classes":
                y_te = _as_tensor(y_test, "y_test", None)
                n_outputs = int(max(int(y.max()) if y.numel() else 0, int(y_te.max()) if y_te.numel() else 0)) + 1
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


def accuracy(task: TaskData, outputs: Tensor, targets: Tensor) -> float:
    """Task accuracy of model outputs [N, T, C] against targets.

    Classes: fraction of sequences whose last-step argmax equals the label.
    Real (flip-flop): fraction of (sequence, step, channel) with a nonzero
    target where the output has the target's sign.
    """
    if task.output_kind == "classes":
        return float((outputs[:, -1].argmax(-1) == targets).float().mean())
    mask = targets != 0
    return float(((outputs.sign() == targets.sign()) & mask).sum() / mask.sum().clamp(min=1))
