"""Tasks of neurogym (Molano-Mazon et al. 2022, github.com/neurogym/neurogym) as TaskData.

``load_task("neurogym:<env id>", n_train=, n_test=, seed=, dt=)`` generates
``n_train + n_test`` trials of the environment locally (neurogym's trial
generator, seeded), one sequence per trial: inputs ``env.ob`` [T_trial, I] and
ground truth ``env.gt`` [T_trial]. Trials of different lengths (neurogym's
random epoch durations) are left-padded with zero input to the longest
trial's length T, so that every trial ends at its decision; the target is
the class of the last step (``output_kind="classes"``, cross-entropy at the
last step, as the zoo trains), with ``n_outputs`` the action space's size.
Per-step targets (the fixation class before the decision) are not used.
neurogym is an optional dependency: ``pip install "dynamo_ext[neurogym]"``.
"""
from __future__ import annotations

import warnings
from typing import Any, Dict

import numpy as np
import torch

PREFIX = "neurogym:"


def neurogym_task(name: str, n_train: int = 1000, n_test: int = 200, seed: int = 0, dt: int = 100,
                  **env_kwargs: Any):
    """TaskData of ``n_train`` and ``n_test`` trials of the neurogym environment ``name`` ("neurogym:<id>").

    Args:
        name: "neurogym:" followed by a neurogym environment id, e.g.
            "neurogym:ContextDecisionMaking-v0".
        n_train, n_test: trials per split; seed: the trial generator's seed;
        dt: the environment's time step (ms); env_kwargs: further keyword
            arguments of ``neurogym.make``.

    Returns:
        TaskData (inputs float32 [N, T, I], labels int64 [N]); its config
        records every setting and T, so that ``load_task`` makes it again.

    Raises:
        ImportError: neurogym not installed (the ``[neurogym]`` extra).
        ValueError: an unknown environment, a non-discrete action space, bad settings.
    """
    from .._checks import check_positive_int
    from .task_data import TaskData

    try:
        import neurogym as ngym
    except ImportError as exc:
        raise ImportError(f"task {name!r} needs neurogym, the [neurogym] extra: pip install \"dynamo_ext[neurogym]\"") from exc
    check_positive_int(n_train, "n_train")
    check_positive_int(n_test, "n_test")
    check_positive_int(dt, "dt")
    env_id = name[len(PREFIX):]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = ngym.make(env_id, dt=dt, **env_kwargs)
    except Exception as exc:  # gymnasium raises its own error types for unknown ids and arguments
        raise ValueError(f"argument 'name': neurogym cannot make {env_id!r} with dt={dt} and {env_kwargs}: "
                         f"{exc}") from exc
    n_classes = getattr(env.action_space, "n", None)
    if n_classes is None:
        raise ValueError(f"argument 'name': {env_id!r} has a continuous action space {env.action_space}; only "
                         "discrete ones (classes) are supported")
    env = env.unwrapped
    env.seed(seed)
    obs, labels = [], []
    for _ in range(n_train + n_test):
        env.new_trial()
        obs.append(np.asarray(env.ob, dtype=np.float32))
        labels.append(int(np.asarray(env.gt).reshape(len(env.ob), -1)[-1, 0]))
    T = max(len(o) for o in obs)
    x = np.zeros((len(obs), T, obs[0].shape[1]), dtype=np.float32)
    for i, o in enumerate(obs):
        x[i, T - len(o):] = o  # left-padded: every trial ends at its decision
    x, y = torch.from_numpy(x), torch.tensor(labels, dtype=torch.long)
    config: Dict[str, Any] = {"n_train": n_train, "n_test": n_test, "seed": seed, "dt": dt, **env_kwargs}
    task = TaskData(name, x[:n_train], y[:n_train], x[n_train:], y[n_train:], "classes", int(n_classes), config)
    task.generated = True
    return task
