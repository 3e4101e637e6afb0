"""Averaging models in embedding space (docs/method.md, "The uses of the embedding").

theta_bar = mean of the selected theta_n; the meta-model at theta_bar is an
operable network mapping inputs to outputs (arXiv:2302.14078, model averaging).
"""
from __future__ import annotations

from typing import Sequence, Union

from ..meta.rnn import EmbeddedModel, MetaModel


def resolve_ids(meta: MetaModel, ids: Sequence[Union[int, str]], name: str = "ids") -> list:
    """Indices into the embedding table from ints or model-id strings."""
    if len(ids) == 0:
        raise ValueError(f"argument '{name}' must select at least one model, got an empty list")
    out = []
    for i in ids:
        if isinstance(i, str):
            if i not in meta.model_ids:
                raise ValueError(f"argument '{name}' names unknown model {i!r}; known: {meta.model_ids}")
            out.append(meta.model_ids.index(i))
        elif isinstance(i, int) and not isinstance(i, bool) and 0 <= i < meta.n_models:
            out.append(i)
        else:
            raise ValueError(f"argument '{name}' must hold model ids or indices in [0, {meta.n_models}), got {i!r}")
    return out


def average(meta: MetaModel, ids: Sequence[Union[int, str]]) -> EmbeddedModel:
    """The meta-model at the mean embedding of the selected base models.

    Args:
        meta: a fitted MetaRNN or MetaCNN.
        ids: model indices (int) or model ids (str) to average.

    Returns:
        An nn.Module mapping x [B, T, I] to outputs [B, T, C] (logits for
        classification tasks); its ``theta`` buffer holds theta_bar [m].

    Raises:
        ValueError: an empty selection or an unknown id.
    """
    rows = resolve_ids(meta, ids)
    return meta.at(meta.theta.detach()[rows].mean(0))
