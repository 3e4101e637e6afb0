"""The report's spread section: the readings of several fits of one population side by side
(``uses.across_fits``), and DYNAMO's group tests on each fit and on their consensus (``compare.group_test``)."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

from ..population.population import Population
from .tests_section import group_tests


def spread_section(fits, population: Population, n_clusters: int, labels: Sequence, seed: int = 0,
                   fixed_points: bool = True, averages: Optional[Dict[str, Sequence]] = None) -> Dict:
    """The readings of several fits side by side (``uses.across_fits.spread`` on the first 256 probe inputs,
    clustered into ``n_clusters`` groups): its summary, the consensus distances of both readings, each
    fit's clustering ARI against ``labels`` and the consensus clustering's, the aligned embeddings, and
    the accuracy of each group of ``averages`` averaged in every fit (groups of one task)."""
    from sklearn.metrics import adjusted_rand_score

    from ..uses.across_fits import spread

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
                 exclude: Sequence[str] = (), ids: Sequence[str] = ()) -> list:
    """DYNAMO's group tests on each fit and on the consensus (``analysis.group_tests`` on the consensus
    matrices and on each fit's, without the models ``exclude``): per label set and reading, the consensus
    p-value and R^2 and each fit's p-value, or ``why`` no test ran."""
    consensus = group_tests(section["consensus"], label_sets, n_permutations, seed, exclude, ids)
    k = len(next(iter(section["distances"].values())))
    fits = [group_tests({r: mats[i] for r, mats in section["distances"].items()}, label_sets, n_permutations, seed,
                        exclude, ids) for i in range(k)]
    rows = []
    for j, row in enumerate(consensus):
        out = {"labels": row["labels"], "reading": row["measure"]}
        why = row.get("why") or next((f[j]["why"] for f in fits if "why" in f[j]), None)
        if why:
            out["why"] = why
        else:
            out.update(consensus_p_value=row["p_value"], consensus_r2=row["r2"],
                       per_fit_p_values=[f[j]["p_value"] for f in fits])
        rows.append(out)
    return rows


__all__ = ["spread_section", "spread_tests"]
