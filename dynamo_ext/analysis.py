"""The analysis of a fitted meta-model over its population: the numbers of metrics.json.

- population: each base model's facts (id, arch, hidden_size, seed, test_accuracy);
- emulation: per model, output agreement, hidden R^2 and the meta-model's
  accuracy at theta_n (dynamo_ext.evaluate);
- averaging: per architecture (and for the whole population), the accuracy
  of the meta-model at the mean embedding against the members' mean accuracy;
- clustering: k-means of the embeddings with k = number of architectures,
  scored against the architecture labels (ARI, NMI, silhouette);
- fixed_points: per model, the meta-model's fixed points at theta_n for zero
  input, started from its trajectories on test inputs (counts by type).
"""
from __future__ import annotations

import time
from typing import Dict

import torch

from .average import average
from .cluster import cluster
from .evaluate import emulation
from .fixed_points import find_fixed_points
from .meta import MetaRNN
from .zoo import Population, evaluate


def analyze(meta: MetaRNN, population: Population, seed: int = 0) -> Dict:
    """Compute the metrics of ``metrics.json`` (see the module docstring).

    Raises:
        ValueError: if the meta-model was not fitted to this population
            (different model ids).
    """
    if meta.model_ids[:len(population)] != population.ids:
        raise ValueError(f"argument 'meta' was fitted to models {meta.model_ids}, "
                         f"not to this population {population.ids}")
    t0 = time.perf_counter()
    metrics: Dict = {"task": population.task.name,
                     "population": [m.info() for m in population.members],
                     "emulation": emulation(meta, population)}
    groups = {a: [i for i, m in enumerate(population.members) if m.arch == a]
              for a in dict.fromkeys(population.archs)}
    groups["all"] = list(range(len(population)))
    metrics["averaging"] = []
    for label, rows in groups.items():
        accs = [population.members[i].test_accuracy for i in rows]
        metrics["averaging"].append({
            "label": label, "members": [population.ids[i] for i in rows],
            "member_mean_accuracy": sum(accs) / len(accs),
            "averaged_accuracy": evaluate(average(meta, rows), population.task),
            "theta_bar": meta.theta.detach()[rows].mean(0).tolist()})
    k = len(set(population.archs))
    clus = cluster(meta, k, labels=population.archs, seed=seed)
    metrics["clustering"] = {"k": k, "labels_by": "arch", "ari": clus.ari, "nmi": clus.nmi,
                             "silhouette": clus.silhouette, "assignments": clus.assignments}
    metrics["embedding"] = {mid: row for mid, row in zip(meta.model_ids, meta.theta.detach().tolist())}
    metrics["fixed_points"] = fixed_point_summary(meta, population, seed=seed)
    metrics["timing_s"] = {"analyze": round(time.perf_counter() - t0, 2)}
    return metrics


def fixed_point_summary(meta: MetaRNN, population: Population, n_probe: int = 64, n_inits: int = 64,
                        seed: int = 0) -> list:
    """Per model: fixed points of the meta-model at theta_n for zero input, by type."""
    x = population.task.x_test[:n_probe].to(meta.theta.dtype)
    rows = []
    for n, mid in enumerate(population.ids):
        with torch.no_grad():
            trajectories = meta(x, n)[0]
        fps = find_fixed_points(meta, trajectories=trajectories, n_inits=n_inits, noise=0.01, model_id=n,
                                seed=seed)
        rows.append({"id": mid, "n_fixed_points": len(fps), "n_stable": int(fps.is_stable.sum()),
                     "n_unstable": int((~fps.is_stable).sum()), "n_slow_points": len(fps.slow_points)})
    return rows
