"""Clustering base models by their model embeddings (DESIGN.md section 1, "cluster").

k-means or agglomerative clustering of the rows of Theta (scikit-learn), with
the adjusted Rand index (ARI), normalised mutual information (NMI) and the
silhouette score against known labels (e.g. architecture or task).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

from ._checks import check_choice, check_positive_int
from .meta import MetaRNN


@dataclass
class ClusterResult:
    """Cluster assignments and scores.

    Attributes:
        k: number of clusters; assignments: cluster index per model (len N).
        ari, nmi: agreement with ``labels`` (None when no labels were given).
        silhouette: silhouette score of the assignments in embedding space
            (None when k < 2 or k >= N).
    """

    k: int
    method: str
    assignments: List[int]
    ari: Optional[float]
    nmi: Optional[float]
    silhouette: Optional[float]

    def as_dict(self):
        return {"k": self.k, "method": self.method, "assignments": self.assignments, "ari": self.ari,
                "nmi": self.nmi, "silhouette": self.silhouette}


def cluster_points(points: np.ndarray, k: int, labels: Optional[Sequence] = None, method: str = "kmeans",
                   seed: int = 0) -> ClusterResult:
    """Cluster the rows of ``points`` [N, m]; see ``cluster``."""
    check_choice(method, "method", ("kmeans", "agglomerative"))
    n = points.shape[0]
    check_positive_int(k, "k")
    if k > n:
        raise ValueError(f"argument 'k' must be at most the number of models ({n}), got {k}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"argument 'labels' must have {n} entries (one per model), got {len(labels)}")
    if method == "kmeans":
        assign = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(points)
    else:
        assign = AgglomerativeClustering(n_clusters=k).fit_predict(points)
    ari = nmi = None
    if labels is not None:
        ari = float(adjusted_rand_score(labels, assign))
        nmi = float(normalized_mutual_info_score(labels, assign))
    n_found = len(set(assign.tolist()))
    sil = float(silhouette_score(points, assign)) if 2 <= n_found < n else None
    return ClusterResult(k, method, [int(a) for a in assign], ari, nmi, sil)


def cluster(meta: MetaRNN, k: int, labels: Optional[Sequence] = None, method: str = "kmeans",
            seed: int = 0) -> ClusterResult:
    """Cluster the model embeddings theta_n [N, m] of a fitted meta-model.

    Args:
        meta: a fitted MetaRNN.
        k: number of clusters (1 <= k <= N).
        labels: optional known labels (len N), for ARI and NMI.
        method: "kmeans" (scikit-learn KMeans, 10 restarts, ``seed``) or
            "agglomerative" (Ward linkage).

    Returns:
        ClusterResult.

    Raises:
        ValueError: k out of range, labels of the wrong length, unknown method.
    """
    return cluster_points(meta.theta.detach().cpu().double().numpy(), k, labels, method, seed)
