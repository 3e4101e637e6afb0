"""Tasks the base models are trained on, generated locally (nothing is downloaded).

- ``mnist1d``: MNIST-1D (Greydanus 2020; package ``mnist1d``, ``make_dataset``),
  40 time steps of one input, 10 classes read at the last step.
- ``digits``: scikit-learn's bundled 8x8 handwritten digits, the 8 rows as 8
  time steps of 8 inputs, 10 classes read at the last step.
- ``flipflop``: the 3-bit flip-flop (Sussillo & Barak 2013): sparse +-1 pulses
  on 3 channels; the target of each channel at every step is the sign of its
  last pulse (0 before the first). Real outputs at every step.
- ``integrate``: the same pulse stream; target per channel: the sign of the
  running sum of its pulses (0 while the sum is 0).
- ``first``: the same pulse stream; target per channel: the sign of its
  first pulse, held for the rest of the sequence (0 before it): a latch that
  ignores later pulses.

The three pulse tasks (PULSE_TASKS) share one input stream for a given seed
and differ only in the computation: a population trained on them has known
computational groups (issue "uses of the embedding space").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import Tensor

from .._checks import check_choice, check_positive_int

TASKS = ("mnist1d", "digits", "flipflop", "integrate", "first")
PULSE_TASKS = ("flipflop", "integrate", "first")


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


@lru_cache(maxsize=4)
def _mnist1d_arrays(seed: int, num_samples: int):
    import mnist1d.data as m1d

    args = m1d.get_dataset_args()
    args.seed = seed
    args.num_samples = num_samples
    return m1d.make_dataset(args)


def _mnist1d(seed: int = 42, num_samples: int = 5000) -> TaskData:
    d = _mnist1d_arrays(seed, num_samples)
    f = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32).unsqueeze(-1)  # noqa: E731
    return TaskData("mnist1d", f(d["x"]), torch.tensor(d["y"], dtype=torch.int64), f(d["x_test"]),
                    torch.tensor(d["y_test"], dtype=torch.int64), "classes", 10,
                    {"seed": seed, "num_samples": num_samples})


def _digits(seed: int = 0, test_fraction: float = 0.2) -> TaskData:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32)  # [N, 8 rows = steps, 8 inputs]
    y = torch.tensor(data.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(len(y) * test_fraction))
    te, tr = perm[:n_test], perm[n_test:]
    return TaskData("digits", x[tr], y[tr], x[te], y[te], "classes", 10,
                    {"seed": seed, "test_fraction": test_fraction})


def pulse_targets(x: Tensor, kind: str = "flipflop") -> Tensor:
    """Targets [n, T, bits] of a pulse task for pulse inputs x [n, T, bits] (module docstring)."""
    check_choice(kind, "kind", PULSE_TASKS)
    if kind == "integrate":
        return x.cumsum(1).sign()
    latch = kind == "first"
    y = torch.zeros_like(x)
    state = torch.zeros_like(x[:, 0])
    for t in range(x.shape[1]):
        take = (x[:, t] != 0) & (state == 0) if latch else x[:, t] != 0
        state = torch.where(take, x[:, t], state)
        y[:, t] = state
    return y


def pulse_inputs(n: int, seq_len: int, n_bits: int, pulse_prob: float, generator: torch.Generator) -> Tensor:
    """Sparse +-1 pulses [n, seq_len, n_bits]: each entry is a pulse with probability pulse_prob."""
    u = torch.rand(n, seq_len, n_bits, generator=generator)
    sign = torch.where(torch.rand(n, seq_len, n_bits, generator=generator) < 0.5, -1.0, 1.0)
    return torch.where(u < pulse_prob, sign, torch.zeros(()))


def flipflop_batch(n: int, seq_len: int, n_bits: int, pulse_prob: float, generator: torch.Generator):
    """Inputs [n, seq_len, n_bits] of +-1 pulses and flip-flop targets of the same shape."""
    x = pulse_inputs(n, seq_len, n_bits, pulse_prob, generator)
    return x, pulse_targets(x, "flipflop")


def _pulse_task(kind: str, seed: int = 0, n_train: int = 1000, n_test: int = 200, seq_len: int = 60,
                n_bits: int = 3, pulse_prob: float = 0.08) -> TaskData:
    g = torch.Generator().manual_seed(seed)
    xtr = pulse_inputs(n_train, seq_len, n_bits, pulse_prob, g)
    xte = pulse_inputs(n_test, seq_len, n_bits, pulse_prob, g)
    return TaskData(kind, xtr, pulse_targets(xtr, kind), xte, pulse_targets(xte, kind), "real", n_bits,
                    {"seed": seed, "n_train": n_train, "n_test": n_test, "seq_len": seq_len,
                     "n_bits": n_bits, "pulse_prob": pulse_prob})


def load_task(name: str, **config) -> TaskData:
    """Generate a task's data locally.

    Args:
        name: "mnist1d", "digits", "flipflop", "integrate" or "first", or
            "neurogym:<env id>" (dynamo_ext.population.neurogym; needs the
            ``[neurogym]`` extra).
        **config: the generator's settings (mnist1d: seed, num_samples;
            digits: seed, test_fraction; pulse tasks: seed, n_train, n_test,
            seq_len, n_bits, pulse_prob; the same settings give the three
            pulse tasks the same inputs).

    Returns:
        TaskData with float32 inputs [N, T, I].

    Raises:
        ValueError: unknown task name or setting.
    """
    if isinstance(name, str) and name.startswith("neurogym:"):
        from .neurogym import neurogym_task
        return neurogym_task(name, **config)
    check_choice(name, "name", TASKS)
    if name in PULSE_TASKS:
        maker = partial(_pulse_task, name)
    else:
        maker = {"mnist1d": _mnist1d, "digits": _digits}[name]
    for key in ("num_samples", "n_train", "n_test", "seq_len", "n_bits"):
        if key in config:
            check_positive_int(config[key], key)
    try:
        task = maker(**config)
    except TypeError as exc:
        raise ValueError(f"load_task({name!r}): bad settings {config}: {exc}") from exc
    task.generated = True
    return task
