"""The measures people use today to compare networks, on the same recordings as DYNAMO.

Representation similarity between hidden trajectories (each model's hidden
states on the same probe inputs, flattened over sequences and steps into
n = S*T samples of d_n features):

- ``linear_cka``: linear centred kernel alignment (Kornblith, Norouzi, Lee &
  Hinton, ICML 2019, arXiv:1905.00414), with the debiased HSIC estimator of
  Song, Smola, Gretton, Bedo & Borgwardt (JMLR 2012, Eq. 5) as used by
  Nguyen, Raghu & Kornblith (ICLR 2021, arXiv:2010.15327).
- ``svcca``: singular vector CCA (Raghu, Gilmer, Yosinski & Sohl-Dickstein,
  NeurIPS 2017, arXiv:1706.05806): keep the top singular directions holding
  99% of the variance, then the mean canonical correlation.
- ``procrustes_distance``: orthogonal Procrustes distance between centred,
  unit-Frobenius-norm representations (Ding, Denain & Steinhardt, NeurIPS 2021,
  arXiv:2108.01661; Williams et al., NeurIPS 2021), solved with
  ``scipy.linalg.orthogonal_procrustes``.

Function and parameter space:

- ``weight_distance``: Euclidean distance between flattened parameters, for
  base models of the same architecture and size only (NaN otherwise).
- ``output_disagreement``: fraction of probe sequences where two models'
  last-step classes differ (classes), or of (sequence, step, output) entries
  where the signs differ (real outputs).

Baselines for the uses of the embedding:

- ``naive_weight_average``: the parameter-wise mean of same-architecture,
  same-size models (the naive "model soup", Wortsman et al., ICML 2022).
- ``OutputEnsemble``: the mean of the members' output probabilities
  (classes) or outputs (real).
- ``train_scratch``: a base model trained from scratch on a few labels.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from scipy.linalg import orthogonal_procrustes, svd
from torch import Tensor, nn

from ._checks import check_choice, check_positive_int
from .tasks import TaskData
from .cnn import BaseCNN
from .zoo import BaseRNN, Population, Recording, TrainConfig, train_base_model, param_dtype

MEASURES = ("cka", "svcca", "procrustes", "weights", "outputs")  # the default set
PEER_MEASURES = ("dsa",)  # opt-in, from the peers' packages (dynamo_ext.peers; the [peers] extra)
ALL_MEASURES = MEASURES + PEER_MEASURES


def _samples(h) -> np.ndarray:
    """Hidden states [S, T, d] (or [n, d]) as centred float64 samples [n, d]."""
    a = h.detach().cpu().double().numpy() if isinstance(h, Tensor) else np.asarray(h, dtype=np.float64)
    a = a.reshape(-1, a.shape[-1])
    if not np.isfinite(a).all():
        raise ValueError(f"representations must be finite, got {int((~np.isfinite(a)).sum())} NaN or Inf entries")
    if a.shape[0] < 4:
        raise ValueError(f"representations must hold at least 4 samples, got shape {a.shape}")
    return a - a.mean(0)


def _hsic_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Song et al. (2012) unbiased HSIC of the linear kernels K = x x^T, L = y y^T, in O(n d^2)."""
    n = x.shape[0]
    kd, ld = (x * x).sum(1), (y * y).sum(1)  # diag(K), diag(L)
    trace = float(np.square(x.T @ y).sum() - (kd * ld).sum())  # tr(K~ L~), K~ = K with zero diagonal
    k1, l1 = x @ x.sum(0) - kd, y @ y.sum(0) - ld  # K~ 1, L~ 1
    return (trace + k1.sum() * l1.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * float(k1 @ l1)) / (n * (n - 3))


class Representation:
    """One model's hidden states prepared once for every pairwise comparison: centred float64
    samples [n, d], its own unbiased HSIC, its top singular directions (SVCCA) and its
    unit-norm version (Procrustes)."""

    def __init__(self, h, variance_kept: float = 0.99):
        if not 0 < variance_kept <= 1:
            raise ValueError(f"argument 'variance_kept' must lie in (0, 1], got {variance_kept}")
        self.x = _samples(h)
        self.variance_kept = variance_kept
        self._hsic = self._top = self._unit = None

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def self_hsic(self) -> float:
        if self._hsic is None:
            self._hsic = max(_hsic_unbiased(self.x, self.x), 0.0)
        return self._hsic

    @property
    def top_directions(self) -> np.ndarray:
        if self._top is None:
            u, s, _ = svd(self.x, full_matrices=False)
            energy = np.cumsum(s ** 2) / max(float((s ** 2).sum()), 1e-300)
            k = int(np.searchsorted(energy, self.variance_kept) + 1)
            self._top = u[:, :min(k, len(s))]
        return self._top

    @property
    def unit(self) -> np.ndarray:
        if self._unit is None:
            self._unit = self.x / max(np.linalg.norm(self.x), 1e-300)
        return self._unit


def _reps(h_a, h_b, variance_kept: float = 0.99):
    a = h_a if isinstance(h_a, Representation) else Representation(h_a, variance_kept)
    b = h_b if isinstance(h_b, Representation) else Representation(h_b, variance_kept)
    if a.n != b.n:
        raise ValueError(f"representations must have the same number of samples (same probe inputs), "
                         f"got {a.n} and {b.n}")
    return a, b


def linear_cka(h_a, h_b, debiased: bool = True) -> float:
    """Linear CKA between two representations of the same samples.

    Args:
        h_a, h_b: hidden states [S, T, d_a] and [S, T, d_b] (or [n, d]) on the
            same probe inputs; tensors, arrays or Representation objects.
        debiased: use the unbiased HSIC estimator (Song et al. 2012);
            otherwise ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on centred X, Y.

    Returns:
        CKA in [0, 1] (the debiased value may leave [0, 1] slightly); 1 means
        the same representation up to rotation and isotropic scaling.

    Raises:
        ValueError: different sample counts, fewer than 4 samples, NaN/Inf.
    """
    a, b = _reps(h_a, h_b)
    x, y = a.x, b.x
    if debiased:
        denom = np.sqrt(a.self_hsic * b.self_hsic)
        return float(_hsic_unbiased(x, y) / denom) if denom > 0 else 0.0
    denom = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(np.square(x.T @ y).sum() / denom) if denom > 0 else 0.0


def svcca(h_a, h_b, variance_kept: float = 0.99) -> float:
    """SVCCA similarity: mean canonical correlation of the top singular subspaces.

    Args:
        h_a, h_b: hidden states on the same probe inputs ([S, T, d] or [n, d]).
        variance_kept: fraction of variance kept by the SVD step (Raghu et al.
            2017: 0.99); Representation arguments keep their own.

    Returns:
        Mean canonical correlation in [0, 1].

    Raises:
        ValueError: different sample counts, variance_kept outside (0, 1].
    """
    a, b = _reps(h_a, h_b, variance_kept)
    # the top directions are orthonormal bases of the reduced representations: the
    # canonical correlations are the singular values of ua^T ub
    rho = svd(a.top_directions.T @ b.top_directions, compute_uv=False)
    return float(np.clip(rho, 0.0, 1.0).mean())


def procrustes_distance(h_a, h_b) -> float:
    """Orthogonal Procrustes distance min_R ||X - Y R||_F over orthogonal R, X and Y centred and
    scaled to unit Frobenius norm (the smaller one zero-padded to the larger width).

    Returns:
        A distance in [0, sqrt(2)]: sqrt(2 - 2 ||X^T Y||_*).

    Raises:
        ValueError: different sample counts.
    """
    a, b = _reps(h_a, h_b)
    x, y = a.unit, b.unit
    width = max(x.shape[1], y.shape[1])
    x = np.pad(x, ((0, 0), (0, width - x.shape[1])))
    y = np.pad(y, ((0, 0), (0, width - y.shape[1])))
    _, nuclear = orthogonal_procrustes(y, x)  # scale = sum of singular values of y^T x
    return float(np.sqrt(max(2.0 - 2.0 * nuclear, 0.0)))


def weight_distance(model_a: nn.Module, model_b: nn.Module) -> float:
    """Euclidean distance between the flattened parameters of two base models; NaN unless both have
    the same architecture and parameter shapes (weight space is not comparable otherwise)."""
    sa, sb = model_a.state_dict(), model_b.state_dict()
    same = (getattr(model_a, "arch", None) == getattr(model_b, "arch", None) and sa.keys() == sb.keys()
            and all(sa[k].shape == sb[k].shape for k in sa))
    if not same:
        return float("nan")
    return float(sum((sa[k].double() - sb[k].double()).pow(2).sum() for k in sa) ** 0.5)


def output_disagreement(y_a: Tensor, y_b: Tensor, output_kind: str) -> float:
    """Fraction of probe sequences with different last-step classes (``"classes"``), or of entries
    with different signs (``"real"``), between outputs [S, T, C] of two models."""
    check_choice(output_kind, "output_kind", ("classes", "real"))
    if y_a.shape != y_b.shape:
        raise ValueError(f"outputs must have the same shape, got {tuple(y_a.shape)} and {tuple(y_b.shape)}")
    if output_kind == "classes":
        return float((y_a[:, -1].argmax(-1) != y_b[:, -1].argmax(-1)).float().mean())
    return float((y_a.sign() != y_b.sign()).float().mean())


def distance_matrices(population: Population, recording: Optional[Recording] = None,
                      measures: Sequence[str] = MEASURES, max_sequences: int = 200) -> Dict[str, np.ndarray]:
    """Pairwise distances [N, N] between the population's base models, one matrix per measure.

    Distances: ``cka``: 1 - debiased linear CKA; ``svcca``: 1 - SVCCA;
    ``procrustes``: Procrustes distance; ``weights``: weight_distance (NaN
    between architectures or sizes); ``outputs``: output_disagreement;
    ``dsa`` (opt-in, ``measures=(..., "dsa")``): DSA through dsa-metric
    with ``peers.DSA_DEFAULTS`` (dynamo_ext.peers).

    Args:
        population: the base models.
        recording: their recording (default: ``population.record`` on the
            first ``max_sequences`` training inputs).
        measures: a subset of ALL_MEASURES (default MEASURES).

    Raises:
        ValueError: an unknown measure, or a recording of another population size.
    """
    for m in measures:
        check_choice(m, "measures", ALL_MEASURES)
    rec = recording if recording is not None else population.record(max_sequences=max_sequences)
    n = len(population)
    if rec.n_models != n:
        raise ValueError(f"argument 'recording' holds {rec.n_models} models, the population {n}")
    reps = [Representation(h) for h in rec.hidden]  # per-model work done once
    pairwise = {
        "cka": lambda i, j: 1.0 - linear_cka(reps[i], reps[j]),
        "svcca": lambda i, j: 1.0 - svcca(reps[i], reps[j]),
        "procrustes": lambda i, j: procrustes_distance(reps[i], reps[j]),
        "weights": lambda i, j: weight_distance(population.members[i].model, population.members[j].model),
        "outputs": lambda i, j: output_disagreement(rec.outputs[i], rec.outputs[j], rec.output_kind),
    }
    out = {}
    for name in measures:
        if name == "dsa":
            from .peers import dsa_distances
            out[name] = dsa_distances(rec)
            continue
        d = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                d[i, j] = d[j, i] = pairwise[name](i, j)
        out[name] = np.where(np.isnan(d), d, np.maximum(d, 0.0))
    return out


def naive_weight_average(models: Sequence[nn.Module]) -> nn.Module:
    """The parameter-wise mean of base models (BaseRNN or BaseCNN) of one architecture and size.

    Raises:
        ValueError: no models, models that are not BaseRNN or BaseCNN, or
            different architectures or sizes.
    """
    if len(models) == 0:
        raise ValueError("argument 'models' must hold at least one model, got an empty list")
    first = models[0]
    for i, m in enumerate(models):
        if not isinstance(m, (BaseRNN, BaseCNN)):
            raise ValueError(f"argument 'models[{i}]' must be a BaseRNN or BaseCNN, got {type(m).__name__}")
        if type(m) is not type(first) or m.spec() != first.spec():
            raise ValueError(f"argument 'models' must share one architecture and size, got "
                             f"{first.arch}-h{first.hidden_size} and {m.arch}-h{m.hidden_size}")
    avg = type(first)(**first.spec())
    states = [m.state_dict() for m in models]
    avg.load_state_dict({k: torch.stack([s[k] for s in states]).mean(0) for k in states[0]})
    return avg.eval()


class OutputEnsemble(nn.Module):
    """The output ensemble of several models: x [B, T, I] -> outputs [B, T, C].

    Classes: the log of the mean of the members' softmax probabilities (a
    valid logit vector); real outputs: the mean of the members' outputs.
    """

    def __init__(self, models: Sequence[nn.Module], output_kind: str = "classes"):
        super().__init__()
        if len(models) == 0:
            raise ValueError("argument 'models' must hold at least one model, got an empty list")
        self.members = nn.ModuleList(models)
        self.output_kind = check_choice(output_kind, "output_kind", ("classes", "real"))

    def forward(self, x: Tensor) -> Tensor:
        outs = torch.stack([m(x.to(param_dtype(m))).float() for m in self.members])  # members may differ in dtype
        if self.output_kind == "real":
            return outs.mean(0)
        return torch.logsumexp(outs.log_softmax(-1), 0) - np.log(len(self.members))


def train_scratch(task: TaskData, x: Tensor, y: Tensor, arch: str = "gru", hidden_size: int = 64,
                  seed: int = 0, epochs: int = 200, family: str = "rnn") -> nn.Module:
    """A base model trained from scratch on a few labelled examples (the few-label baseline).

    Args:
        task: the task (its test split is kept for evaluation).
        x: [n, T, I] labelled inputs; y: their labels [n] (classes) or targets [n, T, C].
        arch, hidden_size, family: the base model (zoo.build_base_model);
            epochs: full-batch passes (Adam, the architecture's default rate).

    Raises:
        ValueError: x and y of different lengths.
    """
    check_positive_int(epochs, "epochs")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"arguments 'x' and 'y' must hold the same, nonzero number of examples, "
                         f"got {len(x)} and {len(y)}")
    few = TaskData(task.name, x, y, task.x_test, task.y_test, task.output_kind, task.n_outputs, task.config)
    return train_base_model(arch, hidden_size, few, seed, TrainConfig(epochs=epochs, batch_size=len(x)),
                            family=family)


__all__: List[str] = ["MEASURES", "Representation", "linear_cka", "svcca", "procrustes_distance", "weight_distance",
                      "output_disagreement", "distance_matrices", "naive_weight_average", "OutputEnsemble",
                      "train_scratch"]
