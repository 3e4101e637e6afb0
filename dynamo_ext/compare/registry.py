"""The registry of distance measures: one ``Measure`` per way of comparing networks, DYNAMO's own readings
among them.

Each measure's module (``cka``, ``svcca``, ``procrustes``, ``weights``, ``outputs``, ``dsa``,
``dynamo_readings``) registers it once, with its all-pairs form, its per-pair form where one exists,
its form on arrays (``pairwise_distances``), its range and its source. ``distance_matrices``,
``pairwise_distances``, ``plan_measures``, the report's tables and tests and the explorer read the
registry, so a new measure is one module (and one test) that calls ``register``.

A measure's all-pairs form takes a ``MeasureInputs``: what a comparison of a population can read (its
Recording, the Population, the fitted meta-model), and a cache through which measures that share work
compute it once (CKA, SVCCA and Procrustes share one pass of blocked matrix products, ``all_pairs``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

# what a measure reads: a recording's hidden states on the same samples, trajectories over time (each
# network's own dynamics), the networks' weights, their outputs, or the fitted meta-model
READS = ("hidden", "trajectories", "weights", "outputs", "meta-model")


@dataclass
class MeasureInputs:
    """What a measure's all-pairs form may read.

    Attributes:
        recording: the population's Recording (hidden states, outputs, probe inputs x).
        population: the Population (the networks themselves: weights), or None.
        meta: the fitted meta-model, or None (DYNAMO's readings need it).
        requested: every measure asked for in this call (measures that share work compute it for all).
        progress: tqdm bars on long work.
        distributed: split the all-pairs products over the ranks of the initialised torch.distributed
            process group (measures with a distributed form; the others compute on every rank).
        cache: shared results, by key (``shared``).
    """

    recording: object
    population: Optional[object] = None
    meta: Optional[object] = None
    requested: Sequence[str] = ()
    progress: bool = False
    distributed: bool = False
    cache: Dict = field(default_factory=dict)

    def shared(self, key: str, compute: Callable[[], object]):
        """``compute()`` once per call, under ``key``, for every measure that reads it."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    @property
    def n(self) -> int:
        return int(self.recording.n_models)


@dataclass(frozen=True)
class Measure:
    """One distance between networks.

    Attributes:
        name: the key in every table and in metrics.json ("cka").
        description: what the distance is, in a few words ("1 - debiased linear CKA").
        range: its values ("in [0, 1]").
        source: the paper and equation it follows.
        reads: one of ``READS``.
        matrix: MeasureInputs -> [N, N] float64 distances (symmetric, zero diagonal; NaN where undefined).
        pair: the per-pair form (two networks' hidden states or models) -> distance, or None.
        arrays: the form on networks given as arrays, (list of arrays, **options) -> [N, N]
            (``pairwise_distances``), or None.
        options: the keywords ``arrays`` takes.
        default: in the default set of ``distance_matrices`` and ``analyze``.
        extra: the pip extra it needs (``dynamo_ext[peers]``), or None.
        families: the population families it applies to.
        estimate_seconds: (recording, GEMM rate in flop/s) -> predicted seconds for all pairs, or None
            (cheap: always runs; ``plan_measures``).
        reading: for DYNAMO's own readings, the estimator's short name ("theta", "functional").
    """

    name: str
    description: str
    range: str
    source: str
    reads: str
    matrix: Callable[[MeasureInputs], np.ndarray]
    pair: Optional[Callable] = None
    arrays: Optional[Callable] = None
    options: Tuple[str, ...] = ()
    default: bool = True
    extra: Optional[str] = None
    families: Tuple[str, ...] = ("rnn", "cnn1d", "cnn2d")
    estimate_seconds: Optional[Callable] = None
    reading: Optional[str] = None

    def __post_init__(self):
        if self.reads not in READS:
            raise ValueError(f"argument 'reads' must be one of {READS}, got {self.reads!r}")

    @property
    def dynamo(self) -> bool:
        """One of DYNAMO's own readings (it reads the fitted meta-model)."""
        return self.reads == "meta-model"


REGISTRY: Dict[str, Measure] = {}


def register(measure: Measure, replace: bool = False) -> Measure:
    """Add ``measure`` to the registry under its name (``replace``: over one of that name).

    Raises:
        ValueError: a name already registered (without ``replace``).
    """
    if measure.name in REGISTRY and not replace:
        raise ValueError(f"a measure named {measure.name!r} is registered already; pass replace=True")
    REGISTRY[measure.name] = measure
    return measure


def unregister(name: str) -> Measure:
    """Remove a measure from the registry and return it.

    Raises:
        ValueError: no measure of that name.
    """
    return REGISTRY.pop(get_measure(name).name)


def get_measure(name: str) -> Measure:
    """The registered measure named ``name``, or the DYNAMO reading of that short name ("theta").

    Raises:
        ValueError: an unknown name, listing the registered ones.
    """
    if name in REGISTRY:
        return REGISTRY[name]
    for m in REGISTRY.values():
        if m.reading is not None and m.reading == name:
            return m
    raise ValueError(f"argument 'measure' must be one of {tuple(REGISTRY)}, got {name!r}")


def measure_names(*, default: Optional[bool] = None, dynamo: Optional[bool] = None,
                  arrays: Optional[bool] = None) -> Tuple[str, ...]:
    """The registered names, in registration order, filtered by ``default``, ``dynamo`` (DYNAMO's own
    readings or the others) and ``arrays`` (a form on arrays)."""
    return tuple(m.name for m in REGISTRY.values()
                 if (default is None or m.default == default) and (dynamo is None or m.dynamo == dynamo)
                 and (arrays is None or (m.arrays is not None) == arrays))


def compute_matrices(names: Sequence[str], inputs: MeasureInputs) -> Dict[str, np.ndarray]:
    """Every named measure's [N, N] distances on ``inputs``, in the order given, clipped at 0 (NaN kept).

    Raises:
        ValueError: an unknown name, or a DYNAMO reading without ``inputs.meta``.
    """
    measures = [get_measure(n) for n in names]
    if inputs.meta is None:
        bad = [m.name for m in measures if m.dynamo]
        if bad:
            raise ValueError(f"measures {bad} read the fitted meta-model; none was given")
    inputs.requested = tuple(m.name for m in measures)
    out = {}
    for m in measures:
        d = np.asarray(m.matrix(inputs), dtype=np.float64)
        out[m.name] = np.where(np.isnan(d), d, np.maximum(d, 0.0))
    return out


__all__ = ["Measure", "MeasureInputs", "READS", "REGISTRY", "compute_matrices", "get_measure", "measure_names",
           "register", "unregister"]
