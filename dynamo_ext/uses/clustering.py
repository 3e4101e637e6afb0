"""Clustering base models by their model embeddings (docs/method.md, "The uses of the embedding").

k-means or agglomerative clustering of the rows of Theta (scikit-learn), with
the adjusted Rand index (ARI), normalised mutual information (NMI) and the
silhouette score against known labels (e.g. architecture or task). The same
clusterings run on any measure's distance matrix (``cluster_distances``):
agglomerative clustering with average linkage on the distances, and k-means
on their classical multidimensional scaling (Torgerson MDS), so that DYNAMO
and the baselines of dynamo_ext.compare are scored the same way
(``compare_measures``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from .._checks import check_choice, check_positive_int, renamed_keyword
from ..meta.rnn import MetaModel


@dataclass
class ClusterResult:
    """Cluster assignments and scores.

    Attributes:
        k: number of clusters; assignments: cluster index per model (len N).
        ari, nmi: agreement with ``labels`` (None when no labels were given).
        silhouette: silhouette score of the assignments in embedding space
            (None when k < 2 or k >= N).
        labels_, n_clusters: scikit-learn's names for ``assignments`` (an int array [N]) and ``k``.
    """

    k: int
    method: str
    assignments: List[int]
    ari: Optional[float]
    nmi: Optional[float]
    silhouette: Optional[float]

    @property
    def labels_(self) -> np.ndarray:
        return np.asarray(self.assignments, dtype=np.int64)

    @property
    def n_clusters(self) -> int:
        return self.k

    def as_dict(self):
        return {"k": self.k, "method": self.method, "assignments": self.assignments, "ari": self.ari,
                "nmi": self.nmi, "silhouette": self.silhouette}


def _check_k_labels(n: int, k, labels: Optional[Sequence]) -> None:
    if k is None:
        raise TypeError("argument 'n_clusters' is required")
    check_positive_int(k, "n_clusters")
    if k > n:
        raise ValueError(f"argument 'n_clusters' must be at most the number of models ({n}), got {k}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"argument 'labels_true' must have {n} entries (one per model), got {len(labels)}")


def _result(k: int, method: str, assign: np.ndarray, labels: Optional[Sequence], data: np.ndarray,
            metric: str) -> ClusterResult:
    """Scores of an assignment: ARI and NMI against labels, silhouette on the points or distances."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

    ari = nmi = None
    if labels is not None:
        ari = float(adjusted_rand_score(labels, assign))
        nmi = float(normalized_mutual_info_score(labels, assign))
    n_found = len(set(assign.tolist()))
    sil = float(silhouette_score(data, assign, metric=metric)) if 2 <= n_found < len(assign) else None
    return ClusterResult(k, method, [int(a) for a in assign], ari, nmi, sil)


def cluster_points(points: np.ndarray, n_clusters: Optional[int] = None, labels_true: Optional[Sequence] = None,
                   method: str = "kmeans", seed: int = 0, *, k: Optional[int] = None,
                   labels: Optional[Sequence] = None) -> ClusterResult:
    """Cluster the rows of ``points`` [N, m]; see ``cluster``."""
    from sklearn.cluster import AgglomerativeClustering, KMeans  # scikit-learn loaded when first used

    k = renamed_keyword(n_clusters, k, "n_clusters", "k", "cluster_points")
    labels = renamed_keyword(labels_true, labels, "labels_true", "labels", "cluster_points")
    check_choice(method, "method", ("kmeans", "agglomerative"))
    _check_k_labels(points.shape[0], k, labels)
    if method == "kmeans":
        assign = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(points)
    else:
        assign = AgglomerativeClustering(n_clusters=k).fit_predict(points)
    return _result(k, method, assign, labels, points, "euclidean")


def cluster(meta: MetaModel, n_clusters: Optional[int] = None, labels_true: Optional[Sequence] = None,
            method: str = "kmeans", seed: int = 0, n: Optional[int] = None, *, k: Optional[int] = None,
            labels: Optional[Sequence] = None) -> ClusterResult:
    """Cluster the model embeddings theta_n [N, m] of a fitted meta-model.

    Args:
        meta: a fitted MetaRNN or MetaCNN.
        n_clusters: number of clusters (1 <= n_clusters <= N; scikit-learn's name, ``k`` before).
        labels_true: optional known labels (len N), for ARI and NMI (scikit-learn's name, ``labels``
            before: the assignments are the result's ``labels_``).
        method: "kmeans" (scikit-learn KMeans, 10 restarts, ``seed``) or
            "agglomerative" (Ward linkage).
        n: cluster the first ``n`` embeddings only (the population's, when
            ``embed`` has added new models after them); default all.

    Returns:
        ClusterResult.

    Raises:
        ValueError: n_clusters out of range, labels of the wrong length, unknown method, n out of range.
    """
    n_clusters = renamed_keyword(n_clusters, k, "n_clusters", "k", "cluster")
    labels_true = renamed_keyword(labels_true, labels, "labels_true", "labels", "cluster")
    theta = meta.theta.detach().cpu().double().numpy()
    if n is not None:
        check_positive_int(n, "n")
        if n > len(theta):
            raise ValueError(f"argument 'n' must be at most the number of embeddings ({len(theta)}), got {n}")
        theta = theta[:n]
    return cluster_points(theta, n_clusters, labels_true, method, seed)


def _filled(distances: np.ndarray) -> np.ndarray:
    """NaN distances (pairs a measure cannot compare) set to twice the largest finite distance."""
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"argument 'distances' must be a square matrix, got shape {d.shape}")
    finite = d[np.isfinite(d)]
    big = 2.0 * (finite.max() if finite.size else 1.0) + 1e-12
    d = np.where(np.isfinite(d), d, big)
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0.0)
    return d


def classical_mds(distances: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Classical (Torgerson) MDS of a distance matrix: the leading ``n_components`` coordinates [N, k].

    B = -1/2 J D^2 J (J the centring matrix), then B's ``n_components`` largest eigenpairs: by Lanczos
    iterations (``scipy.sparse.linalg.eigsh``, from a fixed start) when N > 4 * n_components + 8, else by a
    partial dense solve (``scipy.linalg.eigh`` with ``subset_by_index``); never a full
    eigendecomposition, which costs O(N^3) time at N = 10,000. Coordinates are sqrt(lambda) * u, the
    sign of each column set so that its largest entry is positive (scikit-learn's ``ClassicalMDS``
    convention, whose values these equal); directions of eigenvalue <= 0 (distances that are not
    Euclidean) are zero.

    Raises:
        ValueError: a non-square matrix, NaN/Inf, or n_components not in [1, N - 1].
    """
    from scipy.linalg import eigh
    from scipy.sparse.linalg import eigsh

    d = np.asarray(distances, dtype=np.float64)
    n = d.shape[0] if d.ndim == 2 else 0
    if d.ndim != 2 or d.shape[1] != n:
        raise ValueError(f"argument 'distances' must be a square matrix, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("argument 'distances' must be finite, got NaN or Inf entries")
    if not 1 <= check_positive_int(n_components, "n_components") <= max(n - 1, 1):
        raise ValueError(f"argument 'n_components' must be in [1, {n - 1}] for {n} points, got {n_components}")
    b = d * d  # B = -1/2 J D^2 J, centred in place
    b -= b.mean(axis=0)
    b -= b.mean(axis=1, keepdims=True)
    b *= -0.5
    if n > 4 * n_components + 8:
        v0 = np.random.default_rng(0).standard_normal(n)
        w, u = eigsh(b, k=n_components, which="LA", v0=v0, tol=1e-12)
    else:
        w, u = eigh(b, subset_by_index=[n - n_components, n - 1])
    order = np.argsort(w)[::-1]
    w, u = w[order], u[:, order]
    signs = np.sign(u[np.abs(u).argmax(axis=0), np.arange(u.shape[1])])
    u = u * np.where(signs == 0, 1.0, signs)
    return np.sqrt(np.clip(w, 0.0, None)) * u


def cluster_distances(distances: np.ndarray, n_clusters: Optional[int] = None,
                      labels_true: Optional[Sequence] = None, method: str = "agglomerative", seed: int = 0, *,
                      k: Optional[int] = None, labels: Optional[Sequence] = None) -> ClusterResult:
    """Cluster models from a distance matrix [N, N] (any measure).

    Args:
        distances: symmetric, zero diagonal; NaN entries (pairs the measure
            cannot compare, e.g. weights across architectures) count as twice
            the largest finite distance.
        n_clusters: number of clusters; labels_true: optional known labels for ARI and NMI (``k``
            and ``labels`` are their old names, deprecated).
        method: "agglomerative" (average linkage on the distances) or
            "kmeans" (k-means on the classical MDS embedding, k-1 dimensions
            at least 2).

    Returns:
        ClusterResult; its silhouette is computed on the distances.

    Raises:
        ValueError: a non-square matrix, n_clusters out of range, labels of the wrong length.
    """
    from sklearn.cluster import AgglomerativeClustering, KMeans

    k = renamed_keyword(n_clusters, k, "n_clusters", "k", "cluster_distances")
    labels = renamed_keyword(labels_true, labels, "labels_true", "labels", "cluster_distances")
    check_choice(method, "method", ("kmeans", "agglomerative"))
    d = _filled(distances)
    n = d.shape[0]
    _check_k_labels(n, k, labels)
    if k == 1 or k == n:  # one cluster, or one model per cluster: nothing to search
        assign = np.zeros(n, dtype=int) if k == 1 else np.arange(n)
    elif method == "agglomerative":
        assign = AgglomerativeClustering(n_clusters=k, metric="precomputed", linkage="average").fit_predict(d)
    else:
        dims = min(max(k - 1, 2), n - 1)
        coords = classical_mds(d, dims)  # directions of negative eigenvalues (non-Euclidean distances): zero
        assign = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(coords)
    return _result(k, method, assign, labels, d, "precomputed")


@torch.no_grad()
def functional_features(meta: MetaModel, x: Tensor, thetas: Tensor, batch_size: int = 256):
    """The meta-model's states and outputs at each of ``thetas`` [K, m] on the probe inputs x [S, T, I]:
    (Z [K, S, T*D], Y [K, S, T*C]) float64, what ``functional_distances`` compares."""
    param = next(meta.parameters())
    x = x.to(param.dtype)
    zs, ys = [], []
    for theta in thetas:
        parts = [meta(x[k:k + batch_size], theta=theta.to(param.dtype)) for k in range(0, len(x), batch_size)]
        zs.append(torch.cat([p[0] for p in parts]).double().flatten(1))
        ys.append(torch.cat([p[1] for p in parts]).double().flatten(1))
    return torch.stack(zs), torch.stack(ys)


def functional_distance(features_a, features_b, spreads) -> float:
    """``functional_distances``' d(a, b) between two embeddings' features (``functional_features`` rows
    (Z_a, Y_a), (Z_b, Y_b)), with the population's ``spreads`` (``spreads_from_grams``)."""
    total = 0.0
    for a, b, spread in zip(features_a, features_b, spreads):
        total += float((a - b).pow(2).sum() / (spread * a.shape[0]))
    return total ** 0.5


def embedding_distances(meta: MetaModel, n: Optional[int] = None) -> np.ndarray:
    """Euclidean distances [N, N] between the first ``n`` model embeddings theta_n."""
    theta = meta.theta.detach().cpu().double().numpy()[:n]
    return np.sqrt(((theta[:, None] - theta[None]) ** 2).sum(-1))


@torch.no_grad()
def functional_distances(meta: MetaModel, x: Tensor, n: Optional[int] = None, batch_size: int = 256,
                         chunk_bytes: int = 2 ** 28) -> np.ndarray:
    """Distances [N, N] between the meta-model's dynamics at the first ``n`` embeddings.

    The meta-model runs every model's dynamics in one shared state space, so
    two embeddings can be compared by what they do rather than by where they
    lie: d(i, j)^2 = E ||z_i - z_j||^2 / V_z + E ||yhat_i - yhat_j||^2 / V_y,
    with z_n [S, T, D] and yhat_n [S, T, C] the meta-model's states and
    outputs at theta_n on the probe inputs x [S, T, I] (for a MetaCNN, T = 1),
    the expectations over sequences and steps, and V_z, V_y the population's
    total variance of the states and outputs (so each term is a fraction of
    the spread across models). Euclidean distance of theta is the other
    reading (docs/method.md, "The uses of the embedding").

    The probe sequences are read in chunks: every embedding's states and outputs on a chunk,
    centred across the embeddings, add their Gram matrices [N, N] (``functional_grams``), so memory
    is about ``chunk_bytes`` plus 2 N^2 float64 values whatever the number of sequences.

    Args:
        meta: a fitted meta-model.
        x: [S, T, I] probe inputs (any float dtype; run in the meta-model's).
        n: the first n embeddings (default all).
        batch_size: sequences per call of the meta-model (several embeddings share a call).
        chunk_bytes: the float64 features of one chunk of sequences, for all embeddings, at most
            about this many bytes (at least one sequence per chunk).

    Raises:
        ValueError: x not of shape [S, T, I] for this meta-model.
    """
    n = meta.n_models if n is None else n
    return distances_from_grams(*functional_grams(meta, x, meta.theta.detach()[:n], batch_size, chunk_bytes),
                                n_sequences=len(x))


@torch.no_grad()
def functional_grams(meta: MetaModel, x: Tensor, thetas: Tensor, batch_size: int = 256,
                     chunk_bytes: int = 2 ** 28):
    """Gram matrices (G_z, G_y) [K, K] float64 of the meta-model's states and outputs at ``thetas``
    [K, m] on the probe inputs x [S, T, I], each chunk of sequences' features centred across the K
    embeddings before it is added: what ``distances_from_grams`` reads."""
    param = next(meta.parameters())
    x, thetas = x.to(param.dtype), thetas.to(param.dtype)
    z1, y1 = meta(x[:1], theta=thetas[0])
    per_sequence = z1[0].numel() + y1[0].numel()
    k_all, s_all = len(thetas), len(x)
    chunk = int(max(1, min(s_all, chunk_bytes // (8 * k_all * per_sequence))))
    models = max(1, batch_size // chunk)  # embeddings per call: about batch_size sequences
    grams = [torch.zeros(k_all, k_all, dtype=torch.float64) for _ in range(2)]
    for start in range(0, s_all, chunk):
        xs = x[start:start + chunk]
        feats = [torch.empty(k_all, len(xs) * z1[0].numel(), dtype=torch.float64),
                 torch.empty(k_all, len(xs) * y1[0].numel(), dtype=torch.float64)]
        for k in range(0, k_all, models):
            th = thetas[k:k + models]
            out = meta(xs.repeat(len(th), *([1] * (xs.dim() - 1))), theta=th.repeat_interleave(len(xs), 0))
            for f, o in zip(feats, out):
                f[k:k + len(th)] = o.reshape(len(th), -1)
        for g, f in zip(grams, feats):
            f -= f.mean(0)
            g.addmm_(f, f.t())
    return tuple(grams)


def spreads_from_grams(grams, n_sequences: int):
    """(V_z, V_y): the total variance across the K embeddings of the states and of the outputs per probe
    sequence, trace(G) / (K S), from the centred Gram matrices of ``functional_grams``."""
    return tuple((torch.trace(g) / (g.shape[0] * n_sequences)).clamp(min=1e-12) for g in grams)


def distances_from_grams(gram_z: Tensor, gram_y: Tensor, n_sequences: int) -> np.ndarray:
    """``functional_distances`` [K, K] from the centred Gram matrices of ``functional_grams`` over
    ``n_sequences`` probe sequences: d^2 = sum over (z, y) of (G_ii + G_jj - 2 G_ij) / (V S), with V the
    spread of ``spreads_from_grams``."""
    out = np.zeros(tuple(gram_z.shape))
    for g, spread in zip((gram_z, gram_y), spreads_from_grams((gram_z, gram_y), n_sequences)):
        diag = torch.diagonal(g)
        out += ((diag[:, None] + diag[None, :] - 2.0 * g) / (spread * n_sequences)).numpy()
    np.fill_diagonal(out, 0.0)
    return np.sqrt(np.maximum(out, 0.0))


def _any_comparable(d) -> bool:
    """Whether any two different models have a finite distance."""
    d = np.asarray(d, dtype=float)
    off = ~np.eye(len(d), dtype=bool)
    return bool(np.isfinite(d[off]).any())


def compare_measures(distances: Dict[str, np.ndarray], labels: Dict[str, Sequence],
                     methods: Sequence[str] = ("kmeans", "agglomerative"), seed: int = 0) -> List[Dict]:
    """Cluster every measure's distances and score them against every label set.

    Args:
        distances: measure name -> [N, N] distances (e.g. {"dynamo":
            embedding_distances(meta), **baselines.distance_matrices(pop)}).
        labels: label-set name ("task", "arch") -> N labels; k is its number
            of distinct labels.

    Returns:
        Rows {measure, labels_by, method, k, ari, nmi, silhouette}; the scores are None for a
        measure with no finite distance between two different models (it could not be
        computed for this population), which the reports show as "-". A matrix with some
        NaN pairs is clustered with those pairs counted as far apart.
    """
    rows = []
    for by, lab in labels.items():
        k = len(set(lab))
        if k < 2:
            continue
        for name, d in distances.items():
            for method in methods:
                if not _any_comparable(d):  # e.g. weight distances when no two models share a size
                    rows.append({"measure": name, "labels_by": by, "method": method, "k": k, "ari": None,
                                 "nmi": None, "silhouette": None})
                    continue
                res = cluster_distances(d, k, lab, method=method, seed=seed)
                rows.append({"measure": name, "labels_by": by, "method": method, "k": k, "ari": res.ari,
                             "nmi": res.nmi, "silhouette": res.silhouette})
    return rows
