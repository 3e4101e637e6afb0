"""Parameter space: the Euclidean distance between weights, and the naive weight average.

Both for base models of the same architecture and size only. The naive
average is the parameter-wise mean, the "model soup" of Wortsman et al.
(ICML 2022): the baseline of ``dynamo_ext.average``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..population.base_cnn import BaseCNN
from ..population.base_rnn import BaseRNN
from .registry import Measure, register


def weight_distance(model_a: nn.Module, model_b: nn.Module) -> float:
    """Euclidean distance between the flattened parameters of two base models; NaN unless both have
    the same architecture and parameter shapes (weight space is not comparable otherwise)."""
    sa, sb = model_a.state_dict(), model_b.state_dict()
    same = (getattr(model_a, "arch", None) == getattr(model_b, "arch", None) and sa.keys() == sb.keys()
            and all(sa[k].shape == sb[k].shape for k in sa))
    if not same:
        return float("nan")
    return float(sum((sa[k].double() - sb[k].double()).pow(2).sum() for k in sa) ** 0.5)


def weight_distance_matrix(models: Sequence[nn.Module]) -> np.ndarray:
    """``weight_distance`` between every pair of models at once: [N, N] float64, NaN between models of
    different architectures or parameter shapes, zero diagonal.

    Models are grouped by architecture and parameter shapes; within a group the flattened float64
    parameters go through one ``torch.cdist`` (exact differences, not the Gram-matrix shortcut, so
    that identical models are at distance 0).
    """
    n = len(models)
    d = np.full((n, n), np.nan)
    groups = {}
    for i, m in enumerate(models):
        sd = m.state_dict()
        key = (getattr(m, "arch", None), tuple((k, tuple(v.shape)) for k, v in sd.items()))
        groups.setdefault(key, []).append(i)
    for members in groups.values():
        flat = torch.stack([torch.cat([torch.zeros(0, dtype=torch.float64)]
                                      + [v.detach().double().reshape(-1) for v in models[i].state_dict().values()])
                            for i in members])
        dist = torch.cdist(flat[None], flat[None], compute_mode="donot_use_mm_for_euclid_dist")[0]
        d[np.ix_(members, members)] = dist.numpy()
    np.fill_diagonal(d, 0.0)
    return d


def _matrix(inputs) -> np.ndarray:
    if inputs.population is None:
        raise ValueError("measure 'weights' reads the networks' parameters: it needs the population, got a "
                         "recording only")
    return weight_distance_matrix([m.model for m in inputs.population.members])


MEASURE = register(Measure(
    name="weights", description="Euclidean distance between parameters (same architecture and size only)",
    range="in [0, inf); NaN between architectures or sizes",
    source="the parameter-space distance of weight-space studies (e.g. Wortsman et al., ICML 2022)",
    reads="weights", matrix=_matrix, pair=weight_distance))


def naive_weight_average(models: Sequence[nn.Module]) -> nn.Module:
    """The parameter-wise mean of base models (BaseRNN or BaseCNN) of one architecture and size.

    Raises:
        ValueError: no models, models that are not BaseRNN or BaseCNN, or
            different architectures or sizes.
    """
    if len(models) == 0:
        raise ValueError("argument 'models' must hold at least one model, got an empty list")
    first = models[0]
    for i, m in enumerate(models):
        if not isinstance(m, (BaseRNN, BaseCNN)):
            raise ValueError(f"argument 'models[{i}]' must be a BaseRNN or BaseCNN, got {type(m).__name__}")
        if type(m) is not type(first) or m.spec() != first.spec():
            raise ValueError(f"argument 'models' must share one architecture and size, got "
                             f"{first.arch}-h{first.hidden_size} and {m.arch}-h{m.hidden_size}")
    avg = type(first)(**first.spec())
    states = [m.state_dict() for m in models]
    avg.load_state_dict({k: torch.stack([s[k] for s in states]).mean(0) for k in states[0]})
    return avg.eval()
