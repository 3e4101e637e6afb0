"""Comparison: the measures people use today to compare networks, on the same recordings as DYNAMO.

Each measure in its own module (``cka``, ``svcca``, ``procrustes``, ``weights``,
``outputs``; the peer DSA in ``dsa``, through its authors' package, the
``[peers]`` extra); ``distances`` gives every measure's distance matrix, computing all pairs of
CKA, SVCCA and Procrustes as blocked matrix products (``all_pairs``) and planning which measures fit
a time budget (``plan_measures``). ``pairwise_distances(data, measure)`` gives one measure's matrix
for networks given as arrays [trials, time, units] (netrep and DSA style; ``pairwise``).

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
from .inference import GroupTest, MantelTest, group_test, mantel
from .distances import ALL_MEASURES, MEASURES, PEER_MEASURES, distance_matrices
from .pairwise import DISTANCE_RANGES, PAIRWISE_MEASURES, pairwise_distances
from .representation import Representation
from .cka import linear_cka
from .svcca import svcca
from .procrustes import procrustes_distance
from .weights import naive_weight_average, weight_distance
from .outputs import OutputEnsemble, output_disagreement
from .scratch import train_scratch
from . import dsa

__all__ = ["ALL_MEASURES", "GroupTest", "MantelTest", "group_test", "mantel", "DISTANCE_RANGES", "MEASURES", "PAIRWISE_MEASURES", "pairwise_distances", "OutputEnsemble", "PEER_MEASURES", "Representation", "distance_matrices",
           "dsa", "linear_cka", "naive_weight_average", "output_disagreement", "procrustes_distance", "svcca",
           "train_scratch", "weight_distance"]
