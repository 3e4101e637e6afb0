"""Marks on readings that cannot be trusted as they stand.

A reading of the meta-model is worth as much as the emulation under it (docs/method.md, "What the
meta-model's Jacobian tells and what it does not"):

- ``"below quality threshold"``: the model's held-out hidden R^2 (``meta.evaluate.emulation``) is below
  the threshold (``FitConfig.quality_threshold``, 0.9 by default): its theta and everything read at it
  stand for an emulation that misses the base model;
- ``"unseen slow mode"``: at one of its matched stable points the meta-model has a mode that the map
  A_n barely reads and that is slower than every mode the map sees (``dynamics.linearization``): a
  fixed-point analysis of the meta-model there reports a slow direction the base model does not have.

Readings at thetas that are not a base model's carry their distance to the nearest one instead
(``uses.extrapolation``).
"""
from __future__ import annotations

from typing import Dict, List, Optional

from ..meta.config import FitConfig

QUALITY_THRESHOLD = FitConfig.quality_threshold
BELOW_THRESHOLD = "below quality threshold"
UNSEEN_SLOW_MODE = "unseen slow mode"


def model_marks(emulation_row: Dict, fidelity_row: Optional[Dict] = None,
                quality_threshold: Optional[float] = QUALITY_THRESHOLD) -> List[str]:
    """The marks of one base model's readings (see the module docstring) from its emulation row and its
    fidelity row (``dynamics.attractor_fidelity``; None when fixed points were not compared)."""
    marks = []
    r2 = emulation_row.get("hidden_r2")
    if quality_threshold is not None and r2 is not None and not r2 >= quality_threshold:
        marks.append(BELOW_THRESHOLD)
    summary = (fidelity_row or {}).get("linearization_summary") or {}
    if summary.get("n_unseen_slower"):
        marks.append(UNSEEN_SLOW_MODE)
    return marks


__all__ = ["BELOW_THRESHOLD", "QUALITY_THRESHOLD", "UNSEEN_SLOW_MODE", "model_marks"]
