"""Every baseline measure's model-by-model distance matrix on one recording.

The measures people use today to compare networks (CKA, SVCCA, Procrustes,
weights, outputs; DSA opt-in from the peers' package), each as a distance
matrix over the same recording that DYNAMO is fitted to, for the same
clusterings (docs/guide/comparing.md).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from .._checks import check_choice
from ..population.population import Population
from ..population.recording import Recording
from .all_pairs import MATRIX_MEASURES, estimate_seconds, gemm_rate
from .outputs import output_disagreement_matrix
from .pairwise import representation_distances
from .weights import weight_distance_matrix

MEASURES = ("cka", "svcca", "procrustes", "weights", "outputs")  # the default set
PEER_MEASURES = ("dsa",)  # opt-in, from the peers' packages (dynamo_ext.compare.dsa; the [peers] extra)
ALL_MEASURES = MEASURES + PEER_MEASURES


DSA_SECONDS_PER_PAIR = 1.3  # dsa-metric with dsa.DSA_DEFAULTS, 2-core CPU, the low end of what was measured


def plan_measures(recording: Recording, measures: Sequence[str], time_budget_s: Optional[float]):
    """Which measures fit a time budget: (run, skipped), skipped a list of {measure, estimated_s, why}.

    The estimates (``all_pairs.estimate_seconds`` at the running machine's measured GEMM rate; DSA at
    ``DSA_SECONDS_PER_PAIR`` per pair) are compared with ``time_budget_s`` one measure at a time, in the
    given order, each against what is left of the budget; weights and outputs always run (one batched
    computation each). ``time_budget_s`` None runs everything.
    """
    if time_budget_s is None:
        return list(measures), []
    n = recording.n_models
    n_samples = int(recording.hidden[0].shape[0] * recording.hidden[0].shape[1]) if n else 0
    rate = gemm_rate() if any(m in MATRIX_MEASURES for m in measures) else 0.0
    left, run, skipped = float(time_budget_s), [], []
    for m in measures:
        if m in MATRIX_MEASURES:
            est = estimate_seconds(m, n_samples, recording.state_sizes, rate)
        elif m == "dsa":
            est = DSA_SECONDS_PER_PAIR * n * (n - 1) / 2
        else:
            run.append(m)
            continue
        if est <= left:
            run.append(m)
            left -= est
        else:
            skipped.append({"measure": m, "estimated_s": round(est, 1),
                            "why": f"estimated {est:.0f} s for {n} models, over the {left:.0f} s left of "
                                   f"the {time_budget_s:g} s budget"})
    return run, skipped


def distance_matrices(population: Population, recording: Optional[Recording] = None,
                      measures: Sequence[str] = MEASURES, max_sequences: int = 200,
                      progress: bool = False) -> Dict[str, np.ndarray]:
    """Pairwise distances [N, N] between the population's base models, one matrix per measure.

    Distances: ``cka``: 1 - debiased linear CKA; ``svcca``: 1 - SVCCA;
    ``procrustes``: Procrustes distance; ``weights``: weight_distance (NaN
    between architectures or sizes); ``outputs``: output_disagreement;
    ``dsa`` (opt-in, ``measures=(..., "dsa")``): DSA through dsa-metric
    with ``dsa.DSA_DEFAULTS`` (dynamo_ext.compare.dsa).

    The per-model work is done once (centring, singular vectors) and all
    pairs of CKA, SVCCA and Procrustes come from blocked matrix products
    (``dynamo_ext.compare.all_pairs``); weights and outputs are one batched
    computation each. Only DSA compares pair by pair.

    Args:
        population: the base models.
        recording: their recording (default: ``population.record`` on the
            first ``max_sequences`` training inputs).
        measures: a subset of ALL_MEASURES (default MEASURES).
        progress: tqdm bars over the blocks of the all-pairs products.

    Raises:
        ValueError: an unknown measure, a recording of another population size, or "dsa" on a
            recording of single steps (CNNs).
    """
    for m in measures:
        check_choice(m, "measures", ALL_MEASURES)
    rec = recording if recording is not None else population.record(max_sequences=max_sequences)
    n = len(population)
    if rec.n_models != n:
        raise ValueError(f"argument 'recording' holds {rec.n_models} models, the population {n}")
    if "dsa" in measures:  # before any other measure's work
        from .dsa import check_has_time
        check_has_time(rec)
    out = {}
    matrix = [m for m in measures if m in MATRIX_MEASURES]
    if matrix:  # per-model work done once, all pairs in blocked matrix products
        out.update(representation_distances(rec.hidden, matrix, progress=progress))
    if "weights" in measures:
        out["weights"] = weight_distance_matrix([m.model for m in population.members])
    if "outputs" in measures:
        out["outputs"] = output_disagreement_matrix(rec.outputs, rec.output_kind)
    if "dsa" in measures:
        from .dsa import dsa_distances
        out["dsa"] = dsa_distances(rec)
    return {name: np.where(np.isnan(out[name]), out[name], np.maximum(out[name], 0.0)) for name in measures}
