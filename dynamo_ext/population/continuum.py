"""A population of any size with a continuous ground truth, built in code with no training.

Each network is a ``LatentAttractorRNN`` (dynamo_ext.population.attractors): a latent x
integrating the evidence input u_t, embedded with an input copy v_t = beta u_t by random
orthonormal columns into d hidden units. Where the attractor population has three kinds at fixed
settings, here every network draws its own:

- kind: "point" (x' = a x + g u, a leaky integrator with leak a drawn uniformly from
  ``leak_range``) or "bistable" (x' = x + k (x - x^3) + g u, well depth k drawn uniformly from
  ``k_range``), half each;
- the input-copy size beta, log-uniform in ``beta_range`` (a nuisance: geometry sees it first);
- the hidden size d, log-uniform integer in ``size_range``, and the embedding's seed.

The ground truth is the *slope* f'(0) (a for point networks, 1 + k for bistable ones), one
continuous number that orders every network's dynamics (how fast evidence is forgotten, or how
fast it is pushed to a decision); a model embedding that reads the dynamics should be monotone in
it, whatever beta and d are. Building N networks costs milliseconds each, so N = 1024 is cheap.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from .._checks import check_positive_int
from .attractors import DEFAULTS, LatentAttractorRNN, evidence_task
from .population import Population
from .task_data import TaskData

CONTINUUM_KINDS = ("point", "bistable")


def _check_range(value: Tuple[float, float], name: str, low: float, high: float) -> Tuple[float, float]:
    a, b = (float(v) for v in value)
    if not low <= a <= b <= high:
        raise ValueError(f"argument '{name}' must be an interval (lo, hi) with {low} <= lo <= hi <= {high}, "
                         f"got {tuple(value)}")
    return a, b


def continuum_population(n_models: int, leak_range: Tuple[float, float] = (0.80, 0.98),
                         k_range: Tuple[float, float] = (0.02, 0.10),
                         beta_range: Tuple[float, float] = (0.5, 10.0),
                         size_range: Tuple[int, int] = (8, 256), kinds: Sequence[str] = CONTINUUM_KINDS,
                         seq_len: int = DEFAULTS["seq_len"], noise: float = DEFAULTS["noise"], seed: int = 0,
                         task: Optional[TaskData] = None) -> Population:
    """``n_models`` built networks with continuous ground-truth parameters (see the module docstring).

    Args:
        n_models: N >= 1 (kinds alternate: network i has kind ``kinds[i % len(kinds)]``).
        leak_range, k_range, beta_range, size_range: the intervals the parameters are drawn from.
        kinds: a subset of ("point", "bistable").
        seq_len, noise: the evidence task's (``attractors.evidence_task``), unless ``task`` is given.
        seed: draws every parameter and embedding; the same seed gives the same population.

    Returns:
        A Population (ids "<kind>-<i>", arch = kind); ``continuum_slopes(population)`` gives the
        ground truth f'(0) per member.

    Raises:
        ValueError: N < 1, an interval outside its range (leak in (0, 1), k > 0, beta >= 0,
            sizes >= 2), an unknown kind.
    """
    check_positive_int(n_models, "n_models")
    leak = _check_range(leak_range, "leak_range", 1e-6, 1 - 1e-6)
    k = _check_range(k_range, "k_range", 1e-6, math.inf)
    beta = _check_range(beta_range, "beta_range", 0.0, math.inf)
    size = _check_range(size_range, "size_range", 2, math.inf)
    kinds = list(kinds)
    bad = [kd for kd in kinds if kd not in CONTINUUM_KINDS]
    if not kinds or bad:
        raise ValueError(f"argument 'kinds' must be a non-empty subset of {CONTINUUM_KINDS}, got {kinds}")
    rng = np.random.default_rng(seed)
    task = task or evidence_task(seq_len=seq_len, noise=noise, seed=seed)
    models, ids = [], []
    width = len(str(n_models - 1))
    for i in range(n_models):
        kind = kinds[i % len(kinds)]
        a, kk = rng.uniform(*leak), rng.uniform(*k)
        b = math.exp(rng.uniform(math.log(max(beta[0], 1e-12)), math.log(max(beta[1], 1e-12))))
        d = int(round(math.exp(rng.uniform(math.log(size[0]), math.log(size[1])))))
        models.append(LatentAttractorRNN(kind, b, d, task.seq_len, leak=a, k=kk, seed=seed * 1_000_003 + i))
        ids.append(f"{kind}-{i:0{width}d}")
    return Population.from_modules(models, task, ids=ids)


def continuum_slopes(population: Population) -> torch.Tensor:
    """The ground truth of a ``continuum_population``: f'(0) per member [N] float64.

    Raises:
        ValueError: a member that is not a LatentAttractorRNN.
    """
    out = []
    for m in population.members:
        if not isinstance(m.model, LatentAttractorRNN):
            raise ValueError(f"member {m.id!r} is a {type(m.model).__name__}, not a built LatentAttractorRNN")
        out.append(m.model.slope)
    return torch.tensor(out, dtype=torch.float64)


__all__ = ["CONTINUUM_KINDS", "continuum_population", "continuum_slopes"]
