"""Peer measures from other packages, on the same recordings as every baseline.

- ``dsa_distances``: Dynamical Similarity Analysis (Ostrow, Eisen, Kozachkov &
  Fiete, NeurIPS 2023, arXiv:2306.10168) through its authors' package
  ``dsa-metric`` (``pip install "dynamo_ext[peers]"``): each model's hidden
  trajectories are fitted by a linear (HAVOK) DMD model on delay embeddings,
  and two models' DMD matrices are compared up to a similarity transform.
  Settings: ``n_delays`` delays, DMD rank ``rank``, ``score_method`` (the
  angular distance by default: the best of 9 settings on the pulse population,
  docs/guide/comparing.md). Costly: 200-300 s for 18 models on 2 cores.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from .._checks import check_choice, check_positive_int
from ..population.recording import Recording
from .registry import Measure, register

DSA_DEFAULTS: Dict = {"n_delays": 10, "rank": 10, "score_method": "angular"}


MIN_STEPS = 3  # a delay embedding of at least one delay, and a step to predict


def check_has_time(recording: Recording) -> None:
    """DSA compares dynamics over time steps: refuse a recording of single steps (a CNN population).

    Raises:
        ValueError: fewer than ``MIN_STEPS`` steps per sequence.
    """
    T = int(recording.hidden[0].shape[1])
    if T < MIN_STEPS:
        raise ValueError(f"measure 'dsa' compares trajectories over time and needs at least {MIN_STEPS} steps per "
                         f"sequence, got a recording of {T} (a CNN population is recorded at one step: its "
                         f"layers' pooled activations); leave 'dsa' out of 'measures'")


def settings_for(steps: int, min_width: int, n_delays: Optional[int] = None, rank: Optional[int] = None,
                 score_method: str = "angular") -> Dict:
    """DSA's settings for sequences of ``steps`` steps of at least ``min_width`` units: the defaults (10
    delays, rank 10, angular), the delays capped at half the sequence length and the rank at
    delays * ``min_width``.

    Raises:
        ValueError: an unknown score method, ``n_delays`` not below ``steps``, a rank below 1.
    """
    check_choice(score_method, "score_method", ("angular", "euclidean", "wasserstein"))
    if n_delays is None:
        n_delays = min(DSA_DEFAULTS["n_delays"], max(steps // 2, 1))
    elif check_positive_int(n_delays, "n_delays") >= steps:
        raise ValueError(f"argument 'n_delays' must be below the sequence length {steps}, got {n_delays}")
    rank = DSA_DEFAULTS["rank"] if rank is None else check_positive_int(rank, "rank")
    return {"n_delays": n_delays, "rank": min(rank, n_delays * min_width), "score_method": score_method}


def dsa_settings(recording: Recording, n_delays: Optional[int] = None, rank: Optional[int] = None,
                 score_method: str = "angular") -> Dict:
    """The settings ``dsa_distances`` uses on this recording (``settings_for`` its steps and smallest d_n)."""
    return settings_for(int(recording.hidden[0].shape[1]), min(recording.state_sizes), n_delays, rank, score_method)


def dsa_distances(recording: Recording, n_delays: Optional[int] = None, rank: Optional[int] = None,
                  score_method: str = "angular", max_sequences: int = 50, iters: int = 1500,
                  seed: int = 0) -> np.ndarray:
    """DSA distances [N, N] between the recorded models' hidden trajectories (dsa-metric's ``DSA``).

    Args:
        recording: hidden states [S, T, d_n] per model (``Population.record``);
            the first ``max_sequences`` sequences are the trials.
        n_delays, rank: the delay embedding and the DMD rank (default: 10
            each, the delays capped at half the sequence length, the rank at
            n_delays * the smallest d_n; ``dsa_settings``).
        score_method: "angular", "euclidean" or "wasserstein".
        iters: the similarity transform's optimisation steps.

    Raises:
        ImportError: dsa-metric not installed (the ``[peers]`` extra).
        ValueError: bad settings, sequences shorter than the delays or
            than ``MIN_STEPS`` (a CNN population's one-step recording).
    """
    check_choice(score_method, "score_method", ("angular", "euclidean", "wasserstein"))
    check_has_time(recording)
    settings = dsa_settings(recording, n_delays, rank, score_method)
    return dsa_matrix([h[:max_sequences].double().numpy() for h in recording.hidden], settings["n_delays"],
                      settings["rank"], score_method, iters, seed)


def dsa_matrix(data, n_delays: int, rank: int, score_method: str = "angular", iters: int = 1500,
               seed: int = 0) -> np.ndarray:
    """DSA distances [N, N] between trajectories ``data`` (N float64 arrays [trials, time, units], the
    trial counts and units free to differ) through dsa-metric's ``DSA``; symmetric, zero diagonal,
    clipped at 0.

    Raises:
        ImportError: dsa-metric not installed (the ``[peers]`` extra).
    """
    try:
        from DSA import DSA
    except ImportError as exc:
        raise ImportError('measure "dsa" needs dsa-metric, the [peers] extra: pip install "dynamo_ext[peers]"') from exc
    import torch

    # dsa-metric draws from the global generators: seeded here, and both restored after
    numpy_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            dsa = DSA(list(data), n_delays=n_delays, rank=rank, score_method=score_method, iters=iters, verbose=False)
            d = np.asarray(dsa.fit_score(), dtype=np.float64)
        finally:
            np.random.set_state(numpy_state)
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0.0)
    return np.maximum(d, 0.0)


def dsa_arrays(data: Sequence, progress: bool = False, n_delays: Optional[int] = None, rank: Optional[int] = None,
               score_method: str = "angular", iters: int = 1500, seed: int = 0) -> np.ndarray:
    """DSA between networks given as arrays [trials, time, units] (``pairwise_distances(data, "dsa")``)."""
    from .representation import as_array

    arrays = [as_array(x, i) for i, x in enumerate(data)]
    steps = [a.shape[1] if a.ndim == 3 else 0 for a in arrays]
    if min(steps) < MIN_STEPS:
        i = int(np.argmin(steps))
        raise ValueError(f"measure 'dsa' needs [trials, time, units] of at least {MIN_STEPS} steps per network, "
                         f"entry {i} has shape {tuple(arrays[i].shape)}")
    settings = settings_for(min(steps), min(a.shape[2] for a in arrays), n_delays, rank, score_method)
    return dsa_matrix(arrays, settings["n_delays"], settings["rank"], score_method, iters, seed)


def _matrix(inputs) -> np.ndarray:
    check_has_time(inputs.recording)
    return dsa_distances(inputs.recording)


DSA_SECONDS_PER_PAIR = 1.3  # dsa-metric with DSA_DEFAULTS, 2-core CPU, the low end of what was measured

MEASURE = register(Measure(
    name="dsa", description="DSA, dsa-metric's distance between the networks' DMD operators up to a "
                            "similarity transform",
    range="the angular score, in radians, by default (in [0, pi])",
    source="Ostrow, Eisen, Kozachkov & Fiete, NeurIPS 2023 (arXiv:2306.10168); dsa-metric",
    reads="trajectories", matrix=_matrix, arrays=dsa_arrays,
    options=("n_delays", "rank", "score_method", "iters", "seed"), default=False, extra="peers",
    families=("rnn",), estimate_seconds=lambda rec, rate=None: DSA_SECONDS_PER_PAIR * rec.n_models * (rec.n_models - 1) / 2))
