"""Figures (matplotlib, PNG) and the Markdown report of an analysis."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from . import _io
from .fidelity import fidelity_table  # noqa: E402

ARCH_COLOURS = {"rnn": "tab:blue", "gru": "tab:orange", "lstm": "tab:green",  # RNNs; CNNs by activation:
                "relu": "tab:red", "tanh": "tab:purple", "gelu": "tab:brown"}


def _save(fig, path: Path) -> None:
    """Save a figure atomically (temp file, then rename)."""
    _io.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    plt.close(fig)


MARKERS = {"rnn": "o", "gru": "s", "lstm": "^"}
TASK_COLOURS = ("tab:purple", "tab:red", "tab:cyan", "tab:olive", "tab:brown", "tab:pink")


def _by_task(metrics: Dict) -> bool:
    return len({p.get("task", "") for p in metrics["population"]}) > 1


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


def _model_order(metrics: Dict) -> List[int]:
    """Model indices sorted by (task, architecture, id), so that groups show as blocks."""
    pop = metrics["population"]
    return sorted(range(len(pop)), key=lambda i: (pop[i].get("task", ""), pop[i]["arch"], pop[i]["id"]))


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


def few_label_columns(metrics: Dict) -> List[str]:
    """The few-label table's columns: labels per class for classes, labelled sequences for real outputs."""
    per_class = [] if metrics.get("output_kind") == "real" else ["labels_per_class"]
    return ["task", *per_class, "n_labelled", "adapt_accuracy", "scratch_accuracy"]


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


def _fmt(v) -> str:
    """A table cell: "-" for what could not be computed (None, NaN)."""
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


# real outputs: R^2 and MSE beside the sign agreement (dynamo_ext.evaluate)
REGRESSION_COLUMNS = ["output_r2", "base_target_r2", "meta_target_r2", "base_target_mse", "meta_target_mse"]


def _table(rows: List[Dict], cols: List[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(out)


REPARAM_COLUMNS = ["measure", "copies", "nearest_is_original", "copy_to_original_rel", "copy_to_original_rel_max"]
DYNAMO_READINGS = ("dynamo", "dynamo_functional")  # theta's Euclidean distance; the meta-model's dynamics


def baseline_verdicts(metrics: Dict) -> List[str]:
    """Per label set and method: who wins, and every measure whose clustering beats DYNAMO's best
    reading (theta or functional distance; higher ARI), with the numbers."""
    rows = metrics["baselines"]["clustering"]
    out = []
    for by in dict.fromkeys(r["labels_by"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows):
            sub = {r["measure"]: r for r in rows if r["labels_by"] == by and r["method"] == method}
            readings = [m for m in DYNAMO_READINGS if m in sub and sub[m]["ari"] is not None]
            if not readings:
                continue
            best = max(readings, key=lambda m: sub[m]["ari"])
            ours = sub[best]["ari"]
            scored = {m: r["ari"] for m, r in sub.items() if r["ari"] is not None}
            top = max(scored.values())
            winners = ", ".join(m for m, a in scored.items() if a >= top - 1e-9)
            better = [f"{m} ({r['ari']:.3f})" for m, r in sub.items()
                      if m not in DYNAMO_READINGS and r["ari"] is not None and r["ari"] > ours + 1e-9]
            head = f"- By {by} ({method}): wins: {winners} ({top:.3f}). DYNAMO's best reading, {best}, {ours:.3f}"
            out.append(head + (" is below " + ", ".join(better) + "." if better else " is the highest or tied."))
    return out


def ari_table(metrics: Dict):
    """The clustering comparison as (rows, columns): one row per measure, one column
    "<labels_by>/<method>" per label set and method, holding the ARI."""
    rows = metrics["baselines"]["clustering"]
    cols = list(dict.fromkeys(f"{r['labels_by']}/{r['method']}" for r in rows))
    table = {m: {"measure": m} for m in dict.fromkeys(r["measure"] for r in rows)}
    for r in rows:
        table[r["measure"]][f"{r['labels_by']}/{r['method']}"] = r["ari"]
    return list(table.values()), ["measure", *cols]


def _baseline_markdown(metrics: Dict) -> List[str]:
    b = metrics["baselines"]
    table, cols = ari_table(metrics)
    md = ["## DYNAMO beside the baselines", "",
          "ARI of each measure's clustering (k = number of labels; k-means on classical MDS of the distances, "
          "or agglomerative with average linkage) against the task and architecture labels. Measures: dynamo "
          "(Euclidean distance of theta), dynamo_functional (the meta-model's states and outputs at theta_i "
          "against theta_j on the same probes, as a fraction of their spread across models), cka (1 - debiased linear CKA), svcca (1 - SVCCA), procrustes "
          "(orthogonal Procrustes distance), weights (parameter distance, same architecture and size only), "
          "outputs (output disagreement), dsa where requested (DSA, dsa-metric: "
          + (", ".join(f"{k} {v}" for k, v in b.get("dsa_settings", {}).items()) or "not run") + "); see "
          "dynamo_ext.baselines and dynamo_ext.peers for sources.", "",
          _table(table, cols), "", *baseline_verdicts(metrics), "",
          "![distances](distances.png)", ""]
    if b.get("few_labels"):
        real = metrics.get("output_kind") == "real"
        md += ["## Few labels: adapt (theta only) against a base model from scratch", "",
               *(["n_labelled: labelled sequences (targets at every step).", ""] if real else []),
               _table(b["few_labels"], few_label_columns(metrics)), "", "![few labels](few_labels.png)", ""]
    if b.get("reparameterization"):
        md += ["## Reparameterization check", "",
               "Each base model has a function-preserving copy (hidden units permuted, sign-flipped for tanh "
               "units, or rescaled per unit for ReLU units); per measure, the fraction of copies whose nearest "
               "neighbour is their original, and the distance from a copy to its original over the median "
               "distance between originals (mean and max over copies; 0 means blind to the change):", "",
               _table(b["reparameterization"]["rows"], REPARAM_COLUMNS), ""]
    return md


FIDELITY_NOTE = (
    "Base model n and the meta-model at theta_n, same rule for both: fixed points at one constant input (zero, "
    "unless metrics.json names fixed_point_input) from the same "
    "number of starts, by number of unstable directions; stable points matched one to one through A_n "
    "(linear_sum_assignment), the largest matched distance over the median distance between the base's stable "
    "points; leading |eigenvalue| of dcell/dz of matched pairs. Memory (pulse tasks): task accuracy on fresh "
    "sequences of one probe length of pulses then 10 probe lengths of zero input (silent steps scored), and on "
    "pulse sequences 10 probe lengths long.")


def _fidelity_markdown(rows: List[Dict]) -> List[str]:
    table = fidelity_table(rows)
    cols = list(dict.fromkeys(k for r in table for k in r))
    return ["## Dynamical fidelity: the meta-model's attractors and memory beside each base model's", "",
            FIDELITY_NOTE, "", _table(table, cols), ""]


def write_report(metrics: Dict, folder: Path, history: Optional[Dict] = None) -> List[Path]:
    """Write metrics.json, report.md, report.html and the figures (embedding.png, loss.png with a
    history, distances.png and few_labels.png with a baselines section) into ``folder``."""
    folder = Path(folder)
    written = [plot_embedding(metrics, folder / "embedding.png")]
    if history:
        written.append(plot_loss(history, folder / "loss.png"))
    if metrics.get("baselines"):
        written.append(plot_distance_matrices(metrics, folder / "distances.png"))
        if metrics["baselines"].get("few_labels"):
            written.append(plot_few_labels(metrics, folder / "few_labels.png"))
    emu = {e["id"]: e for e in metrics["emulation"]}
    rows = [{**p, **emu.get(p["id"], {})} for p in metrics["population"]]
    c = metrics["clustering"]
    task_col = ["task"] if _by_task(metrics) else []
    md = [
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
        _table(rows, ["id", *task_col, "arch", "hidden_size", "seed", "test_accuracy", "output_agreement",
                      "hidden_r2", "meta_test_accuracy"]
               + (REGRESSION_COLUMNS if metrics.get("output_kind") == "real" else [])),
        "",
        "## Averaging",
        "",
        "averaged: the meta-model at the members' mean embedding; naive weights: the parameter-wise mean "
        "of the members (only where they share one size); ensemble: their mean output probabilities.",
        "",
        _table([{**r, "members": len(r["members"])} for r in metrics["averaging"]],
               ["label", "members", "member_mean_accuracy", "averaged_accuracy",
                "naive_weight_average_accuracy", "ensemble_accuracy"]),
        "",
        f"## Clustering of the embeddings (k-means, k = {c['k']}, labels: {c['labels_by']})",
        "",
        f"ARI {_fmt(c['ari'])}, NMI {_fmt(c['nmi'])}, silhouette {_fmt(c['silhouette'])}.",
        "",
        "![embedding](embedding.png)",
        "",
    ]
    if metrics.get("baselines"):
        md += _baseline_markdown(metrics)
    if metrics.get("fixed_points"):
        md += ["## Fixed points of the meta-model (zero input, at each theta_n)", "",
               _table(metrics["fixed_points"], ["id", "n_fixed_points", "n_stable", "n_unstable", "n_slow_points"]),
               ""]
    if metrics.get("fidelity"):
        md += _fidelity_markdown(metrics["fidelity"])
    for fig in metrics.get("attractor_figures", []):
        md += [f"![attractors of {fig['id']}]({fig['file']})", ""]
    if metrics.get("scan"):
        sc = metrics["scan"]
        lost, changed, last = sc["attractors_lost_at"], sc.get("count_changes_at"), len(sc["rows"]) - 1
        start = sc["rows"][0]["n_stable"]
        where = (f"The number of stable points ({start} at the start) first changes at scan point {changed} "
                 f"(fraction {changed / last:.2f} of the way) to {sc['rows'][changed]['n_stable']}; "
                 if changed is not None else f"The number of stable points stays {start} along the whole path; ")
        where += (f"it first drops below {start} at scan point {lost}." if lost is not None
                  else f"it never drops below {start}.")
        md += [f"## Embedding scan from {sc['start']} to {sc['end']} (zero input)", "",
               f"Stable fixed points of the meta-model on the straight line between the two embeddings "
               f"({len(sc['rows'])} points). " + where,
               "", _table(sc["rows"], ["index", "n_stable", "n_saddle_1", "n_unstable_more", "n_slow_points"]), "",
               f"![bifurcation]({sc['file']})", ""]
    if history:
        md += ["## Fitting", "", "![loss](loss.png)", ""]
    md += ["## Timing (s)", "", _table([metrics.get("timing_s", {})], list(metrics.get("timing_s", {}))), ""]
    _io.write_json(folder / "metrics.json", metrics)
    _io.write_text(folder / "report.md", "\n".join(md))
    from .report_html import write_html

    write_html(metrics, folder / "report.html")
    return written + [folder / "metrics.json", folder / "report.md", folder / "report.html"]


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
