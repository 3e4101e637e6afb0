"""How far an embedding lies from the base models': the mark of an extrapolated reading.

The meta-model was fitted at the base models' embeddings theta_n only. A reading at any other theta (a
click in the explorer, a point of ``scan``, the mean embedding of ``average``) interpolates between
them, or extrapolates past them. ``support`` measures the distance from a theta to the nearest theta_n
in units of the median nearest-neighbour distance between the theta_n (so 1.0 is "as far as the
typical gap between neighbouring base models"), and marks a reading past ``EXTRAPOLATION_LIMIT`` of
those units as an extrapolation: a region no base model constrained.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor

from .._checks import check_tensor
from ..meta.rnn import MetaModel

EXTRAPOLATION_LIMIT = 1.0  # median nearest-neighbour distances


def support(meta: MetaModel, theta: Tensor, n: Optional[int] = None,
            limit: float = EXTRAPOLATION_LIMIT) -> Dict:
    """Where ``theta`` [m] lies against the first ``n`` base models' embeddings (default all).

    Returns:
        {"nearest_model": id, "nearest_distance": Euclidean distance in theta, "relative_distance": that
        over the median nearest-neighbour distance between the theta_n, "extrapolation": relative > limit}.

    Raises:
        ValueError: ``theta`` not of shape [m], or not finite.
    """
    check_tensor(theta, "theta", shape=[meta.embedding_dim])
    thetas = meta.theta.detach()[:n].double().cpu()
    d = (thetas - theta.detach().double().cpu()).norm(dim=-1)
    i = int(d.argmin())
    if len(thetas) > 1:
        pair = torch.cdist(thetas, thetas)
        pair.fill_diagonal_(float("inf"))
        scale = float(pair.min(1).values.median())
    else:
        scale = float("nan")
    rel = float(d[i]) / scale if scale > 0 else float("nan")
    return {"nearest_model": meta.model_ids[i], "nearest_distance": float(d[i]), "relative_distance": rel,
            "extrapolation": bool(rel > limit)}


__all__ = ["EXTRAPOLATION_LIMIT", "support"]
