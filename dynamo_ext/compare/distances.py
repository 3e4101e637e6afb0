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
from .all_pairs import MATRIX_MEASURES, all_pairs
from .outputs import output_disagreement_matrix
from .representation import Representation
from .weights import weight_distance_matrix

MEASURES = ("cka", "svcca", "procrustes", "weights", "outputs")  # the default set
PEER_MEASURES = ("dsa",)  # opt-in, from the peers' packages (dynamo_ext.compare.dsa; the [peers] extra)
ALL_MEASURES = MEASURES + PEER_MEASURES


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
    if matrix:
        reps = [Representation(h) for h in rec.hidden]  # per-model work done once
        out.update(all_pairs(reps, matrix, progress=progress))
        del reps
    if "weights" in measures:
        out["weights"] = weight_distance_matrix([m.model for m in population.members])
    if "outputs" in measures:
        out["outputs"] = output_disagreement_matrix(rec.outputs, rec.output_kind)
    if "dsa" in measures:
        from .dsa import dsa_distances
        out["dsa"] = dsa_distances(rec)
    return {name: np.where(np.isnan(out[name]), out[name], np.maximum(out[name], 0.0)) for name in measures}
