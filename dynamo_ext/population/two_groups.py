"""Two groups of built leaky integrators whose answer is known: the ground truth for group tests.

Every network is a ``LatentAttractorRNN`` of kind "point" (dynamo_ext.population.attractors): a latent
x' = a x + g u integrating the evidence input u, with an input copy v = beta u, embedded by random
orthonormal columns into d hidden units. The leak a is the computation (how fast evidence is
forgotten); the hidden size d, the input-copy size beta and the embedding are nuisances: they change
the activity, not what is computed.

- ``design="null"``: both groups draw their leaks from the same interval, and differ in every nuisance
  (group "a": small networks with a small input copy; group "b": wide networks with a large one). A
  measure of computation should not tell the groups apart: a test on it should reject at its level.
- ``design="alternative"``: the groups' leaks come from intervals ``gap`` apart, and every nuisance is
  drawn alike for both. A measure of computation should tell them apart.

No training: building a population costs milliseconds per network.
"""
from __future__ import annotations

import math
from typing import List, Tuple

import numpy as np

from .._checks import check_choice, check_positive_float, check_positive_int
from .attractors import DEFAULTS, LatentAttractorRNN, evidence_task
from .population import Population
from .task_data import TaskData

DESIGNS = ("null", "alternative")
LEAK_RANGE = (0.80, 0.98)
# the nuisances: (hidden sizes, input-copy sizes) per group of a null; both intervals for an alternative
SMALL, WIDE = ((8, 16), (0.5, 2.0)), ((32, 64), (4.0, 10.0))


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def two_group_population(n_per_group: int = 12, design: str = "null", gap: float = 0.06, seed: int = 0,
                         task: TaskData = None) -> Tuple[Population, List[str]]:
    """A built population of two groups of leaky integrators and its group labels.

    Args:
        n_per_group: networks per group (>= 2).
        design: "null" (same leak distribution, different nuisances) or "alternative" (leak intervals
            ``gap`` apart, nuisances drawn alike); see the module docstring.
        gap: for an alternative, the leaks of group "a" are uniform in [0.80, 0.89 - gap/2] and those
            of group "b" in [0.89 + gap/2, 0.98] (the effect size: the smallest difference in leak).
        seed: draws every leak, size, input copy and embedding, and the evidence task.
        task: the evidence task (default ``attractors.evidence_task(seed=seed)``).

    Returns:
        (population with ids "a-<i>" and "b-<i>", labels ["a", ..., "b", ...]).

    Raises:
        ValueError: ``n_per_group`` < 2, an unknown design, a gap outside (0, 0.18).
    """
    check_positive_int(n_per_group, "n_per_group", minimum=2)
    check_choice(design, "design", DESIGNS)
    mid = 0.5 * sum(LEAK_RANGE)
    if not 0 < check_positive_float(gap, "gap") < LEAK_RANGE[1] - LEAK_RANGE[0]:
        raise ValueError(f"argument 'gap' must be in (0, {LEAK_RANGE[1] - LEAK_RANGE[0]:.2f}), got {gap}")
    rng = np.random.default_rng(seed)
    task = task or evidence_task(seq_len=DEFAULTS["seq_len"], seed=seed)
    models, ids, labels = [], [], []
    for gi, group in enumerate(("a", "b")):
        if design == "null":
            leaks, (sizes, betas) = LEAK_RANGE, (SMALL, WIDE)[gi]
        else:
            leaks = (LEAK_RANGE[0], mid - gap / 2) if gi == 0 else (mid + gap / 2, LEAK_RANGE[1])
            sizes, betas = (SMALL[0][0], WIDE[0][1]), (SMALL[1][0], WIDE[1][1])
        for i in range(n_per_group):
            d = int(round(_log_uniform(rng, *sizes)))
            models.append(LatentAttractorRNN("point", _log_uniform(rng, *betas), d, task.seq_len,
                                             leak=float(rng.uniform(*leaks)),
                                             seed=seed * 1_000_003 + gi * 10_007 + i))
            ids.append(f"{group}-{i}")
            labels.append(group)
    return Population.from_modules(models, task, ids=ids), labels


__all__ = ["DESIGNS", "two_group_population"]
