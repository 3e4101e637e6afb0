"""Distances between networks given as arrays, netrep and DSA style: ``pairwise_distances(data, measure)``.

``data`` holds one network's activity per entry: an array or tensor
[trials, time, units] (or [samples, units]), the units free to differ between
networks. CKA, SVCCA and Procrustes compare the same samples (the same trials
and steps, in order) and flatten trials and steps into samples; DSA fits each
network's own dynamics, so its trial counts and lengths may differ too.
Every measure returns a distance: 0 for identical activity, symmetric, its
range in its registry entry (``registry.get_measure(name).range``). The measures on arrays are
the registered ones with an ``arrays`` form.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from .._checks import check_positive_int
from .registry import REGISTRY, get_measure, measure_names


def _ranges():
    return {m.name: m.range for m in REGISTRY.values() if m.arrays is not None}


def pairwise_distances(data: Sequence, measure: str = "procrustes", n_jobs: Optional[int] = None,
                       progress: bool = False, distributed: bool = False, **options) -> np.ndarray:
    """The distance between every pair of networks given as arrays (netrep's ``pairwise_distances``).

    Args:
        data: N >= 2 arrays or tensors, one network each: [trials, time, units] or
            [samples, units]; units may differ. "cka", "svcca", "procrustes" need
            the same samples for every network (the same trials and steps, in order);
            "dsa" needs [trials, time, units] of at least 3 steps, trials and steps free.
        measure: a registered measure with a form on arrays (``measure_names(arrays=True)``):
            "cka", "svcca", "procrustes" (Kornblith et al. 2019; Raghu et al. 2017;
            Williams et al. 2021 / Ding et al. 2021, see ``dynamo_ext.compare``), or "dsa"
            (Ostrow et al. 2023, dsa-metric, the ``[peers]`` extra). Ranges: ``DISTANCE_RANGES``.
        n_jobs: threads for the computation (torch's intra-op threads during the call;
            None keeps the current setting).
        progress: a tqdm bar over the blocks of the matrix products.
        distributed: split the pairs over the ranks of the initialised torch.distributed process group
            (e.g. ``torchrun --nproc_per_node K`` or ``--nnodes``): every rank passes the same ``data``,
            computes its share of the blocks of pairs, and returns the whole matrix (one all-reduce;
            ``all_pairs``). "cka", "svcca", "procrustes" only.
        options: the measure's options (``get_measure(measure).options``): "svcca":
            ``variance_kept`` (0.99); "dsa": ``n_delays`` (10, at most half the steps), ``rank``
            (10), ``score_method`` ("angular"), ``iters`` (1500), ``seed`` (0).

    Returns:
        [N, N] float64, symmetric, zero diagonal, >= 0.

    Raises:
        ValueError: an unknown measure or option, fewer than 2 networks, an entry that
            is not a finite 2-D or 3-D array, different sample counts (not "dsa"),
            sequences too short for DSA.
        ImportError: dsa-metric missing for "dsa" (the ``[peers]`` extra).
    """
    names = measure_names(arrays=True)
    if measure not in names:
        raise ValueError(f"argument 'measure' must be one of {names}, got {measure!r}")
    m = get_measure(measure)
    if isinstance(data, (np.ndarray, torch.Tensor)) or not hasattr(data, "__len__") or len(data) < 2:
        raise ValueError(f"argument 'data' must be a list of at least 2 arrays (one network each), got "
                         f"{type(data).__name__}" + (f" of {len(data)}" if hasattr(data, "__len__") else ""))
    unknown = sorted(set(options) - set(m.options))
    if unknown:
        raise ValueError(f"measure {measure!r} takes the options {sorted(m.options)}, got {unknown}")
    if distributed:
        import inspect

        if "distributed" not in inspect.signature(m.arrays).parameters:
            raise ValueError(f"measure {measure!r} has no distributed form; distributed=True takes "
                             f"{[n for n in names if 'distributed' in inspect.signature(get_measure(n).arrays).parameters]}")
        options["distributed"] = True
    threads = torch.get_num_threads()
    if n_jobs is not None:
        torch.set_num_threads(check_positive_int(n_jobs, "n_jobs"))
    try:
        return np.maximum(m.arrays(data, progress=progress, **options), 0.0)
    finally:
        torch.set_num_threads(threads)


def __getattr__(name):  # read from the registry when asked, so that a newly registered measure is listed
    if name == "PAIRWISE_MEASURES":
        return measure_names(arrays=True)
    if name == "DISTANCE_RANGES":
        return _ranges()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DISTANCE_RANGES", "PAIRWISE_MEASURES", "pairwise_distances"]
