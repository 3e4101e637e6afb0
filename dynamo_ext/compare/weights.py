"""Parameter space: the Euclidean distance between weights, and the naive weight average.

Both for base models of the same architecture and size only. The naive
average is the parameter-wise mean, the "model soup" of Wortsman et al.
(ICML 2022): the baseline of ``dynamo_ext.average``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..population.base_cnn import BaseCNN
from ..population.base_rnn import BaseRNN


def weight_distance(model_a: nn.Module, model_b: nn.Module) -> float:
    """Euclidean distance between the flattened parameters of two base models; NaN unless both have
    the same architecture and parameter shapes (weight space is not comparable otherwise)."""
    sa, sb = model_a.state_dict(), model_b.state_dict()
    same = (getattr(model_a, "arch", None) == getattr(model_b, "arch", None) and sa.keys() == sb.keys()
            and all(sa[k].shape == sb[k].shape for k in sa))
    if not same:
        return float("nan")
    return float(sum((sa[k].double() - sb[k].double()).pow(2).sum() for k in sa) ** 0.5)


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
