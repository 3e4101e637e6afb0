"""The module paths of dynamo_ext 0.1's flat layout, kept importable.

Until the layout by the method's parts, every module sat at the top level
(``dynamo_ext.zoo``, ``dynamo_ext.fit``, ``dynamo_ext.baselines``, ...). Each
old path names the module, or the package, that holds its names now, so that
``from dynamo_ext.zoo import BaseRNN`` and ``import dynamo_ext.fixed_points``
keep working.
"""
from __future__ import annotations

import importlib
import sys

OLD_PATHS = {
    "zoo": "population", "tasks": "population.tasks", "neurogym_tasks": "population.neurogym",
    "ctrnn": "population.ctrnn", "step": "population.step", "cnn": "population.base_cnn",
    "streaming": "population.streaming",
    "fit": "meta", "meta_cnn": "meta.cnn", "hidden_loss": "meta.hidden_loss", "checkpoint": "meta.checkpoint",
    "distributed": "meta.distributed", "evaluate": "meta.evaluate",
    "embed": "uses.embed", "average": "uses.average", "cluster": "uses.cluster", "adapt": "uses.adapt",
    "reparameterize": "uses.reparameterize",
    "fixed_points": "dynamics", "fidelity": "dynamics.fidelity",
    "baselines": "compare", "peers": "compare.dsa",
    "analysis": "report.analysis", "report_html": "report.html",
}  # "meta" and "report" are the packages' own names


def install(package: str) -> None:
    """Make every old path of ``package`` (the top-level package's name) name its new module."""
    top = sys.modules[package]
    for old, new in OLD_PATHS.items():
        module = importlib.import_module(f"{package}.{new}")
        sys.modules.setdefault(f"{package}.{old}", module)
        if not hasattr(top, old):
            setattr(top, old, module)
