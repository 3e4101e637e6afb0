"""The demo pipeline: train a population on MNIST-1D, fit a meta-model, analyse, report.

The same steps, written out with the public API, are in python/demo_pipeline.py.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Dict

from . import _io
from .analysis import analyze
from .fit import fit
from .report import write_report
from .zoo import TrainConfig, train_population

# The default population: MNIST-1D; tanh RNN, GRU and LSTM; 4 seeds each; hidden sizes 32 to 64.
DEFAULT = {"archs": ("rnn", "gru", "lstm"), "n_seeds": 4, "hidden_sizes": (32, 48, 64, 64), "epochs": 40,
           "fit_steps": 4000}
# --quick: 2 seeds per architecture, fewer epochs and fitting steps (at most 3 minutes on 2 cores).
QUICK = {"archs": ("rnn", "gru", "lstm"), "n_seeds": 2, "hidden_sizes": (48, 64), "epochs": 25,
         "fit_steps": 3000}


def run_demo(out="dynamo-demo", quick: bool = False, seed: int = 0, progress: bool = True) -> Dict:
    """Run the demo and write metrics.json, report.md and figures into ``out``.

    Returns:
        The metrics dictionary (also written to ``out/metrics.json``).
    """
    settings = QUICK if quick else DEFAULT
    out = Path(out)
    timing = {}
    t0 = time.perf_counter()
    pop = train_population("mnist1d", archs=settings["archs"], hidden_sizes=settings["hidden_sizes"],
                           n_seeds=settings["n_seeds"], config=TrainConfig(epochs=settings["epochs"]),
                           out=out / "population", base_seed=seed, progress=progress)
    timing["zoo"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    result = fit(pop, steps=settings["fit_steps"], seed=seed, out=out / "meta", progress=progress)
    timing["fit"] = round(time.perf_counter() - t0, 2)
    metrics = analyze(result.meta, pop, seed=seed)
    metrics["timing_s"] = {**timing, **metrics["timing_s"]}
    metrics["settings"] = {**{k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
                           "quick": quick, "seed": seed}
    metrics["timing_s"]["total_before_report"] = round(sum(metrics["timing_s"].values()), 2)
    t0 = time.perf_counter()
    write_report(metrics, out, history=result.history)
    metrics["timing_s"]["report"] = round(time.perf_counter() - t0, 2)
    metrics["timing_s"]["total"] = round(metrics["timing_s"]["total_before_report"] + metrics["timing_s"]["report"], 2)
    _io.write_json(out / "metrics.json", metrics)
    return metrics
