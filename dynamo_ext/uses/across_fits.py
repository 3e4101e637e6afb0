"""Every reading with its spread across meta-model fits, and a consensus reading.

One DYNAMO fit is one draw: its embedding, distances and clusters change with the seed. ``spread``
compares the readings of k fits of one population (``fit(..., n_fits=k)``) through quantities that do
not depend on how each fit chose its embedding coordinates (docs/guide/trust.md):

- distances (theta and functional; ``cluster.embedding_distances``, ``cluster.functional_distances``):
  the Spearman rank correlation of every pair of fits' upper triangles; the consensus is the mean of
  the fits' matrices, each divided by its mean off-diagonal distance (theta has no unit of its own);
- clusterings: per fit, k-means on the classical MDS of its functional distances (as
  ``DYNAMO.cluster(reading="functional", method="kmeans")``); the ARI of every pair of fits; the
  co-assignment matrix (the fraction of fits that put two networks in one cluster) and the consensus
  clustering, average linkage on 1 - co-assignment (Monti, Tamayo, Mesirov & Golub 2003, Machine
  Learning 52:91-118);
- positions: theta is identified only up to an affine map. The meta-model reads theta linearly (the
  conditioning U theta, the initial state W_0 theta, the head V_y theta), so theta -> A theta + c with
  U -> U A^-1 and the biases shifted is the same meta-model; only the penalty lambda_theta ||theta||^2
  prefers a scale and a centre. The fits' embeddings are therefore aligned by affine least squares
  (generalised: each to the mean of the aligned fits, until it settles) and the per-model spread is the
  root-mean-square distance of a model's aligned thetas to their mean, in units of the median
  nearest-neighbour distance of the mean embedding (so 1 means "as far as the next model");
- fixed points (optional, RNN meta-models): the number of stable points of the meta-model at each
  theta_n, per fit (min and max across fits), found as the fidelity section finds them;
- averaged networks (optional): the task accuracy of the meta-model at the mean embedding of each
  given group of models (``average``), per fit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from .._checks import check_positive_int
from ..meta.config import FitResult
from ..meta.rnn import MetaModel
from ..meta.spread import FitSpread
from .clustering import cluster_distances, embedding_distances, functional_distances

READINGS = ("theta", "functional")


def fit_metas(fits) -> List[MetaModel]:
    """The meta-models of a FitSpread, or of a sequence of FitResults or meta-models of one population.

    Raises:
        ValueError: fewer than 2, or fits of different populations.
    """
    if isinstance(fits, FitSpread):
        return fits.metas
    metas = [f.meta if isinstance(f, FitResult) else f for f in fits]
    if len(metas) < 2:
        raise ValueError(f"argument 'fits' must hold at least 2 fits of one population, got {len(metas)}")
    ids = metas[0].model_ids
    if any(m.model_ids != ids for m in metas):
        raise ValueError("argument 'fits' must be fits of one population (the same model ids in the same order)")
    return metas


def _upper(d: np.ndarray) -> np.ndarray:
    return d[np.triu_indices(len(d), 1)]


def distance_agreement(matrices: Sequence[np.ndarray]) -> np.ndarray:
    """[k, k] Spearman rank correlation of the upper triangles of k distance matrices [N, N]."""
    from scipy.stats import spearmanr

    flat = np.stack([_upper(np.asarray(d, dtype=np.float64)) for d in matrices])
    if len(flat) == 2:
        r = spearmanr(flat[0], flat[1]).statistic
        return np.array([[1.0, r], [r, 1.0]])
    return np.asarray(spearmanr(flat, axis=1).statistic)


def consensus_distances(matrices: Sequence[np.ndarray]) -> np.ndarray:
    """The mean of k distance matrices [N, N], each divided by its mean off-diagonal entry first."""
    out = np.zeros_like(np.asarray(matrices[0], dtype=np.float64))
    for d in matrices:
        d = np.asarray(d, dtype=np.float64)
        out += d / max(float(_upper(d).mean()), 1e-300)
    return out / len(matrices)


def co_assignment(labelings: Sequence[Sequence[int]]) -> np.ndarray:
    """[N, N] the fraction of labelings that put networks i and j in one cluster (Monti et al. 2003)."""
    lab = np.asarray(labelings)
    return (lab[:, :, None] == lab[:, None, :]).mean(0)


def consensus_clustering(co: np.ndarray, n_clusters: int) -> np.ndarray:
    """[N] cluster labels: average linkage on 1 - co-assignment (Monti et al. 2003)."""
    return cluster_distances(1.0 - np.asarray(co), n_clusters, method="agglomerative").labels_


def affine_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """source [N, m] mapped by the least-squares affine map onto target [N, m]."""
    a = np.hstack([source, np.ones((len(source), 1))])
    coef, *_ = np.linalg.lstsq(a, target, rcond=None)
    return a @ coef


def align_embeddings(thetas: Sequence[np.ndarray], iterations: int = 20) -> np.ndarray:
    """[k, N, m] the fits' embeddings [N, m] aligned by affine maps onto their common mean (generalised
    alignment: start from the first fit, map every fit onto the current mean, repeat). The mean is
    standardised (centred, unit root-mean-square norm) at every round, so that the alignment cannot
    shrink every fit onto a point. With N <= m + 1 models an affine map fits any embedding exactly, and the
    alignment says nothing: the spread needs more models than embedding dimensions plus one."""
    thetas = [np.asarray(t, dtype=np.float64) for t in thetas]
    ref = thetas[0]
    for _ in range(iterations):
        ref = ref - ref.mean(0)
        ref = ref / max(float(np.sqrt((ref ** 2).sum(1).mean())), 1e-300)
        aligned = np.stack([affine_fit(t, ref) for t in thetas])
        new = aligned.mean(0)
        if np.abs(new - ref).max() < 1e-10:
            break
        ref = new
    return aligned


def embedding_spread(aligned: np.ndarray) -> np.ndarray:
    """[N] per model: the root-mean-square distance of its aligned thetas [k, N, m] to their mean, over
    the median nearest-neighbour distance between the models' mean thetas."""
    mean = aligned.mean(0)
    rms = np.sqrt(((aligned - mean) ** 2).sum(-1).mean(0))
    d = np.sqrt(((mean[:, None] - mean[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return rms / max(float(np.median(d.min(1))), 1e-300)


@dataclass
class Spread:
    """The readings of k fits side by side (``spread``); see the module docstring.

    Attributes:
        seeds: the fits' seeds (or None each, for meta-models given without their FitResult).
        distances: reading -> [k, N, N] each fit's distance matrix.
        agreement: reading -> [k, k] Spearman rank correlation of the fits' distance matrices.
        consensus: reading -> [N, N] the consensus distances.
        n_clusters: the clusterings' k (None: not clustered); labelings [k, N] per fit; cluster_ari
            [k, k]; co_assignment [N, N]; consensus_labels [N].
        aligned_theta: [k, N, m] the affinely aligned embeddings; theta_spread [N] in units of the
            median nearest-neighbour distance.
        n_stable: [k, N] the meta-model's stable fixed points at each theta_n per fit (None: not asked).
        averaged_accuracy: group name -> [k] the accuracy of the averaged network per fit (None: not asked).
        model_ids: the N models.
    """

    model_ids: List[str]
    seeds: List[Optional[int]]
    distances: Dict[str, np.ndarray]
    agreement: Dict[str, np.ndarray]
    consensus: Dict[str, np.ndarray]
    aligned_theta: np.ndarray
    theta_spread: np.ndarray
    n_clusters: Optional[int] = None
    labelings: Optional[np.ndarray] = None
    cluster_ari: Optional[np.ndarray] = None
    co_assignment: Optional[np.ndarray] = None
    consensus_labels: Optional[np.ndarray] = None
    n_stable: Optional[np.ndarray] = None
    averaged_accuracy: Optional[Dict[str, List[float]]] = None
    alignment: str = field(default="affine", repr=False)

    @property
    def n_fits(self) -> int:
        return len(self.seeds)

    def summary(self) -> Dict:
        """JSON-ready: per reading the smallest and median agreement between two fits; the clusterings'
        smallest and median ARI; per model the theta spread (and stable counts' range)."""
        off = ~np.eye(self.n_fits, dtype=bool)
        out = {"n_fits": self.n_fits, "seeds": self.seeds, "alignment": self.alignment,
               "distance_agreement": {r: {"min": float(a[off].min()), "median": float(np.median(a[off]))}
                                      for r, a in self.agreement.items()}}
        if self.cluster_ari is not None:
            out["cluster_ari"] = {"min": float(self.cluster_ari[off].min()),
                                  "median": float(np.median(self.cluster_ari[off])), "k": self.n_clusters}
            out["consensus_labels"] = self.consensus_labels.tolist()
        if self.averaged_accuracy:
            out["averaged_accuracy"] = {g: {"min": min(a), "max": max(a), "per_fit": list(a)}
                                        for g, a in self.averaged_accuracy.items()}
        rows = []
        for n, mid in enumerate(self.model_ids):
            row = {"id": mid, "theta_spread": float(self.theta_spread[n])}
            if self.n_stable is not None:
                row["n_stable_min"], row["n_stable_max"] = int(self.n_stable[:, n].min()), int(self.n_stable[:, n].max())
            rows.append(row)
        out["models"] = rows
        return out

    def __repr__(self) -> str:
        agree = ", ".join(f"{r} rank correlation {s['min']:.3f}-{s['median']:.3f}"
                          for r, s in self.summary()["distance_agreement"].items())
        clus = ("" if self.cluster_ari is None else
                f"; k={self.n_clusters} clusterings' ARI min {self.summary()['cluster_ari']['min']:.2f}")
        return (f"Spread({self.n_fits} fits of {len(self.model_ids)} models: {agree} (min-median){clus}; "
                f"theta spread median {float(np.median(self.theta_spread)):.2f} NN distances)")


def spread(fits: Union[FitSpread, Sequence[Union[FitResult, MetaModel]]], x: Optional[Tensor] = None, *,
           n_clusters: Optional[int] = None, fixed_points: bool = False,
           fixed_point_inputs: Optional[Tensor] = None, n_inits: int = 256, seed: int = 0,
           averages: Optional[Dict[str, Sequence]] = None, task=None) -> Spread:
    """The readings of k >= 2 fits of one population side by side, with their agreement and consensus.

    Args:
        fits: a FitSpread (``fit(..., n_fits=k)``), or FitResults or meta-models of one population.
        x: probe inputs [S, T, I] of the functional reading (typically the first 256 of the recording's);
            None: the theta reading only.
        n_clusters: cluster every fit's functional reading (theta's without ``x``) into this many groups
            and compare the clusterings; None: no clustering.
        fixed_points: count the meta-model's stable fixed points at every theta_n in every fit (RNN
            meta-models; as the fidelity section reads them: ``find_fixed_points`` at
            ``fixed_point_inputs`` (default zeros) from ``n_inits`` starts drawn, with noise 0.01, from
            the meta-model's trajectories at theta_n on the first 64 probes followed by as many steps of
            that input, so that they relax onto its attractors).
        seed: k-means and the fixed-point starts.
        averages, task: groups to average (name -> model ids or indices, as ``average``) and the task
            (``TaskData``, or name -> TaskData) their averaged networks are scored on
            (``population.training.evaluate``).

    Returns:
        Spread.

    Raises:
        ValueError: fewer than 2 fits, fits of different populations, a bad ``n_clusters``, ``averages``
            without ``task``, ``fixed_points`` without ``x``; before any work.
    """
    metas = fit_metas(fits)
    if n_clusters is not None:
        check_positive_int(n_clusters, "n_clusters")
    if averages and task is None:
        raise ValueError("argument 'task' is required with 'averages' (the averaged networks are scored on it)")
    if fixed_points and x is None:
        raise ValueError("argument 'x' is required with fixed_points=True (the starts are drawn from the "
                         "meta-model's trajectories on it)")
    seeds = (fits.seeds if isinstance(fits, FitSpread)
             else [f.config.seed if isinstance(f, FitResult) else None for f in fits])
    n = metas[0].n_models
    distances = {"theta": np.stack([embedding_distances(m, n) for m in metas])}
    if x is not None:
        distances["functional"] = np.stack([functional_distances(m, x.to(m.theta.dtype), n) for m in metas])
    agreement = {r: distance_agreement(d) for r, d in distances.items()}
    consensus = {r: consensus_distances(d) for r, d in distances.items()}
    aligned = align_embeddings([m.theta.detach().cpu().double().numpy()[:n] for m in metas])
    out = Spread(list(metas[0].model_ids[:n]), seeds, distances, agreement, consensus, aligned,
                 embedding_spread(aligned))
    if n_clusters is not None:
        reading = "functional" if "functional" in distances else "theta"
        labelings = np.stack([cluster_distances(d, n_clusters, method="kmeans", seed=seed).labels_
                              for d in distances[reading]])
        from sklearn.metrics import adjusted_rand_score

        k = len(metas)
        ari = np.array([[adjusted_rand_score(labelings[i], labelings[j]) for j in range(k)] for i in range(k)])
        co = co_assignment(labelings)
        out.n_clusters, out.labelings, out.cluster_ari, out.co_assignment = n_clusters, labelings, ari, co
        out.consensus_labels = consensus_clustering(co, n_clusters)
    if averages:
        from ..population.training import evaluate
        from .averaging import average

        task_of = task if isinstance(task, dict) else {name: task for name in averages}
        out.averaged_accuracy = {name: [float(evaluate(average(m, list(ids)), task_of[name])) for m in metas]
                                 for name, ids in averages.items()}
    if fixed_points:
        from ..dynamics.fixed_points import find_fixed_points

        inputs = fixed_point_inputs if fixed_point_inputs is not None else torch.zeros(1, metas[0].input_size)
        # the probes, then as many steps of the constant input: trajectories that relax onto the attractors
        probe = x[:64]
        probe = torch.cat([probe, inputs.reshape(-1).to(probe.dtype).expand(*probe.shape[:2], -1)], 1)

        def n_stable(m, i):
            with torch.no_grad():
                z = m(probe.to(m.theta.dtype), i)[0]
            return int(find_fixed_points(m, inputs=inputs, trajectories=z, model_id=i, n_inits=n_inits,
                                         noise=0.01, seed=seed).is_stable.sum())

        out.n_stable = np.array([[n_stable(m, i) for i in range(n)] for m in metas])
    return out


__all__ = ["READINGS", "Spread", "affine_fit", "align_embeddings", "fit_metas", "co_assignment", "consensus_clustering",
           "consensus_distances", "distance_agreement", "embedding_spread", "spread"]
