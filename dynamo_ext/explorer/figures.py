"""The explorer's plotly figures, drawn from the Explorer's JSON-ready answers.

The embedding plane (models coloured by a label, a grid of invisible points that catch a click
anywhere, the two selections), fixed points with trajectories in a principal-component plane, outputs
over time, and fixed points by type along a path.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import plotly.graph_objects as go

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
GRID = 41  # grid points per axis that catch clicks away from the models
SELECTION = {"A": "#000000", "B": "#d62728"}
WEBGL_MODELS = 500  # past this many models the plane draws them with WebGL (Scattergl), smaller and unedged


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 340) -> go.Figure:
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=height, margin=dict(l=40, r=10, t=36, b=36),
                      xaxis_title=x, yaxis_title=y, legend=dict(font=dict(size=10)), template="plotly_white")
    return fig


def plane_figure(plane: Dict, color_by: str, selections: Dict[str, Optional[Dict]], drawing: bool = False) -> go.Figure:
    """Models as points colored by ``color_by`` (hover: id, labels, emulation; WebGL past
    ``WEBGL_MODELS`` models), the click grid (theta planes only) and the selections A and B."""
    fig = go.Figure()
    xs = [p[0] for p in plane["xy"]]
    ys = [p[1] for p in plane["xy"]]
    if plane["kind"] == "theta":  # invisible points over the whole plane: a click anywhere has a theta
        pad_x, pad_y = (max(xs) - min(xs)) * 0.35 + 0.1, (max(ys) - min(ys)) * 0.35 + 0.1
        gx = [min(xs) - pad_x + i * (max(xs) - min(xs) + 2 * pad_x) / (GRID - 1) for i in range(GRID)]
        gy = [min(ys) - pad_y + j * (max(ys) - min(ys) + 2 * pad_y) / (GRID - 1) for j in range(GRID)]
        fig.add_trace(go.Scatter(x=[a for a in gx for _ in gy], y=[b for _ in gx for b in gy], mode="markers",
                                 marker=dict(size=9, opacity=0), hovertemplate="theta (%{x:.3f}, %{y:.3f})<extra></extra>",
                                 name="grid", showlegend=False))
    if plane.get("spread"):  # a segment from each model to where every other fit puts it
        sx, sy = [], []
        for (x0, y0), points in zip(plane["xy"], plane["spread"]["xy"]):
            for x1, y1 in points:
                sx += [x0, x1, None]
                sy += [y0, y1, None]
        fig.add_trace(go.Scatter(x=sx, y=sy, mode="lines+markers", name="spread across fits", hoverinfo="skip",
                                 line=dict(color="#999", width=1), marker=dict(size=4, color="#999")))
    values = [str(v) for v in plane["labels"][color_by]]
    many = len(xs) > WEBGL_MODELS
    scatter = go.Scattergl if many else go.Scatter
    for k, value in enumerate(dict.fromkeys(values)):
        idx = [i for i, v in enumerate(values) if v == value]
        fig.add_trace(scatter(
            x=[xs[i] for i in idx], y=[ys[i] for i in idx], mode="markers", name=f"{color_by} {value}",
            marker=dict(size=5 if many else 12, color=COLORS[k % len(COLORS)],
                        line=dict(width=0 if many else 1, color="#333")),
            customdata=[plane["ids"][i] for i in idx],
            text=[f"{plane['ids'][i]}<br>hidden R² {plane['hidden_r2'][i]:.3f}<br>output agreement "
                  f"{plane['output_agreement'][i]:.3f}"
                  + (f"<br>theta spread over fits {plane['spread']['theta_spread'][i]:.2f} NN distances"
                     if plane.get("spread") else "") for i in idx],
            hovertemplate="%{text}<extra></extra>"))
    for name, sel in selections.items():
        if sel and sel.get("plane") is not None:
            fig.add_trace(go.Scatter(x=[sel["plane"][0]], y=[sel["plane"][1]], mode="markers+text", text=[name],
                                     textposition="top right", name=f"selection {name}", hoverinfo="skip",
                                     marker=dict(size=18, symbol="circle-open", color=SELECTION[name],
                                                 line=dict(width=2))))
    _layout(fig, "Model embedding: click a model or anywhere", *plane["axes"], height=460)
    fig.update_layout(dragmode="drawline" if drawing else "zoom", clickmode="event", hovermode="closest",
                      newshape=dict(line=dict(color="#d62728", width=2)), uirevision=plane["kind"])
    return fig


def points_figure(points: List, stable: List[bool], trajectories: List, title: str,
                  meta_points: Optional[List] = None) -> go.Figure:
    """Trajectories (grey) and fixed points in a principal-component plane: stable filled black, unstable
    open red; ``meta_points`` (drill-down) as red crosses."""
    fig = go.Figure()
    for t in trajectories:
        fig.add_trace(go.Scatter(x=[p[0] for p in t], y=[p[1] for p in t], mode="lines", showlegend=False,
                                 line=dict(color="#c8c8c8", width=1), hoverinfo="skip"))
    for label, keep, style in (("stable" if meta_points is None else "base model, stable", True,
                                dict(color="black", size=9)),
                               ("unstable", False, dict(color="#d62728", size=9, symbol="circle-open"))):
        sel = [p for p, s in zip(points, stable) if s == keep]
        if sel:
            fig.add_trace(go.Scatter(x=[p[0] for p in sel], y=[p[1] for p in sel], mode="markers", name=label,
                                     marker=style))
    if meta_points:
        fig.add_trace(go.Scatter(x=[p[0] for p in meta_points], y=[p[1] for p in meta_points], mode="markers",
                                 name="meta-model at theta_n, stable, through A_n",
                                 marker=dict(color="#d62728", size=11, symbol="x")))
    return _layout(fig, title, "PC 1", "PC 2")


def outputs_figure(outputs: List[List[float]], title: str) -> go.Figure:
    """The outputs [T, C] on the first probe sequence, one line per output."""
    fig = go.Figure()
    for c in range(len(outputs[0]) if outputs else 0):
        fig.add_trace(go.Scatter(y=[row[c] for row in outputs], mode="lines", name=f"output {c}"))
    return _layout(fig, title, "step", "output", height=260)


def scan_figure(rows: List[Dict]) -> go.Figure:
    """Fixed points by type at each theta along a path."""
    fig = go.Figure()
    for key, name in (("n_stable", "stable"), ("n_saddle_1", "1 unstable direction"),
                      ("n_unstable_more", "more unstable directions"), ("n_slow_points", "slow points")):
        fig.add_trace(go.Scatter(x=[r["index"] for r in rows], y=[r[key] for r in rows], mode="lines+markers",
                                 name=name))
    return _layout(fig, "Fixed points along the path", "position on the path", "count", height=300)
