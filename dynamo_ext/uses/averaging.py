"""Averaging models in embedding space (docs/method.md, "The uses of the embedding").

theta_bar = mean of the selected theta_n; the meta-model at theta_bar is an
operable network mapping inputs to outputs (arXiv:2302.14078, model averaging).
"""
from __future__ import annotations

from typing import Sequence, Union

from ..compare.outputs import OutputEnsemble
from ..compare.weights import naive_weight_average
from ..meta.rnn import EmbeddedModel, MetaModel
from ..population.population import Population
from ..population.training import evaluate


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


def averaging_table(meta: MetaModel, population: Population) -> list:
    """Per group (architecture, or task and architecture; for CNNs activation and width): members'
    mean accuracy, the meta-model at their mean embedding, naive weight averaging (None unless the
    members share one size) and the output ensemble, all on the group's task's test set."""
    if population.family == "rnn":
        keys = [(m.task, m.arch) for m in population.members]
        name = lambda t, a: f"{t}/{a}" if t else a  # noqa: E731
    else:
        keys = [(m.arch, m.hidden_size) for m in population.members]
        name = lambda a, w: f"{a}-w{w}"  # noqa: E731
    groups = {name(*key): [i for i, k in enumerate(keys) if k == key] for key in dict.fromkeys(keys)}
    if not population.is_multitask:
        groups["all"] = list(range(len(population)))
    rows = []
    for label, idx in groups.items():
        task = population.task_of(idx[0])
        members = [population.members[i] for i in idx]
        accs = [m.test_accuracy for m in members]
        try:
            naive = evaluate(naive_weight_average([m.model for m in members]), task)
        except ValueError:  # different architectures or sizes: not defined
            naive = None
        ensemble = evaluate(OutputEnsemble([m.model for m in members], task.output_kind), task)
        rows.append({"label": label, "task": task.name, "members": [m.id for m in members],
                     "member_mean_accuracy": sum(accs) / len(accs),
                     "averaged_accuracy": evaluate(average(meta, idx), task),
                     "naive_weight_average_accuracy": naive, "ensemble_accuracy": ensemble,
                     "theta_bar": meta.theta.detach()[idx].mean(0).tolist()})
    return rows
