"""Figures without pyplot: the Axes a ``plot_*`` function draws into, and saving it.

Every plotting function of the package draws into the caller's ``ax`` or into a
new ``matplotlib.figure.Figure`` (never pyplot's state, so matplotlib's
backend and a notebook's figures are left alone), returns the Figure, and
saves it atomically as PNG when given a path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import matplotlib
import matplotlib.axes
from matplotlib.figure import Figure

from . import _io


def axes_for(ax, figsize: Tuple[float, float], n: int = 1) -> Tuple[Figure, list]:
    """The ``n`` Axes to draw into: the caller's ``ax`` (one Axes, or a sequence of ``n``), or new ones."""
    if ax is None:
        fig = Figure(figsize=figsize)
        return fig, list(fig.subplots(1, n, squeeze=False)[0])
    axes = [ax] if isinstance(ax, matplotlib.axes.Axes) else list(ax)
    if len(axes) != n or not all(isinstance(a, matplotlib.axes.Axes) for a in axes):
        raise ValueError(f"argument 'ax' must be {'an Axes' if n == 1 else f'a sequence of {n} Axes'} (one per "
                         f"panel), got {type(ax).__name__} of {len(axes)}")
    return axes[0].figure, axes


def finish(fig: Figure, path: Optional[Path]) -> Figure:
    """Save ``fig`` as PNG at ``path`` when one is given (atomically: temp file, then rename); return it."""
    if path is not None:
        _io.atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    return fig
