"""The uses of a fitted model embedding (arXiv:2302.14078 sections 3-5).

Modules: ``embed`` (a new model's theta, the meta-model frozen), ``average``
(several models averaged into one operable model at their mean theta),
``cluster`` (networks clustered by computation: theta's and the meta-model's
functional distances), ``adapt`` (few-label learning by optimising theta
only), ``reparameterize`` (function-preserving copies of base models, and the
check that a measure sees through them). The functions are also at the
package's top level: ``dynamo_ext.embed``, ``dynamo_ext.average``, ...
"""
from . import adapt, average, cluster, embed, reparameterize

__all__ = ["adapt", "average", "cluster", "embed", "reparameterize"]
