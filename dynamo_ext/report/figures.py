"""The analysis's figures (matplotlib, PNG): embedding, distances, few labels, loss, fixed points."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .. import _io
from .tables import _by_task, _model_order

ARCH_COLOURS = {"rnn": "tab:blue", "gru": "tab:orange", "lstm": "tab:green",  # RNNs; CNNs by activation:
                "relu": "tab:red", "tanh": "tab:purple", "gelu": "tab:brown"}


def _save(fig, path: Path) -> None:
    """Save a figure atomically (temp file, then rename)."""
    _io.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    plt.close(fig)


MARKERS = {"rnn": "o", "gru": "s", "lstm": "^"}
TASK_COLOURS = ("tab:purple", "tab:red", "tab:cyan", "tab:olive", "tab:brown", "tab:pink")


def plot_embedding(metrics: Dict, path: Path) -> Path:
    """Model embeddings (first two coordinates), annotated with test accuracy. Single task: coloured by
    architecture, stars at each architecture's averaged embedding. Several tasks: coloured by task,
    marker by architecture."""
    fig, ax = plt.subplots(figsize=(6, 5))
    info = {p["id"]: p for p in metrics["population"]}
    by_task = _by_task(metrics)
    tasks = sorted({p.get("task", "") for p in metrics["population"]})
    seen = set()
    for mid, theta in metrics["embedding"].items():
        p = info.get(mid, {"arch": "new", "test_accuracy": float("nan")})
        if by_task:
            colour = TASK_COLOURS[tasks.index(p["task"]) % len(TASK_COLOURS)] if "task" in p else "tab:gray"
            label = f"{p.get('task', 'new')} / {p['arch']}"
        else:
            colour, label = ARCH_COLOURS.get(p["arch"], "tab:gray"), p["arch"]
        y = theta[1] if len(theta) > 1 else 0.0
        ax.scatter(theta[0], y, c=colour, marker=MARKERS.get(p["arch"], "o") if by_task else "o", s=60,
                   label=None if label in seen else label, edgecolors="k")
        seen.add(label)
        ax.annotate(f"{p['test_accuracy']:.2f}", (theta[0], y), textcoords="offset points", xytext=(5, 4),
                    fontsize=7)
    for row in metrics.get("averaging", []):
        if row["label"] in ARCH_COLOURS:
            tb = row["theta_bar"]
            ax.scatter(tb[0], tb[1] if len(tb) > 1 else 0.0, marker="*", s=220, c=ARCH_COLOURS[row["label"]],
                       edgecolors="k", label=f"mean {row['label']} ({row['averaged_accuracy']:.2f})")
    ax.set_xlabel(r"$\theta_1$")
    ax.set_ylabel(r"$\theta_2$")
    ax.set_title("DYNAMO model embeddings (labels: base test accuracy)")
    ax.legend(fontsize=7)
    _save(fig, path)
    return path


def plot_distance_matrices(metrics: Dict, path: Path) -> Path:
    """Every measure's distance matrix side by side (models sorted by task and architecture;
    grey: pairs the measure cannot compare)."""
    import numpy as np

    dists = metrics["baselines"]["distances"]
    order = _model_order(metrics)
    fig, axes = plt.subplots(1, len(dists), figsize=(3.2 * len(dists), 3.4), squeeze=False)
    for ax, (name, d) in zip(axes[0], dists.items()):
        m = np.asarray(d, dtype=float)[np.ix_(order, order)]
        ax.imshow(np.ma.masked_invalid(m), cmap=plt.get_cmap("viridis").with_extremes(bad="0.8"))
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Distances between base models (sorted by task, architecture)", fontsize=10)
    _save(fig, path)
    return path


def plot_few_labels(metrics: Dict, path: Path) -> Path:
    """Test accuracy against labels per class: adapt (theta only) and a base model from scratch."""
    rows = metrics["baselines"]["few_labels"]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
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
    _save(fig, path)
    return path


def plot_loss(history: Dict[str, List[float]], path: Path) -> Path:
    """The fitting loss and its terms per step (log scale)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("loss", "loss_h", "loss_y", "loss_theta"):
        if history.get(key):
            ax.plot(history[key], label=key, lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Meta-model fitting loss")
    ax.legend()
    _save(fig, path)
    return path


def plot_fixed_points(fps, path: Path, trajectories=None, title: str = "Fixed points") -> Path:
    """Fixed points projected on the first two principal components of the states (or of
    ``trajectories`` [B, T, D] when given, drawn in grey); filled: stable, open: unstable
    (label: number of unstable directions)."""
    import torch

    states = fps.states.detach().double()
    basis_src = trajectories.detach().reshape(-1, states.shape[1]).double() if trajectories is not None else states
    mean = basis_src.mean(0)
    if basis_src.shape[0] >= 2:
        _, _, V = torch.linalg.svd(basis_src - mean, full_matrices=False)
        basis = V[:2].T if V.shape[0] >= 2 else torch.cat([V[:1].T, torch.zeros_like(V[:1].T)], 1)
    else:
        basis = torch.eye(states.shape[1], 2, dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    if trajectories is not None:
        for traj in trajectories[:20]:
            p = (traj.detach().double() - mean) @ basis
            ax.plot(p[:, 0], p[:, 1], color="0.8", lw=0.6, zorder=1)
    if len(fps):
        p = (states - mean) @ basis
        stable = fps.is_stable
        ax.scatter(p[stable, 0], p[stable, 1], c="k", s=40, label="stable", zorder=3)
        ax.scatter(p[~stable, 0], p[~stable, 1], facecolors="none", edgecolors="tab:red", s=40, label="unstable",
                   zorder=3)
        for (x, y), k in zip(p[~stable].tolist(), fps.n_unstable[~stable].tolist()):
            ax.annotate(str(k), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7, color="tab:red")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)
    return path


def plot_bifurcation(result, path: Path, title: str = "Fixed points along the embedding scan") -> Path:
    """Bifurcation diagram of a ``fixed_points.scan``: for each scanned theta (x axis, its index),
    the fixed points' coordinate on the first principal component of all of them;
    filled: stable, open: unstable."""
    import torch

    all_states = [fps.states for fps in result.points if len(fps)]
    fig, ax = plt.subplots(figsize=(6, 4))
    if all_states:
        stacked = torch.cat(all_states).double()
        mean = stacked.mean(0)
        if stacked.shape[0] >= 2 and stacked.shape[1] >= 1:
            pc = torch.linalg.svd(stacked - mean, full_matrices=False)[2][0]
        else:
            pc = torch.ones(stacked.shape[1], dtype=torch.float64)
        for i, fps in enumerate(result.points):
            if not len(fps):
                continue
            y = (fps.states.double() - mean) @ pc
            st = fps.is_stable
            ax.scatter([i] * int(st.sum()), y[st], c="k", s=18)
            ax.scatter([i] * int((~st).sum()), y[~st], facecolors="none", edgecolors="tab:red", s=18)
    ax.set_xlabel("scan index (theta)")
    ax.set_ylabel("fixed point, PC 1")
    ax.set_title(title)
    _save(fig, path)
    return path


def plot_attractors(points: Dict, path: Path, title: str) -> Path:
    """Stable fixed points of a base model (black dots) and of the meta-model at its theta_n, mapped
    through A_n (red crosses), on the first two principal components of the base model's
    trajectories (grey; ``fidelity.topology(..., return_points=True)["points"]``)."""
    import torch

    traj = points["trajectories"].detach().double()
    flat = traj.reshape(-1, traj.shape[-1])
    mean = flat.mean(0)
    basis = torch.linalg.svd(flat - mean, full_matrices=False)[2][:2].T
    fig, ax = plt.subplots(figsize=(5, 4.6))
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
    _save(fig, path)
    return path
