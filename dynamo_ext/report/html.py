"""The self-contained HTML report: interactive plotly figures (plotly.js embedded once, so the file
works offline) and the report's tables. Hovering a model shows its id, task, architecture and accuracy."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Dict, List

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from .. import _io
from ..dynamics.attractor_fidelity import fidelity_table
from .schema import Metrics, check_metrics
from .tables import (
    FIDELITY_NOTE,
    fidelity_sample_note,
    REGRESSION_COLUMNS,
    REPARAM_COLUMNS,
    weak_members_note,
    SPREAD_NOTE,
    TESTS_NOTE,
    by_task,
    fmt,
    heatmap_order,
    model_order,
    ari_table,
    baseline_verdicts,
    few_label_columns,
    mark_lines,
    tests_table,
)


def _html_table(rows: List[Dict], cols: List[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r.get(c)))}</td>" for c in cols) + "</tr>"
                   for r in rows)
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _hover(p: Dict, emu: Dict) -> str:
    parts = [f"<b>{p['id']}</b>", f"task: {p.get('task') or '-'}", f"arch: {p['arch']} (h={p['hidden_size']})",
             f"test accuracy: {p['test_accuracy']:.3f}"]
    if "output_agreement" in emu:
        parts.append(f"meta-model agreement: {emu['output_agreement']:.3f}")
    return "<br>".join(parts)


def embedding_figure(metrics: Metrics) -> go.Figure:
    """Scatter of the model embeddings (first two coordinates), one trace per label group."""
    info = {p["id"]: p for p in metrics["population"]}
    emu = {e["id"]: e for e in metrics["emulation"]}
    several_tasks = by_task(metrics)
    groups: Dict[str, List[str]] = {}
    for mid in metrics["embedding"]:
        p = info.get(mid)
        key = "new" if p is None else (f"{p.get('task')} / {p['arch']}" if several_tasks else p["arch"])
        groups.setdefault(key, []).append(mid)
    fig = go.Figure()
    symbols = {"rnn": "circle", "gru": "square", "lstm": "triangle-up"}
    for key, ids in groups.items():
        th = [metrics["embedding"][i] for i in ids]
        fig.add_trace(go.Scatter(
            x=[t[0] for t in th], y=[t[1] if len(t) > 1 else 0.0 for t in th], mode="markers", name=key,
            marker=dict(size=11, line=dict(width=1, color="black"),
                        symbol=symbols.get(info[ids[0]]["arch"], "circle") if ids[0] in info else "x"),
            hovertext=[_hover(info[i], emu.get(i, {})) if i in info else i for i in ids], hoverinfo="text"))
    fig.update_layout(title="DYNAMO model embeddings", xaxis_title="theta 1", yaxis_title="theta 2",
                      width=720, height=560)
    return fig


def distance_figure(metrics: Metrics) -> go.Figure:
    """Heatmaps of every measure's distances, models sorted by task and architecture (a sample of them in
    a large population: ``tables.heatmap_order``)."""
    dists = metrics["baselines"]["distances"]
    order, drawn = heatmap_order(metrics)
    ids = [metrics["population"][i]["id"] for i in order]
    cols = min(len(dists), DISTANCE_COLUMNS)  # wrapped into rows, so that the figure fits the page
    rows = -(-len(dists) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(dists), horizontal_spacing=0.03,
                        vertical_spacing=0.12 / rows)
    for k, d in enumerate(dists.values()):
        r, c = k // cols + 1, k % cols + 1
        m = np.asarray(d, dtype=float)[np.ix_(order, order)]
        fig.add_trace(go.Heatmap(z=np.where(np.isnan(m), None, m).tolist(), x=ids, y=ids, showscale=False,
                                 colorscale="Viridis", hovertemplate="%{y}<br>%{x}<br>%{z:.3f}<extra></extra>"),
                      row=r, col=c)
        fig.update_xaxes(showticklabels=False, row=r, col=c)
        fig.update_yaxes(showticklabels=False, autorange="reversed", row=r, col=c)
    fig.update_layout(title=f"Distances between base models ({drawn})",
                      width=260 * cols, height=90 + 260 * rows)
    return fig


def few_label_figure(metrics: Metrics) -> go.Figure:
    """Test accuracy against labels per class, adapt and from-scratch, per task."""
    rows = metrics["baselines"]["few_labels"]
    fig = go.Figure()
    for task in dict.fromkeys(r["task"] for r in rows):
        sub = [r for r in rows if r["task"] == task]
        ks = [r["n_labelled" if metrics.get("output_kind") == "real" else "labels_per_class"] for r in sub]
        fig.add_trace(go.Scatter(x=ks, y=[r["adapt_accuracy"] for r in sub], mode="lines+markers",
                                 name=f"{task}: adapt (theta only)"))
        fig.add_trace(go.Scatter(x=ks, y=[r["scratch_accuracy"] for r in sub], mode="lines+markers",
                                 line=dict(dash="dash"), name=f"{task}: from scratch"))
    fig.update_layout(title="Few labels: adapt against a base model trained from scratch",
                      xaxis_title="labels per class" if metrics.get("output_kind") != "real" else "labelled sequences",
                      yaxis_title="test accuracy", width=720, height=420)
    ks = sorted({r["n_labelled" if metrics.get("output_kind") == "real" else "labels_per_class"] for r in rows})
    fig.update_xaxes(type="log", tickvals=ks, ticktext=[str(k) for k in ks])  # only the measured counts
    return fig


DISTANCE_COLUMNS = 4  # heatmaps per row of the distance figure (260 px each)
_STYLE = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}"
          "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
          "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
          ".wide{overflow-x:auto;max-width:100%}.marks{color:#b00020}")


def spread_html(metrics: Metrics) -> List[str]:
    """The spread section: the note, the agreement between fits, the per-model spread and the consensus
    distances as a heatmap (plotly.js already on the page)."""
    sp = metrics["spread"]
    reading = "functional" if "functional" in sp["consensus"] else "theta"
    ids = [row["id"] for row in sp["models"]]
    heat = go.Figure(go.Heatmap(z=sp["consensus"][reading], x=ids, y=ids, colorscale="Viridis"))
    heat.update_layout(title=f"Consensus {reading} distances over {sp['n_fits']} fits", height=500, width=600)
    agree = "; ".join(f"{r}: {fmt(a['min'])} (median {fmt(a['median'])})" for r, a in sp["distance_agreement"].items())
    cols = ["id", "theta_spread"] + (["n_stable_min", "n_stable_max"] if "n_stable_min" in sp["models"][0] else [])
    return ["<h2 id='spread'>Spread across fits</h2>",
            f"<p>{html.escape(SPREAD_NOTE.format(k=sp['n_fits'], seeds=sp['seeds']))}</p>",
            f"<p>Distance agreement between fits, {html.escape(agree)}.</p>", _html_table(sp["models"], cols),
            pio.to_html(heat, full_html=False, include_plotlyjs=False)]


def write_html(metrics: Metrics, path: Path) -> Path:
    """Write the self-contained interactive report (plotly.js inlined once) to ``path``, atomically.

    Raises:
        ValueError: metrics of another schema version or missing a section (``schema.check_metrics``).
    """
    metrics = check_metrics(metrics)
    figures = [embedding_figure(metrics)]
    b = metrics.get("baselines") or {}
    if b.get("distances"):
        figures.append(distance_figure(metrics))
    if b.get("few_labels"):
        figures.append(few_label_figure(metrics))
    divs = [pio.to_html(f, full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figures)]
    emu = {e["id"]: e for e in metrics["emulation"]}
    marks = metrics.get("marks") or {}
    pop_rows = [{**p, **emu.get(p["id"], {}), "marks": ", ".join(marks.get(p["id"], [])) or "-"}
                for p in metrics["population"]]
    parts = [f"<h1>DYNAMO report: {html.escape(str(metrics.get('task', '')))}</h1>",
             "<p>Meta-model fitted with dynamo_ext (DYNAMO, Cotler et al., arXiv:2302.14078). "
             "Hover a model to see its label, architecture and accuracy.</p>", divs[0]]
    if metrics.get("marks"):
        parts += ["<h2>Marks: readings that cannot be trusted as they stand</h2>",
                  "<ul class='marks' id='marks'>" + "".join(f"<li>{html.escape(line)}</li>"
                                                          for line in mark_lines(metrics)) + "</ul>"]
    if metrics.get("spread"):
        parts += spread_html(metrics)
    if b.get("clustering"):
        table, cols = ari_table(metrics)
        verdicts = "".join(f"<li>{html.escape(v[2:])}</li>" for v in baseline_verdicts(metrics))
        parts += ["<h2>Clustering ARI: DYNAMO beside the baselines</h2>", _html_table(table, cols),
                  f"<ul>{verdicts}</ul>", divs[1]]
    if b.get("tests"):
        table, cols = tests_table(metrics)
        parts += ["<h2>Tests: do the groups differ on each measure?</h2>", f"<p>{html.escape(TESTS_NOTE)}</p>",
                  _html_table(table, cols)]
    if b.get("few_labels"):
        parts += ["<h2>Few labels</h2>", divs[-1],
                  _html_table(b["few_labels"], few_label_columns(metrics))]
    if b.get("reparameterization"):
        parts += ["<h2>Reparameterization check</h2><p>Per measure: the fraction of function-preserving copies "
                  "(units permuted, sign-flipped for tanh, rescaled for ReLU) whose nearest neighbour is their "
                  "original, and the copy-to-original distance over the median distance between originals.</p>",
                  _html_table(b["reparameterization"]["rows"], REPARAM_COLUMNS)]
    if metrics.get("fidelity"):
        table = fidelity_table(metrics["fidelity"])
        note = FIDELITY_NOTE + (" " + fidelity_sample_note(metrics["fidelity_sample"])
                                if metrics.get("fidelity_sample") else "")
        parts += ["<h2>Dynamical fidelity</h2>", f"<p>{html.escape(note)}</p>",
                  _html_table(table, list(dict.fromkeys(k for r in table for k in r)))]
    parts += ["<h2>Averaging</h2>",
              _html_table([{**r, "members": len(r["members"])} for r in metrics["averaging"]],
                          ["label", "members", "member_mean_accuracy", "averaged_accuracy",
                           "naive_weight_average_accuracy", "ensemble_accuracy"]),
              "<h2>Population and emulation</h2>",
              "".join(f"<p>{html.escape(note)}</p>" for note in [weak_members_note(metrics)] if note),
              _html_table(pop_rows, ["id", "task", "arch", "hidden_size", "test_accuracy", "output_agreement",
                                     "hidden_r2", "meta_test_accuracy"]
                          + (REGRESSION_COLUMNS if metrics.get("output_kind") == "real" else []) + ["marks"])]
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>DYNAMO report</title>"
           f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>")
    _io.write_text(path, doc)
    return Path(path)
