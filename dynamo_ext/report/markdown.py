"""The Markdown report of an analysis (report.md), its figures and the HTML page beside it."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

from .. import _io
from .schema import Metrics, check_metrics
from .figures import plot_distance_matrices, plot_embedding, plot_few_labels, plot_loss, plot_spread
from .tables import (
    REGRESSION_COLUMNS,
    baseline_markdown,
    by_task,
    fidelity_markdown,
    fmt,
    markdown_table,
    marks_markdown,
    spread_markdown,
    weak_members_note,
)

REPORT_FILES = ("metrics.json", "report.md")  # the files that mark a folder as holding a report


def write_report(metrics: Metrics, folder: Path, history: Optional[Dict] = None) -> List[Path]:
    """Write metrics.json, report.md, report.html and the figures (embedding.png, loss.png with a
    history, distances.png and few_labels.png with a baselines section) into ``folder``.

    Raises:
        ValueError: metrics of another schema version or missing a section (``schema.check_metrics``).
    """
    metrics = check_metrics(metrics)
    folder = Path(folder)
    written = _write_figures(metrics, folder, history)
    md = _population_section(metrics) + _averaging_and_clustering(metrics) + spread_markdown(metrics)
    if metrics.get("baselines"):
        md += baseline_markdown(metrics)
        for sk in metrics["baselines"].get("skipped", []):
            md += [f"Measure {sk['measure']} skipped: {sk['why']}.", ""]
    md += _dynamics_section(metrics)
    if history:
        md += ["## Fitting", "", "![loss](loss.png)", ""]
    md += ["## Timing (s)", "", markdown_table([metrics.get("timing_s", {})], list(metrics.get("timing_s", {}))), ""]
    _io.write_json(folder / "metrics.json", metrics)
    _io.write_text(folder / "report.md", "\n".join(md))
    from .html import write_html

    write_html(metrics, folder / "report.html")
    return written + [folder / "metrics.json", folder / "report.md", folder / "report.html"]


def _write_figures(metrics: Metrics, folder: Path, history: Optional[Dict]) -> List[Path]:
    figures = {"embedding.png": plot_embedding}
    if history:
        figures["loss.png"] = lambda _, path: plot_loss(history, path)
    if metrics.get("baselines"):
        figures["distances.png"] = plot_distance_matrices
        if metrics["baselines"].get("few_labels"):
            figures["few_labels.png"] = plot_few_labels
    if metrics.get("spread"):
        figures["spread.png"] = plot_spread
    for name, draw in figures.items():
        draw(metrics, folder / name)
    return [folder / name for name in figures]


def _population_section(metrics: Metrics) -> List[str]:
    emu = {e["id"]: e for e in metrics["emulation"]}
    marks = metrics.get("marks") or {}
    rows = [{**p, **emu.get(p["id"], {}), "marks": ", ".join(marks.get(p["id"], [])) or "-"}
            for p in metrics["population"]]
    task_col = ["task"] if by_task(metrics) else []
    return [
        f"# DYNAMO report: {metrics.get('task', '')}",
        "",
        "Meta-model fitted with dynamo_ext (DYNAMO, Cotler et al., arXiv:2302.14078).",
        "",
        "## Population and emulation (test inputs)",
        "",
        "output_agreement: fraction of test inputs where the meta-model at theta_n and base model n "
        "give the same class at the last step (same sign, for real outputs); hidden_r2: R^2 of A_n z "
        + ("against the base hidden states." if metrics.get("family", "rnn") == "rnn" else
           "against the base CNN's pooled layer activations (every layer; the meta-CNN's A^n_l per layer). "
           "arch is the activation, hidden_size the width."),
        "",
        markdown_table(rows, ["id", *task_col, "arch", "hidden_size", "seed", "test_accuracy", "output_agreement",
                      "hidden_r2", "meta_test_accuracy"]
               + (REGRESSION_COLUMNS if metrics.get("output_kind") == "real" else []) + ["marks"]),
        "",
        *[line for note in [weak_members_note(metrics)] if note for line in (note, "")],
        *marks_markdown(metrics),
    ]


def _averaging_and_clustering(metrics: Metrics) -> List[str]:
    c = metrics["clustering"]
    return [
        "## Averaging",
        "",
        "averaged: the meta-model at the members' mean embedding; naive weights: the parameter-wise mean "
        "of the members (only where they share one size); ensemble: their mean output probabilities.",
        "",
        markdown_table([{**r, "members": len(r["members"])} for r in metrics["averaging"]],
               ["label", "members", "member_mean_accuracy", "averaged_accuracy",
                "naive_weight_average_accuracy", "ensemble_accuracy"]),
        "",
        f"## Clustering of the embeddings (k-means, k = {c['k']}, labels: {c['labels_by']})",
        "",
        f"ARI {fmt(c['ari'])}, NMI {fmt(c['nmi'])}, silhouette {fmt(c['silhouette'])}.",
        "",
        "![embedding](embedding.png)",
        "",
    ]


def _dynamics_section(metrics: Metrics) -> List[str]:
    """Fixed points, fidelity, the attractor figures and the embedding scan, where the metrics hold them."""
    md = []
    if metrics.get("fixed_points"):
        md += ["## Fixed points of the meta-model (zero input, at each theta_n)", "",
               markdown_table(metrics["fixed_points"], ["id", "n_fixed_points", "n_stable", "n_unstable", "n_slow_points"]),
               ""]
    if metrics.get("fidelity"):
        md += fidelity_markdown(metrics["fidelity"], metrics.get("fidelity_sample"))
    for fig in metrics.get("attractor_figures", []):
        md += [f"![attractors of {fig['id']}]({fig['file']})", ""]
    if metrics.get("scan"):
        md += _scan_section(metrics["scan"])
    return md


def _scan_section(sc: Dict) -> List[str]:
    lost, changed, last = sc["attractors_lost_at"], sc.get("count_changes_at"), len(sc["rows"]) - 1
    start = sc["rows"][0]["n_stable"]
    where = (f"The number of stable points ({start} at the start) first changes at scan point {changed} "
             f"(fraction {changed / last:.2f} of the way) to {sc['rows'][changed]['n_stable']}; "
             if changed is not None else f"The number of stable points stays {start} along the whole path; ")
    where += (f"it first drops below {start} at scan point {lost}." if lost is not None
              else f"it never drops below {start}.")
    return [f"## Embedding scan from {sc['start']} to {sc['end']} (zero input)", "",
            f"Stable fixed points of the meta-model on the straight line between the two embeddings "
            f"({len(sc['rows'])} points). " + where,
            "", markdown_table(sc["rows"], ["index", "n_stable", "n_saddle_1", "n_unstable_more", "n_slow_points"]), "",
            f"![bifurcation]({sc['file']})", ""]
