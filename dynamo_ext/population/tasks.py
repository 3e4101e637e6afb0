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
computational groups (docs/results.md).
"""
from __future__ import annotations

from functools import lru_cache, partial

import numpy as np
import torch
from torch import Tensor

from .._checks import check_choice, check_positive_int
from .task_data import TaskData, accuracy  # noqa: F401 (accuracy: re-exported, dynamo_ext.population.tasks.accuracy)

TASKS = ("mnist1d", "digits", "flipflop", "integrate", "first")
PULSE_TASKS = ("flipflop", "integrate", "first")


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
    if name not in TASKS:
        raise ValueError(f"argument 'name' must be one of {TASKS} or 'neurogym:<env id>' (the [neurogym] "
                         f"extra), got {name!r}")
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
