"""The demo pipeline: train a population, fit a meta-model, analyse (with the baselines), report.

Five populations (``POPULATIONS``): "mnist1d" (tanh RNN, GRU, LSTM on MNIST-1D); "pulse", the
multi-task pulse population (flip-flop, integration and first-pulse latch on one input stream, each
with the three architectures), whose demo also runs the reparameterization check; "universality"
(flip-flop and pulse integration, each learnt by tanh and ReLU RNNs, GRUs and LSTMs, after
Maheswaranathan et al. 2019); "cnn1d" (MNIST-1D 1-D CNNs: ReLU, tanh, GELU; two widths;
dynamo_ext.population.base_cnn) emulated by a FiLM-conditioned meta-CNN; and "attractors" (point,
line and bistable networks with an input copy, built rather than trained;
dynamo_ext.population.attractors).

The same steps, written out with the public API, are in python/demo_pipeline.py.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Dict

import torch

from . import _io
from ._checks import check_choice
from .report.analysis import analyze
from .dynamics.attractor_fidelity import topology
from .meta.checkpoint import META_CONFIG, META_WEIGHTS
from .meta.fitting import fit
from .dynamics.path_scan import embedding_path, scan
from .report.figures import plot_attractors, plot_bifurcation
from .report.markdown import REPORT_FILES, write_report
from .uses.reparameterization import reparameterization_check
from .population.tasks import PULSE_TASKS
from .population.training import TrainConfig
from .population.attractors import DEFAULTS as ATTRACTOR_DEFAULTS
from .population.attractors import attractor_population
from .population.storage import MANIFEST
from .population.zoo import train_population

# The default population: MNIST-1D; tanh RNN, GRU and LSTM; 4 seeds each; hidden sizes 32 to 64.
DEFAULT = {"archs": ("rnn", "gru", "lstm"), "n_seeds": 4, "hidden_sizes": (32, 48, 64, 64), "epochs": 40,
           "fit_steps": 4000}
# --quick: 2 seeds per architecture, fewer epochs and fitting steps (at most 3 minutes on 2 cores).
QUICK = {"archs": ("rnn", "gru", "lstm"), "n_seeds": 2, "hidden_sizes": (48, 64), "epochs": 25,
         "fit_steps": 3000}
# The multi-task pulse population: 3 tasks x 3 architectures x 3 seeds, one hidden size (so that naive
# weight averaging is defined within each group).
PULSE = {"tasks": PULSE_TASKS, "archs": ("rnn", "gru", "lstm"), "n_seeds": 3, "hidden_sizes": (32,),
         "epochs": 80, "fit_steps": 3000, "reparam_steps": 3000}
# MNIST-1D CNNs: 3 activations x 4 seeds, widths 32 and 48 alternating (2 members per activation and width,
# so that naive weight averaging is defined within each group).
CNN = {"family": "cnn1d", "archs": ("relu", "tanh", "gelu"), "n_seeds": 4, "hidden_sizes": (32, 48), "epochs": 40,
       "fit_steps": 3000}
CNN_QUICK = {"family": "cnn1d", "archs": ("relu", "tanh", "gelu"), "n_seeds": 2, "hidden_sizes": (32,),
             "epochs": 30, "fit_steps": 3000}
# Universality (after Maheswaranathan et al., NeurIPS 2019): two computations (3-bit flip-flop, pulse
# integration; one input stream), each learnt by tanh and ReLU RNNs, GRUs and LSTMs of two sizes: the label is
# the computation, and geometry may group by architecture instead.
UNIVERSALITY = {"tasks": ("flipflop", "integrate"), "archs": ("rnn", "relu_rnn", "gru", "lstm"), "n_seeds": 2,
                "hidden_sizes": (32, 64), "epochs": 80, "fit_steps": 2000, "reparam_steps": 2000}
UNIVERSALITY_QUICK = {**UNIVERSALITY, "hidden_sizes": (32,)}
PULSE_QUICK = {"tasks": PULSE_TASKS, "archs": ("rnn", "gru", "lstm"), "n_seeds": 2, "hidden_sizes": (32,),
               "epochs": 80, "fit_steps": 2000, "reparam_steps": 2000}


# Built, not trained (dynamo_ext.population.attractors): point / line / bistable networks of matched mean
# response, each with an input copy of 4 sizes that geometry measures see first. Not saved: its members are
# not BaseRNNs (Population.save writes BaseRNN and BaseCNN members).
ATTRACTORS = {"fit_steps": 2000, **{k: list(v) if isinstance(v, tuple) else v for k, v in ATTRACTOR_DEFAULTS.items()}}
POPULATIONS = ("mnist1d", "pulse", "universality", "cnn1d", "attractors")


def pulse_dynamics(meta, pop, out: Path, seed: int = 0, steps: int = 11) -> Dict:
    """The pulse demo's pictures of the dynamics: per architecture, the stable fixed points of its
    first flip-flop model and of the meta-model at its theta_n in the base model's principal
    components (attractors_<arch>.png); the scan of the meta-model's fixed points on the line from
    the first flip-flop GRU's theta to the first integration GRU's (scan.png), and where along it
    the number of stable points first changes and first drops below its number at the start."""
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    for arch in dict.fromkeys(m.arch for m in pop.members):
        n = next((i for i, m in enumerate(pop.members) if m.arch == arch and m.task == "flipflop"), None)
        if n is None:
            continue
        top = topology(meta, pop, n, seed=seed, return_points=True)
        if "points" not in top:
            continue
        name = f"attractors_{arch}.png"
        plot_attractors(top["points"], out / name, f"{pop.members[n].id}: {top['base']['n_stable']} stable (base), "
                        f"{top['meta']['n_stable']} (meta-model at theta_n)")
        figures.append({"id": pop.members[n].id, "file": name})
    ids = {task: next((m.id for m in pop.members if m.task == task and m.arch == "gru"), None)
           for task in ("flipflop", "integrate")}
    section = {"attractor_figures": figures}
    if None not in ids.values():
        thetas = embedding_path(meta, ids["flipflop"], ids["integrate"], steps=steps)
        x = pop.task.x_test[:32]
        probe = torch.cat([x, torch.zeros_like(x)], dim=1).to(meta.theta.dtype)
        result = scan(meta, thetas, probe_x=probe, n_inits=128, seed=seed)
        rows = result.table()
        lost = next((r["index"] for r in rows if r["n_stable"] < rows[0]["n_stable"]), None)
        changed = next((r["index"] for r in rows if r["n_stable"] != rows[0]["n_stable"]), None)
        plot_bifurcation(result, out / "scan.png", f"Fixed points from {ids['flipflop']} to {ids['integrate']}")
        section["scan"] = {"start": ids["flipflop"], "end": ids["integrate"], "rows": rows,
                           "attractors_lost_at": lost, "count_changes_at": changed, "file": "scan.png"}
    return section


def run_demo(out="dynamo-demo", quick: bool = False, seed: int = 0, progress: bool = True,
             population: str = "mnist1d", overwrite: bool = False) -> Dict:
    """Run the demo and write metrics.json, report.md, report.html and figures into ``out``.

    Args:
        population: "mnist1d", "pulse" (the multi-task population),
            "universality" (flip-flop and integration, each by tanh and ReLU
            RNNs, GRUs and LSTMs), "cnn1d" (MNIST-1D CNNs) or "attractors"
            (point, line and bistable networks built around one integration,
            with input copies that mislead geometry; not trained, not saved;
            ``quick`` changes nothing).
        overwrite: let ``out`` hold another demo's results, replaced (else refused before any work).

    Returns:
        The metrics dictionary (also written to ``out/metrics.json``).

    Raises:
        ValueError: an unknown population; an ``out`` that is a file, cannot be written, or holds
            another demo's results (without ``overwrite``).
    """
    check_choice(population, "population", POPULATIONS)
    for folder, results in ((out, REPORT_FILES), (Path(out) / "population", (MANIFEST,)),
                            (Path(out) / "meta", (META_WEIGHTS, META_CONFIG))):
        _io.check_output_folder(folder, "out", results, overwrite=overwrite)
    pulse = population in ("pulse", "universality")
    settings = {"mnist1d": (DEFAULT, QUICK), "pulse": (PULSE, PULSE_QUICK), "cnn1d": (CNN, CNN_QUICK),
                "universality": (UNIVERSALITY, UNIVERSALITY_QUICK),
                "attractors": (ATTRACTORS, ATTRACTORS)}[population][quick]
    out = Path(out)
    timing = {}
    t0 = time.perf_counter()
    if population == "attractors":
        pop = attractor_population(seed=seed)
    else:
        pop = train_population(list(settings["tasks"]) if pulse else "mnist1d", archs=settings["archs"],
                               hidden_sizes=settings["hidden_sizes"], n_seeds=settings["n_seeds"],
                               config=TrainConfig(epochs=settings["epochs"]), family=settings.get("family", "rnn"),
                               out=out / "population", base_seed=seed, progress=progress, overwrite=overwrite)
    timing["zoo"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    result = fit(pop, steps=settings["fit_steps"], seed=seed, out=out / "meta", progress=progress,
                 overwrite=overwrite)
    timing["fit"] = round(time.perf_counter() - t0, 2)
    metrics = analyze(result.meta, pop, seed=seed)
    metrics["timing_s"] = {**timing, **metrics["timing_s"]}
    if pulse:
        t0 = time.perf_counter()
        metrics.update(pulse_dynamics(result.meta, pop, out, seed=seed))
        metrics["timing_s"]["attractor_figures_and_scan"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        metrics["baselines"]["reparameterization"] = reparameterization_check(
            pop, {"steps": settings["reparam_steps"]}, seed=seed, progress=progress)
        metrics["timing_s"]["reparameterization_check"] = round(time.perf_counter() - t0, 2)
    metrics["settings"] = {**{k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
                           "quick": quick, "seed": seed, "population": population}
    metrics["timing_s"]["total_before_report"] = round(sum(metrics["timing_s"].values()), 2)
    t0 = time.perf_counter()
    write_report(metrics, out, history=result.history)
    metrics["timing_s"]["report"] = round(time.perf_counter() - t0, 2)
    metrics["timing_s"]["total"] = round(metrics["timing_s"]["total_before_report"] + metrics["timing_s"]["report"], 2)
    _io.write_json(out / "metrics.json", metrics)
    return metrics
