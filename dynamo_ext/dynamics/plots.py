"""Figures of fixed points: in the principal-component plane of the states, and along an embedding scan.

Drawn into the caller's matplotlib Axes or a new Figure (never through pyplot);
``FixedPoints.plot`` and the report use them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from matplotlib.figure import Figure

from .._figures import axes_for, finish


def plot_fixed_points(fps, path: Optional[Path] = None, trajectories=None, title: str = "Fixed points", *,
                      ax=None) -> Figure:
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
    fig, (ax,) = axes_for(ax, (5.5, 5))
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
    return finish(fig, path)


def plot_bifurcation(result, path: Optional[Path] = None, title: str = "Fixed points along the embedding scan", *,
                     ax=None) -> Figure:
    """Bifurcation diagram of a ``fixed_points.scan``: for each scanned theta (x axis, its index),
    the fixed points' coordinate on the first principal component of all of them;
    filled: stable, open: unstable."""
    import torch

    all_states = [fps.states for fps in result.points if len(fps)]
    fig, (ax,) = axes_for(ax, (6, 4))
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
    return finish(fig, path)
