"""The report's tables and verdicts, shared by the Markdown and the HTML report.

Which measure wins per label set and clustering method, the ARI table, the
columns of each table, and the fidelity note (what the fixed-point columns
mean).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from ..compare.registry import REGISTRY, measure_names
from ..dynamics.attractor_fidelity import fidelity_table
from .schema import Metrics


def _is_dynamo(name: str) -> bool:
    return name in REGISTRY and REGISTRY[name].dynamo


def measures_note(names) -> str:
    """Each measure of a table with what it is, from the registry (a name it lacks, as it is)."""
    return "; ".join(f"{n} ({REGISTRY[n].description})" if n in REGISTRY else n for n in names)


def by_task(metrics: Metrics) -> bool:
    return len({p.get("task", "") for p in metrics["population"]}) > 1


def model_order(metrics: Metrics) -> List[int]:
    """Model indices sorted by (task, architecture, id), so that groups show as blocks."""
    pop = metrics["population"]
    return sorted(range(len(pop)), key=lambda i: (pop[i].get("task", ""), pop[i]["arch"], pop[i]["id"]))


HEATMAP_MODELS = 400  # models per side of a drawn distance matrix; larger populations are sampled


def heatmap_order(metrics: Metrics, max_models: int = HEATMAP_MODELS) -> Tuple[List[int], str]:
    """The models a distance heatmap draws, in ``model_order``, and the title's words for them: every
    model up to ``max_models``; past it, ``max_models`` evenly spaced in that order (each task and
    architecture keeps its share of the rows), said so."""
    order = model_order(metrics)
    n = len(order)
    if n <= max_models:
        return order, "sorted by task, architecture"
    picked = [order[int(i)] for i in np.linspace(0, n - 1, max_models).round().astype(int)]
    return picked, (f"{max_models} of {n} models, evenly spaced in the order sorted by task and architecture")


def few_label_columns(metrics: Metrics) -> List[str]:
    """The few-label table's columns: labels per class for classes, labelled sequences for real outputs."""
    per_class = [] if metrics.get("output_kind") == "real" else ["labels_per_class"]
    return ["task", *per_class, "n_labelled", "adapt_accuracy", "scratch_accuracy"]


def fmt(v) -> str:
    """A table cell: "-" for what could not be computed (None, NaN)."""
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


# real outputs: R^2 and MSE beside the sign agreement (dynamo_ext.meta.evaluate)
REGRESSION_COLUMNS = ["output_r2", "base_target_r2", "meta_target_r2", "base_target_mse", "meta_target_mse"]


def markdown_table(rows: List[Dict], cols: List[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(out)


REPARAM_COLUMNS = ["measure", "copies", "nearest_is_original", "copy_to_original_rel", "copy_to_original_rel_max"]


def baseline_verdicts(metrics: Metrics) -> List[str]:
    """Per label set and method: who wins, and every measure whose clustering beats DYNAMO's best
    reading (theta or functional distance; higher ARI), with the numbers."""
    rows = metrics["baselines"]["clustering"]
    out = []
    for by in dict.fromkeys(r["labels_by"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows):
            sub = {r["measure"]: r for r in rows if r["labels_by"] == by and r["method"] == method}
            readings = [m for m in measure_names(dynamo=True) if m in sub and sub[m]["ari"] is not None]
            if not readings:
                continue
            best = max(readings, key=lambda m: sub[m]["ari"])
            ours = sub[best]["ari"]
            scored = {m: r["ari"] for m, r in sub.items() if r["ari"] is not None}
            top = max(scored.values())
            winners = ", ".join(m for m, a in scored.items() if a >= top - 1e-9)
            better = [f"{m} ({r['ari']:.3f})" for m, r in sub.items()
                      if not _is_dynamo(m) and r["ari"] is not None and r["ari"] > ours + 1e-9]
            head = f"- By {by} ({method}): wins: {winners} ({top:.3f}). DYNAMO's best reading, {best}, {ours:.3f}"
            out.append(head + (" is below " + ", ".join(better) + "." if better else " is the highest or tied."))
    return out


def ari_table(metrics: Metrics):
    """The clustering comparison as (rows, columns): one row per measure, one column
    "<labels_by>/<method>" per label set and method, holding the ARI."""
    rows = metrics["baselines"]["clustering"]
    cols = list(dict.fromkeys(f"{r['labels_by']}/{r['method']}" for r in rows))
    table = {m: {"measure": m} for m in dict.fromkeys(r["measure"] for r in rows)}
    for r in rows:
        table[r["measure"]][f"{r['labels_by']}/{r['method']}"] = r["ari"]
    return list(table.values()), ["measure", *cols]


TESTS_NOTE = ("PERMANOVA (Anderson 2001) of each label set on each measure's distances: p (label permutations), "
              "R2 (the share of the distances' sum of squares the labels explain) and disp p (PERMDISP, Anderson "
              "2006: do the groups differ in spread? a PERMANOVA rejection with a small disp p may be a difference "
              "in spread, not in location). A measure that sees nuisances (hidden size, scale, embedding) rejects "
              "labels that differ in them only.")


MARK_NOTES = {
    "below quality threshold": "held-out hidden R^2 below {threshold}: the meta-model does not emulate this model "
                               "well, and every reading at its theta stands for that poor emulation (left out of "
                               "the tests)",
    "unseen slow mode": "at one of its attractors the meta-model has a mode the map A_n does not read that is "
                        "slower than every mode the map reads: a fixed-point analysis of the meta-model there "
                        "reports a slow direction this model does not have (read the leading modulus through A_n)",
}


def mark_lines(metrics: Metrics) -> List[str]:
    """One line per marked model: its id, its marks and what each means (``dynamics.marks``)."""
    threshold = metrics.get("quality_threshold")
    return [f"{mid}: " + "; ".join(f"{m} ({MARK_NOTES.get(m, '').format(threshold=threshold)})" for m in marks)
            for mid, marks in (metrics.get("marks") or {}).items()]


def weak_members_note(metrics: Metrics) -> str:
    """A sentence naming the base models whose test accuracy is under half the best member's of their task
    (a population may hold networks that learnt their task poorly), and how to read them; "" if none."""
    pop = [p for p in metrics["population"] if p.get("test_accuracy") is not None]
    best = {}
    for p in pop:
        best[p.get("task", "")] = max(best.get(p.get("task", ""), 0.0), p["test_accuracy"])
    weak = [p for p in pop if p["test_accuracy"] < 0.5 * best[p.get("task", "")]]
    if not weak:
        return ""
    listed = ", ".join(f"{p['id']} ({p['test_accuracy']:.2f})" for p in weak)
    return (f"{len(weak)} of {len(pop)} base models learnt their task poorly (test accuracy under half the best "
            f"member's of their task): {listed}. They stay in the population: the meta-model emulates what a "
            f"network computes whether or not it solves the task, so their emulation is read as for any other; "
            f"averages over groups that hold them are bounded by their members' accuracy.")


def marks_markdown(metrics: Metrics) -> List[str]:
    lines = mark_lines(metrics)
    if not lines:
        return []
    return ["## Marks: readings that cannot be trusted as they stand", "",
            f"{len(lines)} of {len(metrics['population'])} models are marked.", "",
            *[f"- **{line.split(':', 1)[0]}**:{line.split(':', 1)[1]}" for line in lines], ""]


def tests_table(metrics: Metrics):
    """(rows, columns): one row per measure, p, R2 and disp p of every label set side by side."""
    rows = metrics.get("baselines", {}).get("tests") or []
    table = {m: {"measure": m} for m in dict.fromkeys(r["measure"] for r in rows)}
    cols = []
    for r in rows:
        keys = [f"{r['labels']} p", f"{r['labels']} R2", f"{r['labels']} disp p"]
        cols += [k for k in keys if k not in cols]
        vals = ([r["p_value"], r["r2"], r["dispersion_p_value"]] if "why" not in r else ["n/a"] * 3)
        table[r["measure"]].update(zip(keys, vals))
    return list(table.values()), ["measure", *cols]


def tests_markdown(metrics: Metrics) -> List[str]:
    rows = metrics.get("baselines", {}).get("tests") or []
    if not rows:
        return []
    table, cols = tests_table(metrics)
    n_perm = next((r["n_permutations"] for r in rows if "n_permutations" in r), None)
    excluded = rows[0].get("excluded") or []
    note = TESTS_NOTE + (f" {n_perm} permutations." if n_perm else "") + (
        f" Left out (below the quality threshold): {', '.join(excluded)}." if excluded else "")
    return ["## Tests: do the groups differ on each measure?", "", note, "", markdown_table(table, cols), ""]


def baseline_markdown(metrics: Metrics) -> List[str]:
    b = metrics["baselines"]
    table, cols = ari_table(metrics)
    md = ["## DYNAMO beside the baselines", "",
          "ARI of each measure's clustering (k = number of labels; k-means on classical MDS of the distances, "
          "or agglomerative with average linkage) against the task and architecture labels. Measures: "
          + measures_note(b["distances"]) + "."
          + (" DSA's settings: " + ", ".join(f"{k} {v}" for k, v in b["dsa_settings"].items()) + "."
             if b.get("dsa_settings") else "")
          + " Sources: dynamo_ext.compare.registry.", "",
          markdown_table(table, cols), "", *baseline_verdicts(metrics), "",
          "![distances](distances.png)", "", *tests_markdown(metrics)]
    if b.get("few_labels"):
        real = metrics.get("output_kind") == "real"
        md += ["## Few labels: adapt (theta only) against a base model from scratch", "",
               *(["n_labelled: labelled sequences (targets at every step).", ""] if real else []),
               markdown_table(b["few_labels"], few_label_columns(metrics)), "", "![few labels](few_labels.png)", ""]
    if b.get("reparameterization"):
        md += ["## Reparameterization check", "",
               "Each base model has a function-preserving copy (hidden units permuted, sign-flipped for tanh "
               "units, or rescaled per unit for ReLU units); per measure, the fraction of copies whose nearest "
               "neighbour is their original, and the distance from a copy to its original over the median "
               "distance between originals (mean and max over copies; 0 means blind to the change):", "",
               markdown_table(b["reparameterization"]["rows"], REPARAM_COLUMNS), ""]
    return md


FIDELITY_NOTE = (
    "Base model n and the meta-model at theta_n, same rule for both: fixed points at one constant input (zero, "
    "unless metrics.json names fixed_point_input) from the same "
    "number of starts, by number of unstable directions; stable points matched one to one through A_n "
    "(linear_sum_assignment), the largest matched distance over the median distance between the base's stable "
    "points; leading |eigenvalue| of dcell/dz of matched pairs. The meta-model's Jacobian is read two ways: in "
    "full (as a fixed-point analysis of the meta-model reads it) and through the map, A_n J A_n^+ (the dynamics "
    "of the directions A_n sees, in the base model's coordinates, the reading to hold beside the base's); "
    "unseen modes are eigenvectors of J that A_n maps to under 0.25 of its norm, harmless for the emulation "
    "but read as slow manifolds when slow. Memory (pulse tasks): task accuracy on fresh "
    "sequences of one probe length of pulses then 10 probe lengths of zero input (silent steps scored), and on "
    "pulse sequences 10 probe lengths long.")


def fidelity_markdown(rows: List[Dict], sample: Optional[Dict] = None) -> List[str]:
    table = fidelity_table(rows)
    cols = list(dict.fromkeys(k for r in table for k in r))
    return ["## Dynamical fidelity: the meta-model's attractors and memory beside each base model's", "",
            FIDELITY_NOTE + ("" if not sample else " " + fidelity_sample_note(sample)), "",
            markdown_table(table, cols), ""]


def fidelity_sample_note(sample: Dict) -> str:
    """What the fidelity section's rows cover when the time budget sampled the models."""
    return f"Rows for {sample['models']} of {sample['of']} models: {sample['why']}."


SPREAD_NOTE = ("Every reading of {k} meta-models fitted from seeds {seeds} to the same recording. Agreement: the "
               "rank correlation of two fits' distance matrices (smallest and median over pairs of fits); the "
               "clusterings' ARI between fits; theta spread: a model's aligned embeddings (affine alignment: theta "
               "is identified only up to an affine map) about their mean, in median nearest-neighbour distances "
               "(1: as far as the next model); stable points: the meta-model's at theta_n in each fit (min-max).")


def spread_markdown(metrics: Metrics) -> List[str]:
    sp = metrics.get("spread")
    if not sp:
        return []
    agree = "; ".join(f"{r}: {fmt(a['min'])} (median {fmt(a['median'])})" for r, a in sp["distance_agreement"].items())
    md = ["## Spread across fits", "", SPREAD_NOTE.format(k=sp["n_fits"], seeds=sp["seeds"]), "",
          f"Distance agreement between fits, {agree}."]
    if "cluster_ari" in sp:
        md += [f"Clusterings (k = {sp['cluster_ari']['k']}) between fits: ARI {fmt(sp['cluster_ari']['min'])} "
               f"(median {fmt(sp['cluster_ari']['median'])}); against the labels: each fit "
               + ", ".join(fmt(a) for a in sp["cluster_ari_truth"])
               + f"; the consensus clustering (Monti et al. 2003) {fmt(sp['consensus_ari_truth'])}."]
    if sp.get("averaged_accuracy"):
        md += ["Averaged networks' task accuracy over the fits (min-max): " + "; ".join(
            f"{g} {fmt(a['min'])}-{fmt(a['max'])}" for g, a in sp["averaged_accuracy"].items()) + "."]
    cols = ["id", "theta_spread"] + (["n_stable_min", "n_stable_max"] if "n_stable_min" in sp["models"][0] else [])
    md += ["", markdown_table(sp["models"], cols), ""]
    tests = [r for r in sp.get("tests", []) if "why" not in r]
    if tests:
        md += ["DYNAMO's group tests on the consensus and on each fit:", "",
               markdown_table([{**r, "per_fit_p_values": ", ".join(fmt(p) for p in r["per_fit_p_values"])}
                               for r in tests], ["labels", "reading", "consensus_p_value", "consensus_r2",
                                                 "per_fit_p_values"]), ""]
    return md + ["![spread](spread.png)", ""]
