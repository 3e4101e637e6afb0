"""The report's spread section: the readings of several fits of one population side by side
(``uses.spread``), and DYNAMO's group tests on each fit and on their consensus (``compare.group_test``)."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

from ..compare.inference import group_test
from ..population.population import Population


def spread_section(fits, population: Population, n_clusters: int, labels: Sequence, seed: int = 0,
                   fixed_points: bool = True, averages: Optional[Dict[str, Sequence]] = None) -> Dict:
    """The readings of several fits side by side (``uses.spread.spread`` on the first 256 probe inputs,
    clustered into ``n_clusters`` groups): its summary, the consensus distances of both readings, each
    fit's clustering ARI against ``labels`` and the consensus clustering's, the aligned embeddings, and
    the accuracy of each group of ``averages`` averaged in every fit (groups of one task)."""
    from sklearn.metrics import adjusted_rand_score

    from ..uses.spread import spread

    k = min(n_clusters, len(population) - 1) if len(population) > 2 else None
    groups = averages or {}
    tasks = {g: population.task_of(population.ids.index(ids[0])) for g, ids in groups.items()}
    sp = spread(fits, population.task.x_train[:256], n_clusters=k if k and k >= 2 else None,
                fixed_points=fixed_points, seed=seed, averages=groups or None, task=tasks)
    out = {**sp.summary(), "consensus": {r: d.tolist() for r, d in sp.consensus.items()},
           "aligned_theta": sp.aligned_theta.tolist(),
           "agreement": {r: a.tolist() for r, a in sp.agreement.items()}}
    if sp.labelings is not None:
        out["cluster_ari_truth"] = [adjusted_rand_score(labels, lab) for lab in sp.labelings]
        out["consensus_ari_truth"] = adjusted_rand_score(labels, sp.consensus_labels)
        out["co_assignment"] = sp.co_assignment.tolist()
    out["distances"] = {r: d.tolist() for r, d in sp.distances.items()}
    return out


def spread_tests(section: Dict, label_sets: Dict[str, Sequence], n_permutations: int, seed: int,
                 exclude: Sequence[int] = (), ids: Sequence[str] = ()) -> list:
    """DYNAMO's group tests on each fit and on the consensus: per label set and reading, the consensus
    p-value and R^2 and each fit's p-value (``compare.group_test``)."""
    import numpy as np

    keep = [i for i in range(len(ids)) if i not in set(exclude)]
    rows = []
    if len(keep) < 3:
        return [{"labels": name, "reading": r, "why": f"{len(keep)} models above the quality threshold"}
                for name in label_sets for r in section["distances"]]
    for name, lab in label_sets.items():
        lab = [lab[i] for i in keep]
        for reading, mats in section["distances"].items():
            sub = lambda d: np.asarray(d)[np.ix_(keep, keep)]  # noqa: E731
            try:
                cons = group_test(sub(section["consensus"][reading]), lab, n_permutations=n_permutations, seed=seed)
                per_fit = [group_test(sub(d), lab, n_permutations=n_permutations, seed=seed).p_value for d in mats]
            except ValueError as exc:
                rows.append({"labels": name, "reading": reading, "why": str(exc)})
                continue
            rows.append({"labels": name, "reading": reading, "consensus_p_value": cons.p_value,
                         "consensus_r2": cons.r2, "per_fit_p_values": per_fit})
    return rows


__all__ = ["spread_section", "spread_tests"]
