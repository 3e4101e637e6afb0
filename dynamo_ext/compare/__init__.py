"""Comparison: the measures people use today to compare networks, and DYNAMO's own readings, on the
same recordings.

Every measure is one module that registers one ``Measure`` (``registry``): its all-pairs form, its
per-pair form where one exists, its form on arrays, its range and its source. The registered
measures, in order: ``dynamo`` and ``dynamo_functional`` (DYNAMO's readings, ``dynamo_readings``),
``cka``, ``svcca``, ``procrustes``, ``weights``, ``outputs`` and the peer ``dsa`` (through its
authors' package, the ``[peers]`` extra). ``distance_matrices`` gives their distance matrices on a
population (CKA, SVCCA and Procrustes in one pass of blocked matrix products, ``all_pairs``) and
``plan_measures`` which fit a time budget; ``pairwise_distances(data, measure)`` gives one measure's
matrix for networks given as arrays [trials, time, units] (netrep and DSA style). A new measure is
one module that calls ``register`` (see ``registry``), and every table, test and the explorer lists it.

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

Tests on any distance matrix (``inference``): ``group_test`` (PERMANOVA with PERMDISP: do groups of
networks differ, in location or only in spread?) and ``mantel`` (do two measures agree?), with the
permutations of scikit-bio's implementations.

Baselines for the uses of the embedding:

- ``naive_weight_average``: the parameter-wise mean of same-architecture,
  same-size models (the naive "model soup", Wortsman et al., ICML 2022).
- ``OutputEnsemble``: the mean of the members' output probabilities
  (classes) or outputs (real).
- ``train_scratch``: a base model trained from scratch on a few labels.
"""
from .registry import Measure, MeasureInputs, REGISTRY, get_measure, measure_names, register, unregister
from . import dynamo_readings  # noqa: F401  (registers DYNAMO's readings first: they lead every table)
from .cka import linear_cka
from .svcca import svcca
from .procrustes import procrustes_distance
from .weights import naive_weight_average, weight_distance
from .outputs import OutputEnsemble, output_disagreement
from . import dsa
from .inference import GroupTest, MantelTest, group_test, mantel
from .distances import check_measures, distance_matrices, plan_measures
from .pairwise import pairwise_distances
from .representation import Representation
from .scratch import train_scratch


def __getattr__(name):  # the registry's lists, read when asked (a newly registered measure is in them)
    from . import distances, pairwise

    if name in ("ALL_MEASURES", "MEASURES", "PEER_MEASURES"):
        return getattr(distances, name)
    if name in ("DISTANCE_RANGES", "PAIRWISE_MEASURES"):
        return getattr(pairwise, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ALL_MEASURES", "DISTANCE_RANGES", "GroupTest", "MEASURES", "MantelTest", "Measure", "MeasureInputs",
           "OutputEnsemble", "PAIRWISE_MEASURES", "PEER_MEASURES", "REGISTRY", "Representation", "check_measures",
           "distance_matrices", "dsa", "get_measure", "group_test", "linear_cka", "mantel", "measure_names",
           "naive_weight_average", "output_disagreement", "pairwise_distances", "plan_measures",
           "procrustes_distance", "register", "svcca", "train_scratch", "unregister", "weight_distance"]
