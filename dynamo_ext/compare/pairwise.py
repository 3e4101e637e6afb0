"""Distances between networks given as arrays, netrep and DSA style: ``pairwise_distances(data, measure)``.

``data`` holds one network's activity per entry: an array or tensor
[trials, time, units] (or [samples, units]), the units free to differ between
networks. CKA, SVCCA and Procrustes compare the same samples (the same trials
and steps, in order) and flatten trials and steps into samples; DSA fits each
network's own dynamics, so its trial counts and lengths may differ too.
Every measure returns a distance: 0 for identical activity, symmetric, its
range documented in ``DISTANCE_RANGES``. The population API
(``distance_matrices``) calls ``representation_distances`` below on a
recording's hidden states.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .._checks import check_choice, check_positive_int
from .all_pairs import MATRIX_MEASURES, all_pairs
from .representation import Representation

PAIRWISE_MEASURES = MATRIX_MEASURES + ("dsa",)
DISTANCE_RANGES = {
    "cka": "1 - debiased linear CKA, in [0, 1] (the debiased estimate may exceed 1 slightly)",
    "svcca": "1 - mean canonical correlation of the top singular subspaces, in [0, 1]",
    "procrustes": "sqrt(2 - 2 * nuclear norm of X^T Y) of centred unit-norm X, Y, in [0, sqrt(2)]",
    "dsa": "DSA's distance between the networks' DMD operators up to a similarity transform (dsa-metric; "
           "the angular score, in radians, by default)",
}


def _as_array(x, i: int) -> np.ndarray:
    """Entry ``i`` of ``data`` as a finite float64 array [trials, time, units] or [samples, units]."""
    if isinstance(x, torch.Tensor):
        a = x.detach().cpu().double().numpy()
    else:
        try:
            a = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"argument 'data' must hold arrays or tensors, entry {i} is a "
                             f"{type(x).__name__} ({exc})") from None
    if a.ndim not in (2, 3):
        raise ValueError(f"argument 'data' entry {i} must be [trials, time, units] or [samples, units], "
                         f"got shape {tuple(a.shape)}")
    if not np.isfinite(a).all():
        raise ValueError(f"argument 'data' entry {i} must be finite, got {int((~np.isfinite(a)).sum())} NaN or "
                         f"Inf values")
    return a


def representation_distances(data: Sequence, measures: Sequence[str] = MATRIX_MEASURES, progress: bool = False,
                             variance_kept: float = 0.99) -> Dict[str, np.ndarray]:
    """CKA, SVCCA and Procrustes distances [N, N] between every pair of ``data`` (one array or tensor of
    the same samples per network) in one pass of blocked matrix products (``all_pairs``).

    Raises:
        ValueError: an unknown measure, fewer than 4 samples, different sample counts, NaN/Inf.
    """
    reps = []
    for i, x in enumerate(data):
        if not isinstance(x, Representation):
            shape = tuple(x.shape) if isinstance(x, (torch.Tensor, np.ndarray)) else None
            try:
                x = Representation(x if shape is not None and len(shape) in (2, 3) else _as_array(x, i), variance_kept)
            except ValueError as exc:
                raise ValueError(f"argument 'data' entry {i}: {exc}") from None
        reps.append(x)
    counts = sorted({r.n for r in reps})
    if len(counts) > 1:
        raise ValueError(f"argument 'data' must hold the same samples (trials x steps) for every network with "
                         f"measures {tuple(measures)}, got sample counts {counts}; only 'dsa' compares "
                         f"networks on different trials")
    out = all_pairs(reps, measures, progress=progress)
    return {m: np.maximum(d, 0.0) for m, d in out.items()}


def pairwise_distances(data: Sequence, measure: str = "procrustes", n_jobs: Optional[int] = None,
                       progress: bool = False, **options) -> np.ndarray:
    """The distance between every pair of networks given as arrays (netrep's ``pairwise_distances``).

    Args:
        data: N >= 2 arrays or tensors, one network each: [trials, time, units] or
            [samples, units]; units may differ. "cka", "svcca", "procrustes" need
            the same samples for every network (the same trials and steps, in order);
            "dsa" needs [trials, time, units] of at least 3 steps, trials and steps free.
        measure: "cka", "svcca", "procrustes" (Kornblith et al. 2019; Raghu et al.
            2017; Williams et al. 2021 / Ding et al. 2021, see ``dynamo_ext.compare``),
            or "dsa" (Ostrow et al. 2023, dsa-metric, the ``[peers]`` extra). Ranges:
            ``DISTANCE_RANGES``.
        n_jobs: threads for the computation (torch's intra-op threads during the call;
            None keeps the current setting).
        progress: a tqdm bar over the blocks of the matrix products.
        options: "svcca": ``variance_kept`` (0.99); "dsa": ``n_delays`` (10, at most
            half the steps), ``rank`` (10), ``score_method`` ("angular"), ``iters`` (1500),
            ``seed`` (0).

    Returns:
        [N, N] float64, symmetric, zero diagonal, >= 0.

    Raises:
        ValueError: an unknown measure or option, fewer than 2 networks, an entry that
            is not a finite 2-D or 3-D array, different sample counts (not "dsa"),
            sequences too short for DSA, dsa-metric missing for "dsa".
    """
    check_choice(measure, "measure", PAIRWISE_MEASURES)
    if isinstance(data, (np.ndarray, torch.Tensor)) or not hasattr(data, "__len__") or len(data) < 2:
        raise ValueError(f"argument 'data' must be a list of at least 2 arrays (one network each), got "
                         f"{type(data).__name__}" + (f" of {len(data)}" if hasattr(data, "__len__") else ""))
    allowed = {"svcca": {"variance_kept"}, "dsa": {"n_delays", "rank", "score_method", "iters", "seed"}}
    unknown = sorted(set(options) - allowed.get(measure, set()))
    if unknown:
        raise ValueError(f"measure {measure!r} takes the options {sorted(allowed.get(measure, ()))}, got {unknown}")
    threads = torch.get_num_threads()
    if n_jobs is not None:
        torch.set_num_threads(check_positive_int(n_jobs, "n_jobs"))
    try:
        if measure == "dsa":
            return _dsa(data, **options)
        return representation_distances(data, (measure,), progress, options.get("variance_kept", 0.99))[measure]
    finally:
        torch.set_num_threads(threads)


def _dsa(data: Sequence, n_delays: Optional[int] = None, rank: Optional[int] = None, score_method: str = "angular",
         iters: int = 1500, seed: int = 0) -> np.ndarray:
    from .dsa import MIN_STEPS, dsa_matrix, settings_for

    arrays = [_as_array(x, i) for i, x in enumerate(data)]
    steps = [a.shape[1] if a.ndim == 3 else 0 for a in arrays]
    if min(steps) < MIN_STEPS:
        i = int(np.argmin(steps))
        raise ValueError(f"measure 'dsa' needs [trials, time, units] of at least {MIN_STEPS} steps per network, "
                         f"entry {i} has shape {tuple(arrays[i].shape)}")
    settings = settings_for(min(steps), min(a.shape[2] for a in arrays), n_delays, rank, score_method)
    return dsa_matrix(arrays, settings["n_delays"], settings["rank"], score_method, iters, seed)
