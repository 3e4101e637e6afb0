"""What the explorer computes, with the package's own API, cached per theta; no web framework here.

``Explorer(meta, population)`` answers the questions a click asks of the model embedding space
(arXiv:2302.14078, its fixed-point analysis of meta-models; docs/guide/explorer.md):

- ``plane()``: every base model as a point in the embedding plane (theta itself when m = 2, its first
  two principal components when m > 2, or the classical MDS map of DYNAMO's functional distances),
  its labels and its held-out emulation quality;
- ``at_theta(theta)``: the meta-model at any theta as an operable network: its fixed points and their
  stability (``find_fixed_points`` from its own trajectories), its trajectories and outputs on the
  probe inputs, its task accuracy;
- ``at_model(model_id)``: a base model beside the meta-model at its theta_n: both sides' fixed points
  (``dynamics.attractor_fidelity.topology``), both hidden trajectories in the base model's coordinates;
- ``path(a, b)``: fixed points by type along the straight path (``dynamics.path_scan``);
- ``compare(a, b)``: DYNAMO's two distances between two thetas, and CKA when both are base models;
- ``group(by, value)``: the averaged network of a group (``average``) against its members.

Every answer is a JSON-ready dict of plain numbers and lists, so that the page, the export and the
tests read the same values.
"""
from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from ..dynamics.attractor_fidelity import topology
from ..dynamics.fixed_points import find_fixed_points
from ..dynamics.marks import QUALITY_THRESHOLD, model_marks
from ..dynamics.path_scan import scan
from ..meta.evaluate import emulation
from ..meta.rnn import MetaRNN
from ..population.population import Population
from ..population.recording import param_dtype
from ..population.training import evaluate
from ..uses.averaging import average
from ..uses.extrapolation import support
from ..uses.clustering import (classical_mds, distances_from_grams, functional_distance, functional_features,
                               functional_grams, spreads_from_grams)

LABELS = ("arch", "task", "hidden_size", "seed")


def _pca_basis(points: Tensor, k: int = 2):
    """(mean [D], basis [D, k]) of the principal components of ``points`` [P, D] (zero-padded when
    there are fewer than k directions)."""
    points = points.double()
    mean = points.mean(0)
    if points.shape[0] >= 2:
        v = torch.linalg.svd(points - mean, full_matrices=False)[2][:k].T
    else:
        v = torch.zeros(points.shape[1], 0, dtype=torch.float64)
    if v.shape[1] < k:
        v = torch.cat([v, torch.eye(points.shape[1], k, dtype=torch.float64)[:, v.shape[1]:]], 1)
    return mean, v


def _project(x: Tensor, mean: Tensor, basis: Tensor) -> List:
    return ((x.double() - mean) @ basis).tolist()


class Explorer:
    """The explorer's answers for one fitted meta-model and the population it was fitted to.

    Args:
        meta: a fitted MetaRNN (fixed points need a recurrent meta-model).
        population: its population (the same model ids, in order).
        n_probes: probe sequences (the task's test inputs) for trajectories and outputs.
        n_inits: fixed-point starts per theta, drawn from the meta-model's own trajectories there.
        seed: the starts' seed.
        labels: extra labels {name: one value per model} to colour by (a user's).
        quality_threshold: a model whose held-out hidden R^2 is below it is marked (None: no mark).
        fits: other fits of the same population (a FitSpread, FitResults or meta-models; ``meta`` among
            them or not): the plane shows where each fit puts every model, mapped into ``meta``'s
            embedding coordinates by the least-squares affine map from that fit's theta (theta is
            identified only up to an affine map; ``uses.across_fits``).

    Raises:
        ValueError: a meta-model that is not a MetaRNN, or one fitted to other models.
    """

    def __init__(self, meta: MetaRNN, population: Population, n_probes: int = 16, n_inits: int = 256,
                 seed: int = 0, labels: Optional[Dict[str, Sequence]] = None,
                 quality_threshold: Optional[float] = QUALITY_THRESHOLD, fits=None):
        if not isinstance(meta, MetaRNN):
            raise ValueError(f"argument 'meta' must be a MetaRNN (the explorer solves fixed points), got "
                             f"{type(meta).__name__}")
        if list(meta.model_ids[:len(population)]) != population.ids:
            raise ValueError(f"argument 'meta' was fitted to the models {list(meta.model_ids)}, not to this "
                             f"population {population.ids}")
        for name, values in (labels or {}).items():
            if len(values) != len(population):
                raise ValueError(f"argument 'labels' entry {name!r} must have {len(population)} values (one per "
                                 f"model), got {len(values)}")
        self.meta, self.population = meta.eval(), population
        self.n, self.n_inits, self.seed = len(population), n_inits, seed
        self.quality_threshold = quality_threshold
        self.task = population.task
        self.probes = self.task.x_test[:n_probes].to(meta.theta.dtype)
        self.labels = {k: population.labels(k) if k != "seed" else [m.seed for m in population.members]
                       for k in LABELS}
        self.labels.update({k: list(v) for k, v in (labels or {}).items()})
        self.thetas = meta.theta.detach()[:self.n].double()
        self.theta_mean, self.theta_basis = ((torch.zeros(meta.embedding_dim, dtype=torch.float64),
                                              torch.eye(meta.embedding_dim, dtype=torch.float64))
                                             if meta.embedding_dim == 2 else _pca_basis(self.thetas))
        self.emulation = {row["id"]: row for row in emulation(meta, population)}
        self._spreads = self._mds = None  # from every model's functional Gram matrices, when first asked for
        self._cache: Dict = {}
        self.spread = None if fits is None else self._spread_of(fits)

    def _spread_of(self, fits) -> Dict:
        """Every fit's embeddings mapped onto this meta-model's by affine least squares: per model its
        points [k, m], and its theta spread (``uses.across_fits.embedding_spread``) over the fits."""
        from ..uses.across_fits import affine_fit, embedding_spread, fit_metas

        metas = fit_metas(fits)
        if list(metas[0].model_ids[:self.n]) != self.population.ids:
            raise ValueError("argument 'fits' must be fits of this population (the same model ids in order)")
        ref = self.thetas.numpy()
        mapped = np.stack([affine_fit(m.theta.detach()[:self.n].double().cpu().numpy(), ref)
                           for m in metas])  # [k, N, m]
        return {"thetas": mapped, "theta_spread": embedding_spread(mapped).tolist()}

    # -- the plane ---------------------------------------------------------------------------
    def to_theta(self, xy: Sequence[float]) -> Tensor:
        """The theta [m] at a point of the theta plane (theta itself, or the principal-component plane)."""
        return self.theta_mean + torch.as_tensor(xy, dtype=torch.float64) @ self.theta_basis.T

    def to_plane(self, theta: Tensor) -> List[float]:
        return _project(theta.reshape(1, -1), self.theta_mean, self.theta_basis)[0]

    def mds(self) -> np.ndarray:
        """[N, 2] classical MDS coordinates of DYNAMO's functional distances (computed once)."""
        if self._mds is None:
            self._functional()
        return self._mds

    def _functional(self) -> None:
        """The population's spreads of the meta-model's states and outputs (V_z, V_y) and the MDS map of
        the functional distances, from the Gram matrices of every model's states on the probes
        (``uses.clustering.functional_grams``: the probes streamed, N x N values held, not N x S x T x D)."""
        grams = functional_grams(self.meta, self.probes, self.thetas)
        self._spreads = spreads_from_grams(grams, len(self.probes))
        d = distances_from_grams(*grams, n_sequences=len(self.probes))
        del grams
        coords = classical_mds(d, min(2, len(d) - 1)) if len(d) > 1 else np.zeros((len(d), 0))
        self._mds = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))  # two columns, whatever N

    def plane(self, kind: str = "theta") -> Dict:
        """Every base model's point in the plane ("theta": theta or its principal components; "mds": the
        functional distances' classical MDS), its labels and held-out hidden R^2 and output agreement;
        with ``fits``, in the theta plane, every fit's point of every model ("spread")."""
        if kind not in ("theta", "mds"):
            raise ValueError(f"argument 'kind' must be 'theta' or 'mds', got {kind!r}")
        xy = [self.to_plane(t) for t in self.thetas] if kind == "theta" else self.mds().tolist()
        spread = None
        if self.spread is not None and kind == "theta":
            spread = {"xy": [[self.to_plane(torch.as_tensor(fit[n])) for fit in self.spread["thetas"]]
                             for n in range(self.n)], "theta_spread": self.spread["theta_spread"]}
        return {"kind": kind, "ids": self.population.ids, "xy": xy, "labels": self.labels, "spread": spread,
                "hidden_r2": [self.emulation[i]["hidden_r2"] for i in self.population.ids],
                "output_agreement": [self.emulation[i]["output_agreement"] for i in self.population.ids],
                "axes": ["theta 1", "theta 2"] if self.meta.embedding_dim == 2 and kind == "theta"
                else ["PC 1 of theta", "PC 2 of theta"] if kind == "theta" else ["MDS 1", "MDS 2"]}

    # -- one theta ---------------------------------------------------------------------------
    def resolve(self, point: Union[str, Sequence[float], Tensor]) -> Dict:
        """{"id": model id or None, "theta": Tensor [m]} of a model id or a theta."""
        if isinstance(point, str):
            if point not in self.population.ids:
                raise ValueError(f"argument 'point' must be one of the model ids {self.population.ids} or a theta, "
                                 f"got {point!r}")
            return {"id": point, "theta": self.thetas[self.population.ids.index(point)]}
        theta = torch.as_tensor(point, dtype=torch.float64).reshape(-1)
        if theta.shape[0] != self.meta.embedding_dim or not bool(torch.isfinite(theta).all()):
            raise ValueError(f"argument 'point' must be a finite theta of {self.meta.embedding_dim} numbers, got "
                             f"{theta.tolist()}")
        return {"id": None, "theta": theta}

    @torch.no_grad()
    def trajectories(self, theta: Tensor):
        """The meta-model's states [B, T, D] and outputs [B, T, C] at ``theta`` on the probes."""
        return self.meta(self.probes, theta=theta.to(self.meta.theta.dtype))

    def at_theta(self, point) -> Dict:
        """The meta-model at a theta (or a model's theta_n): fixed points by stability (from
        ``n_inits`` starts on its own probe trajectories), trajectories and outputs on the probes (in the
        principal-component plane of its states), task accuracy on the test set. Cached per theta."""
        theta = self.resolve(point)["theta"]
        key = ("theta", tuple(round(float(v), 12) for v in theta))
        if key in self._cache:
            return self._cache[key]
        t0 = time.perf_counter()
        z, y = self.trajectories(theta)
        fps = find_fixed_points(self.meta, theta=theta.to(self.meta.theta.dtype), trajectories=z,
                                n_inits=self.n_inits, seed=self.seed)
        mean, basis = _pca_basis(z.reshape(-1, z.shape[-1]))
        stable = fps.is_stable
        accuracy = evaluate(self.meta.at(theta.to(self.meta.theta.dtype)), self.task)
        out = {"theta": theta.tolist(), "plane": self.to_plane(theta), "n_fixed_points": len(fps),
               "n_stable": int(stable.sum()), "n_unstable": int((~stable).sum()),
               "n_slow_points": len(fps.slow_points), "accuracy": accuracy,
               "points": _project(fps.states, mean, basis) if len(fps) else [],
               "stable": stable.tolist(), "n_unstable_directions": fps.n_unstable.tolist(),
               "trajectories": [_project(traj, mean, basis) for traj in z],
               "outputs": y[0].tolist(), **support(self.meta, theta.to(self.meta.theta.dtype), self.n)}
        out["seconds"] = time.perf_counter() - t0
        self._cache[key] = out
        return out

    def at_model(self, model_id: str) -> Dict:
        """Base model ``model_id`` beside the meta-model at its theta_n: the fixed points of both
        (``fidelity.topology``; the meta-model's stable points mapped through A_n) and the hidden
        trajectories of both on the probes, in the principal components of the base model's."""
        n = self.population.index(model_id)
        key = ("model", model_id)
        if key in self._cache:
            return self._cache[key]
        top = topology(self.meta, self.population, n, n_inits=self.n_inits, seed=self.seed, return_points=True)
        member = self.population.members[n]
        with torch.no_grad():
            h, _ = member.model.record(self.probes.to(param_dtype(member.model)))
            z, _ = self.trajectories(self.thetas[n])
            h_meta = self.meta.maps[n].to_base(z)
        mean, basis = _pca_basis(h.reshape(-1, h.shape[-1]))
        points = top.pop("points", None) or {"base": torch.zeros(0, h.shape[-1]), "meta": torch.zeros(0, h.shape[-1])}
        out = {"id": model_id, "theta": self.thetas[n].tolist(), "plane": self.to_plane(self.thetas[n]),
               "test_accuracy": member.test_accuracy, **self.emulation[model_id], "fidelity": top,
               "marks": model_marks(self.emulation[model_id], top, self.quality_threshold),
               "base_points": _project(points["base"], mean, basis) if len(points["base"]) else [],
               "meta_points": _project(points["meta"], mean, basis) if len(points["meta"]) else [],
               "base_trajectories": [_project(t, mean, basis) for t in h],
               "meta_trajectories": [_project(t, mean, basis) for t in h_meta]}
        self._cache[key] = out
        return out

    # -- two thetas, a path, a group -----------------------------------------------------------
    def compare(self, a, b) -> Dict:
        """DYNAMO's distances between two points (model ids or thetas): Euclidean in theta and the
        functional distance (``uses.clustering.functional_distances``' d on the probes, the population's
        spreads); when both are models, every registered measure with a per-pair form on hidden states
        (``compare.registry``: CKA, SVCCA, Procrustes) between their hidden states ("measures")."""
        ra, rb = self.resolve(a), self.resolve(b)
        if self._spreads is None:
            self._functional()
        fa, fb = (functional_features(self.meta, self.probes, r["theta"][None]) for r in (ra, rb))
        out = {"a": ra["id"] or ra["theta"].tolist(), "b": rb["id"] or rb["theta"].tolist(),
               "theta_distance": float((ra["theta"] - rb["theta"]).norm()),
               "functional_distance": functional_distance((fa[0][0], fa[1][0]), (fb[0][0], fb[1][0]), self._spreads),
               "measures": {}}
        if ra["id"] is not None and rb["id"] is not None:
            from ..compare.registry import REGISTRY

            hs = []
            for mid in (ra["id"], rb["id"]):
                member = self.population.members[self.population.index(mid)]
                with torch.no_grad():
                    hs.append(member.model.record(self.probes.to(param_dtype(member.model)))[0])
            out["measures"] = {m.name: float(m.pair(*hs)) for m in REGISTRY.values()
                               if m.reads == "hidden" and m.pair is not None}
        return out

    def path(self, a, b, steps: int = 11) -> Dict:
        """Fixed points by type at ``steps`` thetas on the straight path from ``a`` to ``b`` (``scan``,
        with the same starts as ``at_theta``)."""
        ta, tb = self.resolve(a)["theta"], self.resolve(b)["theta"]
        key = ("path", tuple(ta.tolist()), tuple(tb.tolist()), steps)
        if key not in self._cache:
            w = torch.linspace(0, 1, steps, dtype=torch.float64)[:, None]
            thetas = ((1 - w) * ta + w * tb).to(self.meta.theta.dtype)
            result = scan(self.meta, thetas, probe_x=self.probes, n_inits=self.n_inits, noise=0.0, seed=self.seed)
            self._cache[key] = {"a": ta.tolist(), "b": tb.tolist(), "rows": result.table()}
        return self._cache[key]

    def group(self, by: str, value) -> Dict:
        """The network at the mean theta of the models whose label ``by`` is ``value`` (``average``),
        its accuracy against its members' mean accuracy."""
        if by not in self.labels:
            raise ValueError(f"argument 'by' must be one of {sorted(self.labels)}, got {by!r}")
        idx = [i for i, v in enumerate(self.labels[by]) if str(v) == str(value)]
        if not idx:
            raise ValueError(f"no model has {by} = {value!r}; values: {sorted({str(v) for v in self.labels[by]})}")
        members = [self.population.members[i] for i in idx]
        net = average(self.meta, idx)
        return {"by": by, "value": str(value), "members": [m.id for m in members],
                "member_mean_accuracy": float(np.mean([m.test_accuracy for m in members])),
                "averaged_accuracy": evaluate(net, self.task), "theta": self.thetas[idx].mean(0).tolist()}
