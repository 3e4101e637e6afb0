"""Figures (matplotlib, PNG) and the Markdown report of an analysis."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from . import _io  # noqa: E402

ARCH_COLOURS = {"rnn": "tab:blue", "gru": "tab:orange", "lstm": "tab:green"}


def _save(fig, path: Path) -> None:
    """Save a figure atomically (temp file, then rename)."""
    _io.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    plt.close(fig)


def plot_embedding(metrics: Dict, path: Path) -> Path:
    """Model embeddings (first two coordinates) coloured by architecture, annotated with test accuracy;
    stars mark the averaged embeddings of each architecture."""
    fig, ax = plt.subplots(figsize=(6, 5))
    info = {p["id"]: p for p in metrics["population"]}
    seen = set()
    for mid, theta in metrics["embedding"].items():
        p = info.get(mid, {"arch": "new", "test_accuracy": float("nan")})
        colour = ARCH_COLOURS.get(p["arch"], "tab:gray")
        y = theta[1] if len(theta) > 1 else 0.0
        ax.scatter(theta[0], y, c=colour, s=60, label=None if p["arch"] in seen else p["arch"], edgecolors="k")
        seen.add(p["arch"])
        ax.annotate(f"{p['test_accuracy']:.2f}", (theta[0], y), textcoords="offset points", xytext=(5, 4),
                    fontsize=8)
    for row in metrics.get("averaging", []):
        if row["label"] in ARCH_COLOURS:
            tb = row["theta_bar"]
            ax.scatter(tb[0], tb[1] if len(tb) > 1 else 0.0, marker="*", s=220, c=ARCH_COLOURS[row["label"]],
                       edgecolors="k", label=f"mean {row['label']} ({row['averaged_accuracy']:.2f})")
    ax.set_xlabel(r"$\theta_1$")
    ax.set_ylabel(r"$\theta_2$")
    ax.set_title("DYNAMO model embeddings (labels: base test accuracy)")
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


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def _table(rows: List[Dict], cols: List[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(out)


def write_report(metrics: Dict, folder: Path, history: Optional[Dict] = None) -> List[Path]:
    """Write metrics.json, report.md, embedding.png and (with a history) loss.png into ``folder``."""
    folder = Path(folder)
    written = [plot_embedding(metrics, folder / "embedding.png")]
    if history:
        written.append(plot_loss(history, folder / "loss.png"))
    emu = {e["id"]: e for e in metrics["emulation"]}
    rows = [{**p, **emu.get(p["id"], {})} for p in metrics["population"]]
    c = metrics["clustering"]
    md = [
        f"# DYNAMO report: {metrics.get('task', '')}",
        "",
        "Meta-model fitted with dynamo_ext (DYNAMO, Cotler et al., arXiv:2302.14078).",
        "",
        "## Population and emulation (test inputs)",
        "",
        "output_agreement: fraction of test inputs where the meta-model at theta_n and base model n "
        "give the same class at the last step; hidden_r2: R^2 of A_n z against the base hidden states.",
        "",
        _table(rows, ["id", "arch", "hidden_size", "seed", "test_accuracy", "output_agreement", "hidden_r2",
                      "meta_test_accuracy"]),
        "",
        "## Averaging in embedding space",
        "",
        _table([{**r, "members": len(r["members"])} for r in metrics["averaging"]],
               ["label", "members", "member_mean_accuracy", "averaged_accuracy"]),
        "",
        f"## Clustering (k-means, k = {c['k']}, labels: {c['labels_by']})",
        "",
        f"ARI {_fmt(c['ari'])}, NMI {_fmt(c['nmi'])}, silhouette {_fmt(c['silhouette'])}.",
        "",
        "![embedding](embedding.png)",
        "",
    ]
    if metrics.get("fixed_points"):
        md += ["## Fixed points of the meta-model (zero input, at each theta_n)", "",
               _table(metrics["fixed_points"], ["id", "n_fixed_points", "n_stable", "n_unstable", "n_slow_points"]),
               ""]
    if history:
        md += ["## Fitting", "", "![loss](loss.png)", ""]
    md += ["## Timing (s)", "", _table([metrics.get("timing_s", {})], list(metrics.get("timing_s", {}))), ""]
    _io.write_json(folder / "metrics.json", metrics)
    _io.write_text(folder / "report.md", "\n".join(md))
    return written + [folder / "metrics.json", folder / "report.md"]


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
