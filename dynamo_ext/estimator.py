"""DYNAMO as a scikit-learn estimator: ``DYNAMO(...).fit(population).embedding_``.

The same method as the functional API (``dynamo_ext.fit``, ``embed``,
``uses.clustering``; docs/method.md, after arXiv:2302.14078), in the
conventions of scikit-learn and netrep: the constructor takes the fit's
settings and stores them untouched, ``fit`` returns the estimator with its
fitted attributes ending in an underscore, ``get_params`` / ``set_params`` /
``sklearn.base.clone`` work, ``transform`` places new networks in the fitted
model embedding space and ``score`` is the held-out emulation quality.
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
from typing import List, Optional, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import Tensor

from .dynamics.marks import model_marks
from .meta.config import FitConfig
from .meta.fitting import fit as fit_meta
from .meta.probes import relaxing_probes
from .meta.spread import FitSpread
from ._checks import renamed_keyword
from .compare.distances import check_measures
from .population.base_rnn import BaseRNN
from .population.population import Population
from .population.recorded import RecordedTrajectories
from .population.recording import Recording
from .population.tasks import TaskData
from .uses.clustering import embedding_distances, functional_distances
from .uses.embedding import embed

# The parameters are FitConfig's fields, generated from them (as the CLI's options are), so that they
# cannot drift: ``seed`` is scikit-learn's ``random_state``; ``checkpoint_every`` is left out (the
# estimator writes no folder). Then the estimator's own parameters.
_FIT_FIELD = {"random_state": "seed"}
_LEFT_OUT = ("checkpoint_every",)
_OWN_PARAMS = {"embed_steps": 400, "n_fits": 1, "progress": False}
_PARAMS = {**{{v: k for k, v in _FIT_FIELD.items()}.get(f.name, f.name): f.default
              for f in dataclasses.fields(FitConfig) if f.name not in _LEFT_OUT}, **_OWN_PARAMS}


def _init(self, **params):
    unknown = sorted(set(params) - set(_PARAMS))
    if unknown:
        raise TypeError(f"DYNAMO() got unexpected keyword arguments {unknown}; its parameters are "
                        f"{sorted(_PARAMS)}")
    for name, default in _PARAMS.items():
        setattr(self, name, params.get(name, default))


_init.__signature__ = inspect.Signature(  # what scikit-learn's get_params and clone read
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default) for name, default in _PARAMS.items()])


class DYNAMO(BaseEstimator):
    """Dynamical model embedding of a population of networks, as a scikit-learn estimator.

    Parameters (keywords) are ``FitConfig``'s fields (docs/method.md, "The loss"), generated from them,
    ``random_state`` being its ``seed`` (all but ``checkpoint_every``: the estimator writes no folder);
    then ``embed_steps`` (``transform``'s steps, 400) and ``progress`` (tqdm bars, False).
    ``n_fits`` > 1 fits that many meta-models (seeds
    ``random_state``, ``random_state + 1``, ...; one recording): the distances, clusters and group tests
    are then the fits' consensus, and ``spread()`` gives every reading's spread across them
    (docs/guide/trust.md). After ``fit``:

    Attributes:
        meta_: the fitted meta-model (MetaRNN or MetaCNN); with ``n_fits`` > 1, the first fit's.
        fits_: the FitSpread of the ``n_fits`` fits (None for one fit).
        embedding_: [N, embedding_dim] float64 array, the model embeddings theta_n.
        model_ids_: the N base models' ids, in the rows' order.
        history_: the loss per step ("loss", "loss_h", "loss_y", "loss_theta").
        marks_: model id -> its marks ("below quality threshold" in any fit: its held-out hidden R^2
            under ``quality_threshold``; ``dynamics.marks``), for the models so marked.
        population_: the Population fitted (None when fitted to arrays or a Recording).
        recording_: the Recording fitted (the arrays' recording; None for a Population).
        probe_inputs_: [S, T, I] the inputs the networks were recorded on (``transform`` records new
            networks on them).
        result_: the FitResult.
    """

    __init__ = _init

    def _config(self) -> FitConfig:
        params = {_FIT_FIELD.get(k, k): v for k, v in self.get_params().items() if k not in _OWN_PARAMS}
        return FitConfig(**params).validate()

    def fit(self, X, y=None, *, task: Optional[TaskData] = None, inputs=None, outputs=None,
            ids: Optional[Sequence[str]] = None) -> "DYNAMO":
        """Fit the meta-model and the model embeddings to a population.

        Args:
            X: a Population; or a list of trained networks with ``task`` (``Population.from_modules``:
                BaseRNNs, (rnn, readout) pairs, modules of the recording protocol); or a list of N
                arrays or tensors of hidden states [trials, time, units] (units free to differ)
                recorded on the same ``inputs`` [trials, time, I], with optional ``outputs`` (a list
                of [trials, time, C]; without them only the hidden states are emulated,
                ``lambda_y`` then 0); or a Recording.
            y: ignored (scikit-learn's signature).
            ids: names of the networks of a list (default "<arch>-<i>", or "net-<i>" for arrays).

        Returns:
            self.

        Raises:
            ValueError: bad settings (naming the parameter), a list of fewer than 2 networks or arrays, a
                list of networks without ``task``,
                arrays without ``inputs`` or of other shapes than ``inputs``.
        """
        config = self._config()
        self.population_ = self.recording_ = None
        if isinstance(X, Population):
            self.population_ = X
        elif isinstance(X, Recording):
            pass
        elif isinstance(X, (list, tuple)) and len(X) < 2:
            raise ValueError(f"argument 'X' must hold at least 2 networks or hidden-state arrays (a population to "
                             f"compare), got {len(X)}")
        elif isinstance(X, (list, tuple)) and all(isinstance(a, (np.ndarray, Tensor)) for a in X):
            X = self._recording(X, inputs, outputs)
            ids = [f"net-{i}" for i in range(X.n_models)] if ids is None else ids
            if outputs is None:
                config.lambda_y = 0.0
        elif isinstance(X, (list, tuple)):
            if task is None:
                raise ValueError("argument 'task' is required when 'X' is a list of networks (their probe inputs "
                                 "and the task they are scored on), got None")
            self.population_ = X = Population.from_modules(list(X), task, ids=ids)
        else:
            raise ValueError(f"argument 'X' must be a Population, a list of networks (with task=), a list of "
                             f"hidden-state arrays (with inputs=) or a Recording, got {type(X).__name__}")
        if isinstance(X, Recording) and ids is not None and len(ids) != X.n_models:
            raise ValueError(f"argument 'ids' must name the {X.n_models} networks, got {len(ids)} names")
        fits = fit_meta(X, config, progress=self.progress, n_fits=self.n_fits)
        result = fits[0] if isinstance(fits, FitSpread) else fits
        self.fits_ = fits if isinstance(fits, FitSpread) else None
        if isinstance(X, Recording):
            self.recording_ = X
            if ids is not None:
                for r in (self.fits_ or [result]):
                    r.meta.model_ids = list(ids)
        self.result_ = result
        self._population_recording = None  # the baselines' recording, made when first asked for
        self.meta_ = result.meta
        self.embedding_ = result.meta.theta.detach().cpu().double().numpy().copy()
        self.model_ids_ = list(result.meta.model_ids)
        self.history_ = result.history
        marks = [(row["id"], m) for r in (self.fits_ or [result]) for row in r.extra.get("emulation", [])
                 for m in model_marks(row, quality_threshold=config.quality_threshold)]
        self.marks_ = {}  # id -> marks of the readings that cannot be trusted (``dynamics.marks``)
        for mid, m in dict.fromkeys(marks):
            self.marks_.setdefault(mid, []).append(m)
        # what the networks were recorded on: the task's inputs and the relax steps appended to them
        self.probe_inputs_ = X.x if isinstance(X, Recording) else relaxing_probes(X, config)
        self.n_features_in_ = int(self.probe_inputs_.shape[-1])
        return self

    @staticmethod
    def _recording(hidden: Sequence, inputs, outputs) -> Recording:
        if inputs is None:
            raise ValueError("argument 'inputs' [trials, time, I] is required when 'X' is a list of hidden-state "
                             "arrays (the meta-model is driven by them), got None")
        x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, Tensor) else inputs).float()
        nets = [RecordedTrajectories(h, None if outputs is None else outputs[i]) for i, h in enumerate(hidden)]
        for i, net in enumerate(nets):
            if net.hidden.shape[:2] != x.shape[:2]:
                raise ValueError(f"argument 'X' entry {i} must be recorded on 'inputs' ({tuple(x.shape[:2])} trials x "
                                 f"steps), got hidden states of shape {tuple(net.hidden.shape)}")
        widths = {int(n.outputs.shape[-1]) for n in nets}
        if len(widths) != 1:
            raise ValueError(f"argument 'outputs' must have the same number of outputs per network, got {sorted(widths)}")
        return Recording(x, [n.hidden for n in nets], torch.stack([n.outputs for n in nets]), "real")

    def _check_fitted(self) -> None:
        if not hasattr(self, "meta_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def transform(self, X: Sequence) -> np.ndarray:
        """The model embeddings [k, embedding_dim] of k new networks, the meta-model frozen (``embed``;
        arXiv:2302.14078 section 3). X: networks following the recording protocol, (rnn, readout) pairs
        as ``fit`` takes them, or arrays of their hidden states [trials, time, units] on ``probe_inputs_``. The fitted meta-model is unchanged
        (each network is placed in a copy)."""
        self._check_fitted()
        meta = copy.deepcopy(self.meta_)
        x = self.probe_inputs_.to(meta.theta.dtype)
        thetas = []
        for i, net in enumerate(X):
            if isinstance(net, (np.ndarray, Tensor)):
                net = RecordedTrajectories(net)
            elif isinstance(net, tuple):  # an (rnn, readout) pair, as ``fit`` takes it
                net = BaseRNN.wrap(*net)
            idx = embed(meta, net, x, steps=self.embed_steps, seed=self.random_state, progress=self.progress)
            thetas.append(meta.theta.detach()[idx].cpu().double().numpy())
        return np.stack(thetas) if thetas else np.zeros((0, meta.embedding_dim))

    def pairwise_distances(self, measure: str = "theta", inputs: Optional[Tensor] = None,
                           consensus: bool = True) -> np.ndarray:
        """[N, N] distances between the fitted networks by any registered measure (``compare.registry``):
        DYNAMO's readings "theta" ("dynamo": Euclidean between embeddings) and "functional"
        ("dynamo_functional": the meta-model's outputs at each theta_n on ``inputs``, default the probe
        inputs; ``uses.clustering.functional_distances``), or a baseline ("cka", "procrustes", ...) on the
        networks' recording (a Population's first 200 training inputs, or the arrays fitted). With
        ``n_fits`` > 1 and ``consensus``, DYNAMO's readings are the mean of the fits' matrices, each over
        its mean off-diagonal distance (``uses.across_fits``).

        Raises:
            ValueError: an unknown measure, or "weights" for an estimator fitted to arrays.
        """
        mats = self._fit_distances(measure, inputs, every_fit=consensus)
        if len(mats) == 1:
            return mats[0]
        from .uses.across_fits import consensus_distances

        return consensus_distances(mats)

    def _fit_distances(self, measure: str, inputs: Optional[Tensor] = None, every_fit: bool = True) -> list:
        """The measure's [N, N] distances: of every fit (or of the first only) for DYNAMO's readings, one
        matrix for the others."""
        from .compare.registry import MeasureInputs, get_measure

        self._check_fitted()
        m = get_measure(measure)
        if not m.dynamo:
            rec = self.recording_ if self.recording_ is not None else self._baseline_recording()
            check_measures([m.name], self.population_.family if self.population_ is not None else None, "measure")
            return [m.matrix(MeasureInputs(rec, self.population_, self.meta_, requested=(m.name,)))]
        metas = self.fits_.metas if (self.fits_ is not None and every_fit) else [self.meta_]
        x = (self.probe_inputs_ if inputs is None else inputs)[:256]
        n = len(self.model_ids_)
        if m.reading == "theta":
            return [embedding_distances(meta, n) for meta in metas]
        return [functional_distances(meta, x.to(meta.theta.dtype), n) for meta in metas]

    def _baseline_recording(self) -> Recording:
        """The population's first 200 training inputs recorded once, for every baseline measure asked for."""
        if self._population_recording is None:
            self._population_recording = self.population_.record(max_sequences=200)
        return self._population_recording

    def spread(self, n_clusters: Optional[int] = None, fixed_points: bool = False):
        """Every reading's spread across the ``n_fits`` fits (``uses.across_fits.spread`` on the first 256
        probe inputs): agreement of the distance matrices, clusterings into ``n_clusters`` groups,
        per-model spread of the aligned embeddings, stable-point counts with ``fixed_points``. Raises
        ValueError for an estimator fitted with ``n_fits`` = 1 (one fit has no spread)."""
        from .uses.across_fits import spread

        self._check_fitted()
        if self.fits_ is None:
            raise ValueError("this DYNAMO was fitted with n_fits=1: one fit has no spread; set n_fits >= 2 and refit")
        return spread(self.fits_, self.probe_inputs_[:256], n_clusters=n_clusters, fixed_points=fixed_points,
                      seed=self.random_state)

    def cluster(self, n_clusters: int, measure: str = "theta", method: str = "kmeans", labels_true=None, *,
                labels=None):
        """Cluster the fitted networks into ``n_clusters`` groups (``uses.clustering``): k-means or
        agglomerative clustering of ``embedding_`` ("theta"), or of any registered measure's distances
        (``pairwise_distances``; "functional", "cka", ...: on their classical MDS, or average linkage).
        ``random_state`` seeds k-means. With ``n_fits`` > 1 DYNAMO's readings cluster the consensus
        distances (theta's on their classical MDS). Returns a ClusterResult (``labels_`` [N],
        ``ari``/``nmi`` against ``labels_true`` when given; ``labels`` is its deprecated name)."""
        from .uses.clustering import cluster_distances, cluster_points

        self._check_fitted()
        labels_true = renamed_keyword(labels_true, labels, "labels_true", "labels", "DYNAMO.cluster")
        if measure in ("theta", "dynamo") and self.fits_ is None:
            return cluster_points(self.embedding_, n_clusters, labels_true, method=method, seed=self.random_state)
        return cluster_distances(self.pairwise_distances(measure), n_clusters, labels_true, method=method,
                                 seed=self.random_state)

    def group_test(self, labels: Sequence, measure: str = "functional", *, strata: Optional[Sequence] = None,
                   n_permutations: int = 9999, seed: Optional[int] = None):
        """Do the groups of ``labels`` differ in what the fitted networks compute? PERMANOVA with PERMDISP
        (``compare.group_test``) on the distances of any registered measure (``pairwise_distances``:
        DYNAMO's "theta" or "functional", or a baseline such as "cka"), the label permutations seeded by ``seed`` (default ``random_state``).
        With ``n_fits`` > 1 the test is on the consensus distances and ``per_fit_p_values`` holds each
        fit's p-value.

        Returns:
            GroupTest (pseudo-F, p-value, R^2, PERMDISP F and p-value).

        Raises:
            ValueError: labels not one per fitted network, fewer than 2 groups, an unknown measure.
        """
        from .compare.inference import group_test

        seed = self.random_state if seed is None else seed
        mats = self._fit_distances(measure)  # each fit's matrix once, for the consensus and its own test
        if len(mats) == 1:
            return group_test(mats[0], labels, strata=strata, n_permutations=n_permutations, seed=seed,
                              measure=measure)
        from .uses.across_fits import consensus_distances

        res = group_test(consensus_distances(mats), labels, strata=strata, n_permutations=n_permutations, seed=seed,
                         measure=f"{measure} (consensus)")
        res.per_fit_p_values = [group_test(d, labels, strata=strata, n_permutations=n_permutations,
                                           seed=seed).p_value for d in mats]
        return res

    def score(self, X=None, y=None) -> float:
        """Held-out emulation quality: the mean over base models of the hidden-state R^2 of the
        meta-model at theta_n mapped through A_n (``meta.evaluate.emulation`` on the task's test
        inputs for a Population; on the given Recording otherwise). X: default the fitted population (or,
        fitted to arrays, their recording: not held out)."""
        self._check_fitted()
        from .meta.evaluate import emulation, r2

        X = (self.population_ if self.population_ is not None else self.recording_) if X is None else X
        if isinstance(X, Population):
            return float(np.mean([row["hidden_r2"] for row in emulation(self.meta_, X)]))
        if isinstance(X, Recording):
            with torch.no_grad():
                x = X.x.to(self.meta_.theta.dtype)
                return float(np.mean([r2(self.meta_.maps[n].to_base(self.meta_(x, n)[0]).float(), h.float())
                                      for n, h in enumerate(X.hidden)]))
        raise ValueError(f"argument 'X' must be a Population or a Recording (default: the fitted population), "
                         f"got {type(X).__name__}")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.two_d_array = False  # populations and lists of networks, not a 2-D X
        return tags


__all__: List[str] = ["DYNAMO", "RecordedTrajectories"]
