"""The report's tests: PERMANOVA and PERMDISP (``compare.group_test``) of every label set on every
measure's distances, without the models left out."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

from ..compare.inference import group_test


def group_tests(distances: Dict[str, Sequence], label_sets: Dict[str, Sequence], n_permutations: int = 999,
                seed: int = 0, exclude: Sequence[str] = (), ids: Optional[Sequence[str]] = None) -> list:
    """One row per (label set, measure): ``compare.group_test`` (PERMANOVA p-value, R^2, pseudo-F and
    PERMDISP p-value) of the label set on the measure's distances, without the models ``exclude`` (ids,
    listed in each row's "excluded"); a measure with undefined pairs (NaN, e.g. weights across
    architectures) or too few models left gets a row with ``why`` instead."""
    import numpy as np

    keep = [i for i, m in enumerate(ids or []) if m not in set(exclude)] if exclude else None
    if keep is not None and len(keep) < 3:
        return [{"labels": name, "measure": measure, "excluded": list(exclude),
                 "why": f"{len(keep)} models above the quality threshold"}
                for name in label_sets for measure in distances]
    rows = []
    for name, lab in label_sets.items():
        lab = list(lab) if keep is None else [lab[i] for i in keep]
        for measure, d in distances.items():
            d = np.asarray(d) if keep is None else np.asarray(d)[np.ix_(keep, keep)]
            row = {"labels": name, "measure": measure, "excluded": list(exclude)}
            try:
                res = group_test(d, lab, n_permutations=n_permutations, seed=seed)
            except ValueError as exc:
                rows.append({**row, "why": str(exc)})
                continue
            rows.append({**row, "p_value": res.p_value, "r2": res.r2, "pseudo_f": res.pseudo_f,
                         "dispersion_p_value": res.dispersion_p_value, "n_permutations": res.n_permutations})
    return rows


__all__ = ["group_tests"]
