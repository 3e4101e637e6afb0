"""The uses of a fitted model embedding (arXiv:2302.14078 sections 3-5).

Modules, one use each, named for what they hold: ``embedding`` (``embed``: a new model's theta, the
meta-model frozen), ``averaging`` (``average``: several models averaged into one operable model at
their mean theta), ``clustering`` (``cluster``: networks clustered by computation, from theta's and
the meta-model's functional distances), ``adaptation`` (``adapt``: few-label learning by optimising
theta only), ``reparameterization`` (``reparameterize``: function-preserving copies of base models,
and the check that a measure sees through them), ``across_fits`` (``spread``: the readings' spread
across meta-model fits), ``extrapolation`` (``support``: how far a theta lies from the base models).
This package binds the functions, not the modules: ``dynamo_ext.uses.cluster(...)`` is the
function; the functions are also at the package's top level (``dynamo_ext.embed``, ...).
"""
from .adaptation import adapt
from .averaging import average
from .clustering import ClusterResult, cluster
from .embedding import embed
from .extrapolation import support
from .reparameterization import reparameterize
from .across_fits import Spread, spread

__all__ = ["ClusterResult", "Spread", "adapt", "average", "cluster", "embed", "reparameterize", "spread", "support"]
