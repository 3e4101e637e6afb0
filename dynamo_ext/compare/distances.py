"""Every measure's model-by-model distance matrix on one recording, read from the registry.

The measures people use today to compare networks (CKA, SVCCA, Procrustes, weights, outputs; DSA
opt-in from the peers' package) and DYNAMO's own readings, each as a distance matrix over the same
recording that DYNAMO is fitted to, for the same clusterings and tests (docs/guide/comparing.md).
``plan_measures`` says which fit a time budget.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from ..population.population import Population
from ..population.recording import Recording
from .registry import MeasureInputs, compute_matrices, get_measure, measure_names


def plan_measures(recording: Recording, measures: Sequence[str], time_budget_s: Optional[float]):
    """Which measures fit a time budget: (run, skipped), skipped a list of {measure, estimated_s, why}.

    Each measure's estimate (its registry entry's ``estimate_seconds``: the all-pairs products at the
    running machine's measured GEMM rate; DSA at ``dsa.DSA_SECONDS_PER_PAIR`` per pair) is compared with
    ``time_budget_s`` one measure at a time, in the given order, each against what is left of the
    budget; a measure without an estimate (weights, outputs, DYNAMO's readings: one batched computation
    each) always runs. ``time_budget_s`` None runs everything.
    """
    if time_budget_s is None:
        return list(measures), []
    n = recording.n_models
    left, run, skipped = float(time_budget_s), [], []
    for name in measures:
        estimate = get_measure(name).estimate_seconds
        if estimate is None:
            run.append(name)
            continue
        est = estimate(recording)
        if est <= left:
            run.append(name)
            left -= est
        else:
            skipped.append({"measure": name, "estimated_s": round(est, 1),
                            "why": f"estimated {est:.0f} s for {n} models, over the {left:.0f} s left of "
                                   f"the {time_budget_s:g} s budget"})
    return run, skipped


def check_measures(measures: Sequence[str], family: Optional[str] = None, argument: str = "measures") -> None:
    """Every name registered, and applying to the population ``family`` (DSA compares trajectories over
    time; a CNN population is recorded at one step).

    Raises:
        ValueError: an unknown measure, or one that does not apply to ``family``.
    """
    known = measure_names()
    for name in measures:
        if name not in known:
            raise ValueError(f"argument {argument!r} must be one of {known}, got {name!r}")
        m = get_measure(name)
        if family is not None and family not in m.families:
            raise ValueError(f"argument {argument!r}: {name!r} applies to {m.families} populations, and this one "
                             f"is {family!r} (a CNN population is recorded at one step); leave it out")


def distance_matrices(population: Population, recording: Optional[Recording] = None,
                      measures: Optional[Sequence[str]] = None, max_sequences: int = 200,
                      progress: bool = False, meta=None, distributed: bool = False) -> Dict[str, np.ndarray]:
    """Pairwise distances [N, N] between the population's base models, one matrix per measure.

    Distances (each measure's ``description``, ``range`` and ``source``: ``registry.get_measure``):
    ``cka``: 1 - debiased linear CKA; ``svcca``: 1 - SVCCA; ``procrustes``: Procrustes distance;
    ``weights``: weight_distance (NaN between architectures or sizes); ``outputs``:
    output_disagreement; ``dsa`` (opt-in, the ``[peers]`` extra): DSA through dsa-metric; with
    ``meta``, DYNAMO's readings ``dynamo`` (theta) and ``dynamo_functional``.

    The per-model work is done once (centring, singular vectors) and all pairs of CKA, SVCCA and
    Procrustes come from one pass of blocked matrix products (``all_pairs``); weights and outputs are
    one batched computation each. Only DSA compares pair by pair.

    Args:
        population: the base models.
        recording: their recording (default: ``population.record`` on the
            first ``max_sequences`` training inputs).
        measures: registered names (default: the default baselines, ``MEASURES``).
        progress: tqdm bars over the blocks of the all-pairs products.
        meta: the meta-model fitted to the population, for DYNAMO's readings.
        distributed: split CKA's, SVCCA's and Procrustes' pairs of blocks over the ranks of the initialised
            torch.distributed process group (``all_pairs``); every rank gets every matrix.

    Raises:
        ValueError: an unknown measure, one that does not apply to the population's family, a
            recording of another population size, or a DYNAMO reading without ``meta``.
    """
    measures = measure_names(default=True, dynamo=False) if measures is None else tuple(measures)
    check_measures(measures, population.family)
    rec = recording if recording is not None else population.record(max_sequences=max_sequences)
    n = len(population)
    if rec.n_models != n:
        raise ValueError(f"argument 'recording' holds {rec.n_models} models, the population {n}")
    return compute_matrices(measures, MeasureInputs(rec, population, meta, progress=progress,
                                                    distributed=distributed))


def __getattr__(name):  # the registry's lists when asked, so that a newly registered measure is in them
    if name == "MEASURES":  # the default baselines
        return measure_names(default=True, dynamo=False)
    if name == "ALL_MEASURES":  # every baseline and peer
        return measure_names(dynamo=False)
    if name == "PEER_MEASURES":  # opt-in, from the peers' packages
        return tuple(n for n in measure_names(dynamo=False) if get_measure(n).extra == "peers")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ALL_MEASURES", "MEASURES", "PEER_MEASURES", "check_measures", "distance_matrices", "plan_measures"]
