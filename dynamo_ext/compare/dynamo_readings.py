"""DYNAMO's own readings as registered measures, so that every comparison table and test treats them as
it treats the baselines.

- "dynamo" (reading "theta"): the Euclidean distance between model embeddings theta_i and theta_j
  (arXiv:2302.14078 section 3; ``uses.clustering.embedding_distances``).
- "dynamo_functional" (reading "functional"): the meta-model's states and outputs at theta_i against
  theta_j on the same probe inputs, as a fraction of their spread across models (docs/method.md,
  "The uses of the embedding"; ``uses.clustering.functional_distances``).

Both read the fitted meta-model (``MeasureInputs.meta``) and, for the functional reading, the
recording's probe inputs.
"""
from __future__ import annotations

import numpy as np

from .registry import Measure, register


def _theta(inputs) -> np.ndarray:
    from ..uses.clustering import embedding_distances

    return embedding_distances(inputs.meta, inputs.n)


def _functional(inputs) -> np.ndarray:
    from ..uses.clustering import functional_distances

    return functional_distances(inputs.meta, inputs.recording.x.to(inputs.meta.theta.dtype), inputs.n)


THETA = register(Measure(
    name="dynamo", description="Euclidean distance of the model embeddings theta", range="in [0, inf)",
    source="Cotler et al., arXiv:2302.14078, section 3", reads="meta-model", matrix=_theta, reading="theta"))
FUNCTIONAL = register(Measure(
    name="dynamo_functional",
    description="the meta-model's states and outputs at theta_i against theta_j on the same probes, as a "
                "fraction of their spread across models",
    range="in [0, inf), 1 about the population's typical spread", source="docs/method.md, after arXiv:2302.14078",
    reads="meta-model", matrix=_functional, reading="functional"))
