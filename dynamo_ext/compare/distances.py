"""Every baseline measure's model-by-model distance matrix on one recording.

The measures people use today to compare networks (CKA, SVCCA, Procrustes,
weights, outputs; DSA opt-in from the peers' package), each as a distance
matrix over the same recording that DYNAMO is fitted to, for the same
clusterings (DESIGN.md section 2, "baselines").
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from .._checks import check_choice
from ..population.population import Population
from ..population.recording import Recording
from .cka import linear_cka
from .outputs import output_disagreement
from .procrustes import procrustes_distance
from .representation import Representation
from .svcca import svcca
from .weights import weight_distance

MEASURES = ("cka", "svcca", "procrustes", "weights", "outputs")  # the default set
PEER_MEASURES = ("dsa",)  # opt-in, from the peers' packages (dynamo_ext.compare.dsa; the [peers] extra)
ALL_MEASURES = MEASURES + PEER_MEASURES


def distance_matrices(population: Population, recording: Optional[Recording] = None,
                      measures: Sequence[str] = MEASURES, max_sequences: int = 200) -> Dict[str, np.ndarray]:
    """Pairwise distances [N, N] between the population's base models, one matrix per measure.

    Distances: ``cka``: 1 - debiased linear CKA; ``svcca``: 1 - SVCCA;
    ``procrustes``: Procrustes distance; ``weights``: weight_distance (NaN
    between architectures or sizes); ``outputs``: output_disagreement;
    ``dsa`` (opt-in, ``measures=(..., "dsa")``): DSA through dsa-metric
    with ``dsa.DSA_DEFAULTS`` (dynamo_ext.compare.dsa).

    Args:
        population: the base models.
        recording: their recording (default: ``population.record`` on the
            first ``max_sequences`` training inputs).
        measures: a subset of ALL_MEASURES (default MEASURES).

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
    reps = [Representation(h) for h in rec.hidden]  # per-model work done once
    pairwise = {
        "cka": lambda i, j: 1.0 - linear_cka(reps[i], reps[j]),
        "svcca": lambda i, j: 1.0 - svcca(reps[i], reps[j]),
        "procrustes": lambda i, j: procrustes_distance(reps[i], reps[j]),
        "weights": lambda i, j: weight_distance(population.members[i].model, population.members[j].model),
        "outputs": lambda i, j: output_disagreement(rec.outputs[i], rec.outputs[j], rec.output_kind),
    }
    out = {}
    for name in measures:
        if name == "dsa":
            from .dsa import dsa_distances
            out[name] = dsa_distances(rec)
            continue
        d = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                d[i, j] = d[j, i] = pairwise[name](i, j)
        out[name] = np.where(np.isnan(d), d, np.maximum(d, 0.0))
    return out
