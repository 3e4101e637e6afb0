"""The linearized dynamics at a matched stable point, compared like with like (docs/method.md, "Fixed points").

At a stable point the base model's step Jacobian J_b [d, d] (d: the recorded state, [h; c] for an LSTM)
says how fast each direction of its state relaxes. The meta-model at theta_n has its own Jacobian
J_m [D, D] at the matched point, in its D-dimensional state, and reaches the base model's coordinates
only through the map A_n = diag(scale_n) W_n [d, D] (``HiddenMap.to_base``). Two readings of J_m:

- **through the map**: A_n J_m A_n^+ [d, d] (A_n^+ the pseudo-inverse): a perturbation the map can
  see, lifted into the meta state along the directions A_n reads and mapped back after one step. This
  is the meta-model's linearization in the base model's coordinates, the one to hold beside J_b.
- **in full**: the eigenvalues of J_m itself, as a fixed-point analysis of the meta-model reads them.
  Each eigenvector v has a *visibility* |A_n v| / (||A_n||_2 |v|) in [0, 1]; modes below
  ``VISIBILITY_THRESHOLD`` are ones the map barely sees: they do not change the emulation, but a
  slow one among them reads as a slow manifold that no base model has.

``compare_linearization`` gives, for one matched pair, the leading ``k`` eigenvalues (modulus, angle)
of J_b, of A_n J_m A_n^+ and of J_m, their time constants -1 / ln|lambda| (steps), the unseen modes
(count, largest modulus), and whether the leading moduli differ by more than ``TOLERANCE``.
"""
from __future__ import annotations

import math
from typing import Dict, List

import torch
from torch import Tensor

VISIBILITY_THRESHOLD = 0.25  # eigenvectors whose image under A_n is below this fraction of ||A_n||_2
TOLERANCE = 0.03  # leading eigenvalue moduli closer than this read the same


def effective_map(hidden_map) -> Tensor:
    """A_n [d, D] of a ``HiddenMap``: d h / d z of its ``to_base`` (weight times the standardisation scale)."""
    return (hidden_map.linear.weight.detach() * hidden_map.scale.detach()).double()


def leading(eigenvalues: Tensor, k: int) -> List[Dict]:
    """The ``k`` eigenvalues of largest modulus: modulus, angle (radians) and time constant (steps;
    None where the modulus is >= 1)."""
    order = eigenvalues.abs().argsort(descending=True)[:k]
    out = []
    for lam in eigenvalues[order].tolist():
        lam = complex(lam)
        mod = abs(lam)
        out.append({"modulus": mod, "angle": math.atan2(lam.imag, lam.real),
                    "time_constant": (-1.0 / math.log(mod)) if 0 < mod < 1 else None})
    return out


def visibility(jacobian: Tensor, a: Tensor):
    """(eigenvalues [D] complex, visibility [D] in [0, 1]) of ``jacobian`` [D, D] under the map ``a`` [d, D]."""
    ev, vec = torch.linalg.eig(jacobian.double())
    norm = torch.linalg.matrix_norm(a, ord=2).clamp(min=1e-300)
    seen = (a.to(vec.dtype) @ vec).abs().pow(2).sum(0).sqrt() / (vec.abs().pow(2).sum(0).sqrt() * norm)
    return ev, seen.real if seen.is_complex() else seen


def compare_linearization(j_base: Tensor, j_meta: Tensor, a: Tensor, k: int = 3,
                          threshold: float = VISIBILITY_THRESHOLD, tolerance: float = TOLERANCE) -> Dict:
    """One matched stable point: J_b [d, d] of the base, J_m [D, D] of the meta-model, A_n [d, D] (module
    docstring). Returns {"base", "through_map", "full": the leading k eigenvalues each; "unseen": {"count",
    "max_modulus", "slower_than_seen"} of the modes of visibility below ``threshold`` (the last: the slowest
    of them is slower than every mode the map sees, so that a fixed-point reading of the meta-model in full
    reports a slow direction the base model does not have); "delta_through_map", "delta_full": the
    leading moduli's differences from the base's; "differs_through_map", "differs_full": above ``tolerance``}."""
    j_base, j_meta, a = j_base.double(), j_meta.double(), a.double()
    reduced = a @ j_meta @ torch.linalg.pinv(a)
    ev_m, seen = visibility(j_meta, a)
    unseen, visible = ev_m[seen < threshold].abs(), ev_m[seen >= threshold].abs()
    slowest_seen = float(visible.max()) if visible.numel() else 0.0
    out = {"base": leading(torch.linalg.eigvals(j_base), k), "through_map": leading(torch.linalg.eigvals(reduced), k),
           "full": leading(ev_m, k),
           "unseen": {"count": int(unseen.numel()), "max_modulus": float(unseen.max()) if unseen.numel() else None,
                      "slower_than_seen": bool(unseen.numel()) and float(unseen.max()) > slowest_seen}}
    base_lead = out["base"][0]["modulus"]
    for name in ("through_map", "full"):
        delta = out[name][0]["modulus"] - base_lead
        out[f"delta_{name}"] = delta
        out[f"differs_{name}"] = abs(delta) > tolerance
    return out


def summary(rows: List[Dict]) -> Dict:
    """Over a model's matched points: the largest |difference| of the leading modulus through the map and in
    full, the unseen modes' largest count and modulus, how many points differ by more than the tolerance, and at
    how many points an unseen mode is slower than every seen one."""
    if not rows:
        return {"n_points": 0}
    unseen = [r["unseen"]["max_modulus"] for r in rows if r["unseen"]["max_modulus"] is not None]
    return {"n_points": len(rows),
            "max_delta_through_map": max(abs(r["delta_through_map"]) for r in rows),
            "max_delta_full": max(abs(r["delta_full"]) for r in rows),
            "n_differ_through_map": sum(r["differs_through_map"] for r in rows),
            "n_differ_full": sum(r["differs_full"] for r in rows),
            "max_unseen_count": max(r["unseen"]["count"] for r in rows),
            "n_unseen_slower": sum(bool(r["unseen"].get("slower_than_seen")) for r in rows),
            "max_unseen_modulus": max(unseen) if unseen else None}
