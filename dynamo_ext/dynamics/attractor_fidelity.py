"""Dynamical fidelity: does the meta-model at theta_n have base model n's attractors and memory?

docs/method.md, "Fixed points" (fidelity: measured, not assumed); the
paper reads base models' computation off the meta-model's fixed points
(Cotler et al., arXiv:2302.14078), which is only sound where those fixed
points are the base model's. Per base model n, on the same rule for both:

- topology: fixed points of base model n and of the meta-model at theta_n
  at the same constant input (zero by default) from the same number of
  starts (each drawn from its own trajectories on the probe inputs followed by
  one probe length of that input), counted by number of unstable directions
  (eigenvalues of dcell/dz of modulus > 1); the stable points matched one to
  one (``scipy.optimize.linear_sum_assignment``) between the base's h* and
  the meta-model's A_n z* + c_n in base coordinates; the largest matched
  distance over the median distance between the base's stable points; the
  leading Jacobian eigenvalue moduli of each matched pair, and their
  linearizations compared like with like (``linearization``: the meta-model's
  Jacobian through the map A_n beside the base's, and the modes A_n barely sees);
- memory (pulse tasks, which have a generator): on fresh sequences of one
  probe length of pulses followed by ``silence`` probe lengths of zero input,
  and on fresh pulse sequences ``horizon`` times the probe length, the task
  accuracy of the base model and of the meta-model at theta_n and their sign
  agreement (where the target is nonzero).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from .._checks import check_positive_int
from ..meta.rnn import MetaRNN
from ..population.population import Population
from ..population.recording import param_dtype
from ..population.tasks import (
    PULSE_TASKS,
    TaskData,
    accuracy,
    pulse_inputs,
    pulse_targets,
)
from .fixed_points import find_fixed_points
from .linearization import compare_linearization, effective_map
from .linearization import summary as linearization_summary
from .points import FixedPoints


def counts_by_type(fps: FixedPoints) -> Dict:
    """Fixed points by number of unstable directions (0: stable, 1: saddle, more), and slow points."""
    n_unstable = fps.n_unstable
    return {"n_fixed_points": len(fps), "n_stable": int((n_unstable == 0).sum()),
            "n_saddle_1": int((n_unstable == 1).sum()), "n_unstable_more": int((n_unstable > 1).sum()),
            "n_slow_points": len(fps.slow_points) if fps.slow_points is not None else 0}


def match_stable_points(base: Tensor, meta: Tensor) -> Dict:
    """Match base stable points [Pb, d] to meta stable points in base coordinates [Pm, d] one to one.

    Returns the matched index pairs, each pair's distance, and the largest matched
    distance over the median pairwise distance between the base's stable points
    (None where the base has fewer than two).
    """
    if len(base) == 0 or len(meta) == 0:
        return {"pairs": [], "distances": [], "max_distance_rel": None}
    cost = torch.cdist(base.double(), meta.double())
    from scipy.optimize import linear_sum_assignment  # SciPy loaded when first used

    rows, cols = linear_sum_assignment(cost.numpy())
    dist = cost[rows, cols]
    rel = None
    if len(base) >= 2:
        pd = torch.pdist(base.double())
        rel = float(dist.max() / pd.median().clamp(min=1e-12))
    return {"pairs": [[int(r), int(c)] for r, c in zip(rows, cols)], "distances": dist.tolist(),
            "max_distance_rel": rel}


def _relaxing_probe(x: Tensor, x_star: Tensor) -> Tensor:
    """The probe inputs [B, T, I] followed by T steps of the constant input: trajectories that
    also relax onto the attractors, where the fixed-point starts are drawn."""
    return torch.cat([x, x_star.to(x.dtype).expand(x.shape[0], x.shape[1], -1)], dim=1)


def topology(meta: MetaRNN, population: Population, n: int, inputs: Optional[Tensor] = None,
             n_inits: int = 256, n_probe: int = 64, noise: float = 0.01, seed: int = 0,
             return_points: bool = False) -> Dict:
    """Fixed points of base model ``n`` and of the meta-model at theta_n, side by side (module docstring).

    Args:
        inputs: the constant input x* [I] (default zeros).
        n_inits: starts for each of the two (drawn from its own trajectories).
        n_probe: probe sequences (the task's test inputs) for the trajectories.
        return_points: also return "points": the base's stable h* [Pb, d_n], the meta-model's
            stable points in base coordinates [Pm, d_n] and the base trajectories [B, 2T, d_n]
            (tensors, for figures; not JSON).

    Returns:
        {"base": counts, "meta": counts, "n_matched", "max_matched_distance_rel",
        "leading_moduli": [[base, meta], ...] per matched pair, "extra_meta_stable"}
        or {"unsupported": reason} where the base model's cell has no fixed-point solver.
    """
    member = population.members[n]
    task = population.task_of(n)
    x_star = torch.zeros(task.input_size) if inputs is None else inputs.detach().float().reshape(-1)
    x = _relaxing_probe(task.x_test[:n_probe], x_star)
    with torch.no_grad():
        h, _ = member.model.record(x.to(param_dtype(member.model)))
        h = h.float()
        z, _ = meta(x.to(meta.theta.dtype), n)
    try:
        base = find_fixed_points(member.model, inputs=x_star, trajectories=h, n_inits=n_inits, noise=noise,
                                 seed=seed)
    except ValueError as exc:
        return {"unsupported": str(exc)}
    fps = find_fixed_points(meta, inputs=x_star, trajectories=z, n_inits=n_inits, noise=noise, model_id=n, seed=seed)
    b_st, m_st = base.select(base.is_stable), fps.select(fps.is_stable)
    m_in_base = m_st.to_base(n)
    match = match_stable_points(b_st.states, m_in_base)
    a_n = effective_map(meta.maps[n])  # the linearizations of each matched pair, like with like
    lin = [compare_linearization(b_st.jacobians[i], m_st.jacobians[j], a_n) for i, j in match["pairs"]]
    out = {"base": counts_by_type(base), "meta": counts_by_type(fps), "n_matched": len(match["pairs"]),
           "max_matched_distance_rel": match["max_distance_rel"],
           "extra_meta_stable": max(0, len(m_st) - len(b_st)),
           "leading_moduli": [[p["base"][0]["modulus"], p["full"][0]["modulus"]] for p in lin],
           "linearization": lin, "linearization_summary": linearization_summary(lin)}
    if return_points:
        out["points"] = {"base": b_st.states, "meta": m_in_base, "trajectories": h}
    return out


def memory_sequences(task: TaskData, n_seq: int, silence: int, horizon: int, seed: int):
    """Fresh pulse sequences from the task's generator: (held [n, T (1 + silence), I], its targets,
    long [n, T horizon, I], its targets), T the probe length."""
    cfg = task.config
    T, bits, prob = task.seq_len, task.input_size, cfg.get("pulse_prob", 0.08)
    g = torch.Generator().manual_seed(seed)
    pulses = pulse_inputs(n_seq, T, bits, prob, g)
    held = torch.cat([pulses, torch.zeros(n_seq, T * silence, bits)], dim=1)
    long = pulse_inputs(n_seq, T * horizon, bits, prob, g)
    return held, pulse_targets(held, task.name), long, pulse_targets(long, task.name)


@torch.no_grad()
def memory(meta: MetaRNN, population: Population, n: int, n_seq: int = 200, silence: int = 10,
           horizon: int = 10, seed: int = 12345) -> Optional[Dict]:
    """Base model ``n`` and the meta-model at theta_n on sequences that ask them to hold a state
    (module docstring); None for a task without a generator (not a pulse task).

    Returns:
        {"silence": {"base_accuracy", "meta_accuracy", "agreement"} over the silent steps,
        "long": the same over the whole long sequences, "steps": {"silence", "long"}}.
    """
    task = population.task_of(n)
    if not task.generated or task.name not in PULSE_TASKS:  # a user's task has no generator here
        return None
    check_positive_int(silence, "silence")
    check_positive_int(horizon, "horizon")
    held, y_held, long, y_long = memory_sequences(task, n_seq, silence, horizon, seed)
    model = population.members[n].model
    out = {}
    for name, x, y, start in (("silence", held, y_held, task.seq_len), ("long", long, y_long, 0)):
        base = model(x.to(param_dtype(model))).float()[:, start:]
        emu = meta(x.to(meta.theta.dtype), n)[1].float()[:, start:]
        target = y[:, start:]
        mask = target != 0
        agree = float(((base.sign() == emu.sign()) & mask).sum() / mask.sum().clamp(min=1))
        out[name] = {"base_accuracy": accuracy(task, base, target), "meta_accuracy": accuracy(task, emu, target),
                     "agreement": agree}
    out["steps"] = {"silence": held.shape[1], "long": long.shape[1]}
    return out


def fidelity(meta: MetaRNN, population: Population, n_inits: int = 256, inputs: Optional[Tensor] = None,
             seed: int = 0, progress: bool = False, models: Optional[Sequence[int]] = None) -> List[Dict]:
    """Per base model: topology and memory of the meta-model at theta_n against the base (module docstring).

    Args:
        models: the members to compare (indices into the population, in this order; default all).

    Raises:
        ValueError: a meta-model that is not a MetaRNN, or fitted to another population; a model index
            out of range.
    """
    if not isinstance(meta, MetaRNN):
        raise ValueError(f"argument 'meta' must be a MetaRNN (a CNN's layer map has no fixed points), "
                         f"got {type(meta).__name__}")
    if meta.model_ids[:len(population)] != population.ids:
        raise ValueError(f"argument 'meta' was fitted to models {meta.model_ids}, not to {population.ids}")
    from tqdm.auto import tqdm

    models = range(len(population)) if models is None else [int(n) for n in models]
    bad = [n for n in models if not 0 <= n < len(population)]
    if bad:
        raise ValueError(f"argument 'models' must hold indices in [0, {len(population)}), got {bad[:5]}")
    rows = []
    for n in tqdm(models, desc="fidelity", disable=not progress):
        m = population.members[n]
        rows.append({"id": m.id, "arch": m.arch, **topology(meta, population, n, inputs=inputs, n_inits=n_inits,
                                                              seed=seed),
                     "memory": memory(meta, population, n, seed=seed + 12345)})
    return rows


def fidelity_table(rows: List[Dict]) -> List[Dict]:
    """The flat table of the reports: one row per model."""
    table = []
    for r in rows:
        if "unsupported" in r:
            table.append({"id": r["id"], "arch": r["arch"]})
            continue
        b, m, mem = r["base"], r["meta"], r.get("memory") or {}
        row = {"id": r["id"], "arch": r["arch"], "stable base/meta": f"{b['n_stable']}/{m['n_stable']}",
               "saddles base/meta": f"{b['n_saddle_1']}/{m['n_saddle_1']}",
               "slow base/meta": f"{b['n_slow_points']}/{m['n_slow_points']}", "matched": r["n_matched"],
               "max matched dist (rel)": r["max_matched_distance_rel"],
               "leading modulus base/meta": ", ".join(f"{a:.3f}/{c:.3f}" for a, c in r["leading_moduli"][:3])}
        lin = r.get("linearization") or []
        if lin:
            row["leading modulus through A_n"] = ", ".join(f"{p['through_map'][0]['modulus']:.3f}" for p in lin[:3])
            s = r["linearization_summary"]
            row["unseen modes (max count, max modulus)"] = (
                f"{s['max_unseen_count']}, " + ("-" if s["max_unseen_modulus"] is None else f"{s['max_unseen_modulus']:.3f}"))
            row["points off by > 0.03 (full / through A_n)"] = f"{s['n_differ_full']}/{s['n_differ_through_map']}"
        for name in ("silence", "long"):
            if name in mem:
                row[f"{name}: base acc"] = mem[name]["base_accuracy"]
                row[f"{name}: meta acc"] = mem[name]["meta_accuracy"]
        table.append(row)
    return table


def fixed_point_summary(fidelity_rows: list) -> list:
    """Per model: the meta-model's fixed points at theta_n (zero input), by type, from the fidelity rows."""
    rows = []
    for r in fidelity_rows:
        m = r.get("meta")
        if m is not None:
            rows.append({"id": r["id"], "n_fixed_points": m["n_fixed_points"], "n_stable": m["n_stable"],
                         "n_unstable": m["n_fixed_points"] - m["n_stable"], "n_slow_points": m["n_slow_points"]})
    return rows
