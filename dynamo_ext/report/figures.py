"""The analysis's figures (matplotlib): embedding, distances, few labels, loss, fixed points.

Every ``plot_*`` draws into the caller's ``ax`` (an Axes, or a sequence of Axes for the figures of
several panels) or, without one, into a new ``matplotlib.figure.Figure``; it returns the Figure and
saves it as PNG when a ``path`` is given. Figures are built without pyplot, so drawing never changes
matplotlib's backend nor the figures a notebook shows.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import matplotlib
from matplotlib.figure import Figure

from .._figures import axes_for, finish
from ..dynamics.plots import plot_bifurcation, plot_fixed_points  # noqa: F401 (the report's figures too)
from .schema import Metrics
from .tables import by_task, heatmap_order

ARCH_COLORS = {"rnn": "tab:blue", "gru": "tab:orange", "lstm": "tab:green",  # RNNs; CNNs by activation:
                "relu": "tab:red", "tanh": "tab:purple", "gelu": "tab:brown"}


MARKERS = {"rnn": "o", "gru": "s", "lstm": "^"}
TASK_COLORS = ("tab:purple", "tab:red", "tab:cyan", "tab:olive", "tab:brown", "tab:pink")


ANNOTATED_MODELS = 200  # the embedding plot labels each point with its accuracy up to this many models


def plot_embedding(metrics: Metrics, path: Optional[Path] = None, *, ax=None) -> Figure:
    """Model embeddings (first two coordinates), annotated with test accuracy up to ``ANNOTATED_MODELS``
    models (past it, small points and no labels, said in the title). Single task: colored by
    architecture, stars at each architecture's averaged embedding. Several tasks: colored by task,
    marker by architecture. One scatter call per group, so 10,000 models draw in about a second."""
    fig, (ax,) = axes_for(ax, (6, 5))
    info = {p["id"]: p for p in metrics["population"]}
    several_tasks = by_task(metrics)
    tasks = sorted({p.get("task", "") for p in metrics["population"]})
    groups = {}  # (label, color, marker) -> [x], [y], [accuracy]
    for mid, theta in metrics["embedding"].items():
        p = info.get(mid, {"arch": "new", "test_accuracy": float("nan")})
        if several_tasks:
            color = TASK_COLORS[tasks.index(p["task"]) % len(TASK_COLORS)] if "task" in p else "tab:gray"
            label = f"{p.get('task', 'new')} / {p['arch']}"
        else:
            color, label = ARCH_COLORS.get(p["arch"], "tab:gray"), p["arch"]
        g = groups.setdefault((label, color, MARKERS.get(p["arch"], "o") if several_tasks else "o"), ([], [], []))
        g[0].append(theta[0])
        g[1].append(theta[1] if len(theta) > 1 else 0.0)
        g[2].append(p["test_accuracy"])
    many = len(metrics["embedding"]) > ANNOTATED_MODELS
    for (label, color, marker), (xs, ys, accs) in groups.items():
        ax.scatter(xs, ys, c=color, marker=marker, s=6 if many else 60, label=label,
                   edgecolors="none" if many else "k", alpha=0.6 if many else 1.0)
        for x, y, acc in ([] if many else zip(xs, ys, accs)):
            ax.annotate(f"{acc:.2f}" if acc is not None else "", (x, y), textcoords="offset points", xytext=(5, 4),
                        fontsize=7)
    for row in metrics.get("averaging", []):
        if row["label"] in ARCH_COLORS:
            tb = row["theta_bar"]
            ax.scatter(tb[0], tb[1] if len(tb) > 1 else 0.0, marker="*", s=220, c=ARCH_COLORS[row["label"]],
                       edgecolors="k", label=f"mean {row['label']} ({row['averaged_accuracy']:.2f})")
    ax.set_xlabel(r"$\theta_1$")
    ax.set_ylabel(r"$\theta_2$")
    ax.set_title("DYNAMO model embeddings" + (f" ({len(metrics['embedding'])} models)" if many
                                               else " (labels: base test accuracy)"))
    ax.legend(fontsize=7)
    return finish(fig, path)


def plot_distance_matrices(metrics: Metrics, path: Optional[Path] = None, *, ax: Optional[Sequence] = None) -> Figure:
    """Every measure's distance matrix side by side (models sorted by task and architecture, a sample of
    them in a large population: ``tables.heatmap_order``; grey: pairs the measure cannot compare)."""
    import numpy as np

    dists = metrics["baselines"]["distances"]
    order, drawn = heatmap_order(metrics)
    fig, axes = axes_for(ax, (3.2 * len(dists), 3.4), len(dists))
    own = ax is None
    for ax, (name, d) in zip(axes, dists.items()):
        m = np.asarray(d, dtype=float)[np.ix_(order, order)]
        ax.imshow(np.ma.masked_invalid(m), cmap=matplotlib.colormaps["viridis"].with_extremes(bad="0.8"))
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if own:
        fig.suptitle(f"Distances between base models ({drawn})", fontsize=10)
    return finish(fig, path)


def plot_few_labels(metrics: Metrics, path: Optional[Path] = None, *, ax: Optional[Sequence] = None) -> Figure:
    """Test accuracy against labels per class: adapt (theta only) and a base model from scratch."""
    rows = metrics["baselines"]["few_labels"]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = axes_for(ax, (4.2 * len(tasks), 3.4), len(tasks))
    for ax, task in zip(axes, tasks):
        sub = [r for r in rows if r["task"] == task]
        ks = [r["n_labelled" if metrics.get("output_kind") == "real" else "labels_per_class"] for r in sub]
        ax.plot(ks, [r["adapt_accuracy"] for r in sub], "o-", label="adapt (theta only)")
        ax.plot(ks, [r["scratch_accuracy"] for r in sub], "s--", label="from scratch")
        ax.set_xscale("log")
        ax.set_xlabel("labels per class" if metrics.get("output_kind", "classes") == "classes"
                      else "labelled sequences")
        ax.set_ylabel("test accuracy")
        ax.set_title(task)
        ax.legend(fontsize=8)
    return finish(fig, path)


def plot_loss(history: Dict[str, List[float]], path: Optional[Path] = None, *, ax=None) -> Figure:
    """The fitting loss and its terms per step (log scale)."""
    fig, (ax,) = axes_for(ax, (6, 4))
    for key in ("loss", "loss_h", "loss_y", "loss_theta"):
        if history.get(key):
            ax.plot(history[key], label=key, lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Meta-model fitting loss")
    ax.legend()
    return finish(fig, path)


def plot_attractors(points: Dict, path: Optional[Path] = None, title: str = "Stable fixed points", *,
                    ax=None) -> Figure:
    """Stable fixed points of a base model (black dots) and of the meta-model at its theta_n, mapped
    through A_n (red crosses), on the first two principal components of the base model's
    trajectories (grey; ``fidelity.topology(..., return_points=True)["points"]``)."""
    import torch

    traj = points["trajectories"].detach().double()
    flat = traj.reshape(-1, traj.shape[-1])
    mean = flat.mean(0)
    basis = torch.linalg.svd(flat - mean, full_matrices=False)[2][:2].T
    fig, (ax,) = axes_for(ax, (5, 4.6))
    for t in traj[:12]:
        p = (t - mean) @ basis
        ax.plot(p[:, 0], p[:, 1], color="0.82", lw=0.5, zorder=1)
    for key, style in (("base", dict(c="k", s=46, marker="o", label="base model")),
                       ("meta", dict(c="tab:red", s=60, marker="x", label="meta-model at theta_n"))):
        if len(points[key]):
            p = (points[key].double() - mean) @ basis
            ax.scatter(p[:, 0], p[:, 1], zorder=3, **style)
    ax.set_xlabel("PC 1 (base hidden states)")
    ax.set_ylabel("PC 2")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return finish(fig, path)


def plot_spread(metrics: Metrics, path: Optional[Path] = None, *, ax=None) -> Figure:
    """Two panels from ``metrics["spread"]``: every fit's embedding after affine alignment (one point per fit
    and model, a line from each to the model's mean; coloured as ``plot_embedding``), and the consensus
    functional distances (theta's where there are none) in the population's order."""
    import numpy as np

    fig, (left, right) = axes_for(ax, (11, 4.8), n=2)
    sp = metrics["spread"]
    aligned = np.asarray(sp["aligned_theta"])  # [k, N, m]
    info = {p["id"]: p for p in metrics["population"]}
    ids = [row["id"] for row in sp["models"]]
    for n, mid in enumerate(ids):
        colour = ARCH_COLORS.get(info.get(mid, {}).get("arch"), "tab:gray")
        pts = aligned[:, n, :2] if aligned.shape[-1] > 1 else np.c_[aligned[:, n, 0], np.zeros(len(aligned))]
        centre = pts.mean(0)
        for p in pts:
            left.plot([centre[0], p[0]], [centre[1], p[1]], c=colour, lw=0.6, alpha=0.6)
        left.scatter(pts[:, 0], pts[:, 1], c=colour, s=12, alpha=0.7)
        left.scatter(*centre, c=colour, s=50, edgecolors="k")
    left.set_title(f"Aligned embeddings of {sp['n_fits']} fits (dots) and their means")
    left.set_xlabel("aligned theta 1")
    left.set_ylabel("aligned theta 2")
    reading = "functional" if "functional" in sp["consensus"] else "theta"
    im = right.imshow(np.asarray(sp["consensus"][reading]), cmap="viridis")
    right.set_title(f"Consensus {reading} distances (mean over fits)")
    right.set_xticks(range(len(ids)), ids, rotation=90, fontsize=6)
    right.set_yticks(range(len(ids)), ids, fontsize=6)
    fig.colorbar(im, ax=right, fraction=0.046)
    return finish(fig, path)
