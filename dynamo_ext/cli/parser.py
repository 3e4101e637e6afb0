"""The dynamo-ext commands' options (argparse); ``fit``'s settings are derived from FitConfig's fields."""
from __future__ import annotations

import argparse

from ..compare.registry import measure_names
from ..population.tasks import TASKS

DEMO_POPULATIONS = ["mnist1d", "pulse", "universality", "cnn1d", "attractors"]  # dynamo_ext.demo.POPULATIONS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dynamo-ext", description="DYNAMO: dynamical model embedding of "
                                "populations of neural networks (arXiv:2302.14078)")
    sub = p.add_subparsers(dest="command", required=True)
    z = _zoo_command(sub)
    f = _fit_command(sub)
    a = _analyze_command(sub)
    d = _demo_command(sub)
    ad = _adapt_command(sub)
    rc = _reparam_check_command(sub)
    fp = _fixed_points_command(sub)
    _explore_command(sub)
    for s in (z, f, a, d, fp, ad, rc):
        s.add_argument("--no-progress", action="store_true", help="hide progress bars")
        s.add_argument("--overwrite", action="store_true", help="replace the results of another run in --out")
    return p


def _zoo_command(sub) -> argparse.ArgumentParser:
    z = sub.add_parser("zoo", help="train a population of base models and save it")
    z.add_argument("--task", nargs="+", default=["mnist1d"], type=_task_name,
                   help=f"one of {', '.join(TASKS)} or neurogym:<env id> (the [neurogym] extra), or several pulse "
                   "tasks sharing one input stream (a multi-task population, e.g. --task flipflop integrate first)")
    z.add_argument("--family", default="rnn", choices=["rnn", "cnn1d", "cnn2d"],
                   help="recurrent base models, or CNNs (cnn1d: the signal, e.g. MNIST-1D; cnn2d: the image, "
                   "e.g. --task digits)")
    z.add_argument("--archs", nargs="+", default=None, choices=["rnn", "relu_rnn", "gru", "lstm", "ctrnn", "relu", "tanh", "gelu"],
                   help="RNNs: rnn gru lstm (default all); CNNs: the activations relu tanh gelu (default all)")
    z.add_argument("--seeds", type=int, default=4, help="models per architecture")
    z.add_argument("--hidden-sizes", type=int, nargs="+", default=None,
                   help="hidden sizes (RNNs; default 32 48 64 64) or widths (CNNs; default 32 48)")
    z.add_argument("--epochs", type=int, default=40)
    z.add_argument("--lr", type=float, default=None, help="default: per architecture")
    z.add_argument("--base-seed", type=int, default=0)
    z.add_argument("--out", required=True, help="population folder to write")
    z.add_argument("--resume", action="store_true", help="keep the models already finished in --out")
    return z


def _fit_command(sub) -> argparse.ArgumentParser:
    f = sub.add_parser("fit", help="fit a meta-model to a saved population")
    f.add_argument("population", help="population folder (from `dynamo-ext zoo`), or a recording folder "
                   "written by dynamo_ext.population.streaming.record_to_disk (read batch by batch)")
    f.add_argument("--out", required=True, help="meta-model folder to write")
    _fit_config_options(f)
    f.add_argument("--distributed", action="store_true", help="run as one rank under torchrun: the base "
                   "models are sharded across ranks, DistributedDataParallel over the meta-model (gloo on CPU, "
                   "NCCL on GPUs), rank 0 writes --out")
    f.add_argument("--resume", action="store_true", help="continue from --out's checkpoint if there is one")
    f.add_argument("--n-fits", type=int, default=1, help="fit this many meta-models (seeds --seed, --seed + 1, "
                   "...) on one recording, saved in --out/fit-<i>; their spread: dynamo_ext.uses.across_fits")
    return f


def _analyze_command(sub) -> argparse.ArgumentParser:
    a = sub.add_parser("analyze", help="emulation, averaging and clustering report of a fitted meta-model")
    a.add_argument("population", help="population folder")
    a.add_argument("meta", help="meta-model folder (from `dynamo-ext fit`; a folder of fit-<i> folders from "
                   "`fit --n-fits k` is analysed as its first fit with every reading's spread across the k fits)")
    a.add_argument("--out", required=True, help="report folder to write")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--no-baselines", action="store_true", help="skip the baselines section (CKA, SVCCA, ...)")
    a.add_argument("--labels-per-class", type=int, nargs="*", default=[1, 5, 20],
                   help="few-label comparison sizes (none: skip it)")
    a.add_argument("--input", type=float, nargs="+", default=None,
                   help="constant input x* of the fidelity section's fixed points (default zeros)")
    a.add_argument("--measures", nargs="+", default=None, choices=list(measure_names(dynamo=False)),
                   help=f"the baselines' measures (default {' '.join(measure_names(default=True, dynamo=False))}; dsa, the peer, needs the [peers] "
                   "extra and takes minutes)")
    a.add_argument("--time-budget", type=float, default=900.0, help="seconds for the baselines (<= 0: none)")
    a.add_argument("--memory-budget-gb", type=float, default=4.0,
                   help="GiB: the baselines' recording goes to a temporary folder when it would take over a "
                   "quarter of this (<= 0: always in memory)")
    a.add_argument("--distributed", action="store_true",
                   help="under torchrun: split the all-pairs baselines over the ranks (gloo; rank 0 writes the "
                   "report)")
    a.add_argument("--permutations", type=int, default=999,
                   help="label permutations of the report's group tests (PERMANOVA, PERMDISP)")
    return a


def _demo_command(sub) -> argparse.ArgumentParser:
    d = sub.add_parser("demo", help="train, fit and analyse a population (MNIST-1D RNNs; the multi-task pulse "
                       "population with --population pulse; flip-flop and integration by four architectures "
                       "with universality; MNIST-1D CNNs with cnn1d; point, line and bistable networks "
                       "built to mislead geometry with attractors)")
    d.add_argument("--out", default="dynamo-demo")
    d.add_argument("--quick", action="store_true", help="smaller population and fit (<= 3 minutes)")
    d.add_argument("--population", default="mnist1d", choices=DEMO_POPULATIONS)
    d.add_argument("--seed", type=int, default=0)
    return d


def _adapt_command(sub) -> argparse.ArgumentParser:
    ad = sub.add_parser("adapt", help="fit theta alone to a few labels; compare with training from scratch")
    ad.add_argument("population", help="population folder")
    ad.add_argument("meta", help="meta-model folder")
    ad.add_argument("--labels-per-class", type=int, nargs="+", default=[1, 5, 20])
    ad.add_argument("--seed", type=int, default=0)
    ad.add_argument("--out", required=True, help="folder for adapt.json")
    return ad


def _reparam_check_command(sub) -> argparse.ArgumentParser:
    rc = sub.add_parser("reparam-check", help="fit a population plus reparameterized copies of its models and "
                        "check each copy's nearest neighbour is its original")
    rc.add_argument("population", help="population folder")
    rc.add_argument("--steps", type=int, default=2000, help="fitting steps")
    rc.add_argument("--seed", type=int, default=0)
    rc.add_argument("--out", required=True, help="folder for reparameterization.json")
    return rc


def _fixed_points_command(sub) -> argparse.ArgumentParser:
    fp = sub.add_parser("fixed-points", help="fixed points of a meta-model at one model's embedding")
    fp.add_argument("meta", help="meta-model folder (from `dynamo-ext fit`)")
    fp.add_argument("--model-id", required=True, help="the base model whose embedding to use")
    fp.add_argument("--input", type=float, nargs="+", default=None, help="constant input x* (default zeros)")
    fp.add_argument("--population", default=None, help="population folder: start from meta-model trajectories "
                    "on its task's test inputs (default: uniform initial states)")
    fp.add_argument("--n-inits", type=int, default=256)
    fp.add_argument("--noise", type=float, default=0.01)
    fp.add_argument("--tol", type=float, default=1e-10)
    fp.add_argument("--min-progress", type=float, default=None,
                    help="stop a candidate whose ||F|| fell by less than this fraction over 5 iterations "
                    "(a slow point; default 0.01, 0 runs every candidate to the iteration cap)")
    fp.add_argument("--seed", type=int, default=0)
    fp.add_argument("--device", default="cpu", help="where the Newton solves run: cpu, cuda or cuda:<index>")
    fp.add_argument("--scan-to", default=None, help="also scan the straight embedding path from --model-id to "
                    "this model: scan.json (counts by type per theta) and bifurcation.png")
    fp.add_argument("--steps", type=int, default=11, help="thetas on the scanned path")
    fp.add_argument("--out", required=True, help="folder for fixed_points.json and fixed_points.png")
    return fp


def _explore_command(sub) -> argparse.ArgumentParser:
    ex = sub.add_parser("explore", help="explore the model embedding space in the browser (the [explore] extra)")
    ex.add_argument("population", help="population folder")
    ex.add_argument("meta", help="meta-model folder (fitted to that population)")
    ex.add_argument("--port", type=int, default=8050)
    ex.add_argument("--host", default="127.0.0.1", help="the address to serve on (default: this machine only)")
    ex.add_argument("--n-inits", type=int, default=256, help="fixed-point starts per theta")
    ex.add_argument("--n-probes", type=int, default=16, help="probe sequences for trajectories and outputs")
    return ex


def _task_name(value: str) -> str:
    if value in TASKS or (value.startswith("neurogym:") and len(value) > len("neurogym:")):
        return value
    raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from {', '.join(TASKS)}, "
                                     "or neurogym:<env id>)")




# what each FitConfig field means on the command line (its type, default and choices come from FitConfig)
FIT_HELP = {
    "state_size": "meta-model hidden state size", "embedding_dim": "dimension of the model embedding theta",
    "cell": "meta-model cell", "backend": "fused op, plain-PyTorch reference, or auto",
    "recurrence_rank": "experimental: rank of the embedding-conditioned recurrence W_h + P diag(s(theta)) Q^T (0: none; "
                       "needs --backend reference or auto)",
    "steps": "optimisation steps", "batch_size": "(model, sequence) rows per step", "lr": "Adam learning rate",
    "lambda_h": "weight of the hidden-state term", "lambda_y": "weight of the output term",
    "lambda_theta": "weight of the embedding penalty", "max_sequences": "probe sequences recorded (none: all)",
    "seed": "random seed", "dtype": "meta-model dtype",
    "device": "cpu, cuda or cuda:<index> (with --distributed: cpu or cuda, each rank taking GPU LOCAL_RANK)",
    "checkpoint_every": "save the training state into --out every this many steps (checkpoint.safetensors)",
    "refine_steps": "then polish theta_n and A_n, phi frozen", "refine_sequences": "sequences per refinement step",
    "refine_lr": "refinement learning rate",
    "relax_steps": "noise-input steps after each probe sequence (none: one probe length for real outputs, 0 "
                   "for classes)",
    "relax_noise": "standard deviation of the input during the relax steps (0: exact silence)",
    "memory_budget_gb": "stream a larger recording from disk (none: always in memory)",
    "recording_dir": "where a streamed recording goes (default: a temporary folder)",
    "disk_budget_gb": "GiB of disk a streamed recording may take: past it, fewer probe sequences per model "
                      "(none: all)",
    "recording_dtype": "how the recording's hidden states are kept",
    "quality_threshold": "name the models below this held-out hidden R^2 (none: no check)",
}


def _fit_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per FitConfig field (``--state-size`` for ``state_size``), its default read from FitConfig;
    an optional field takes "none"."""
    import dataclasses

    from ..meta.config import FitConfig
    from ..meta.rnn import BACKENDS, CELLS

    choices = {"cell": CELLS, "backend": BACKENDS, "dtype": ("float32", "float64"),
               "recording_dtype": ("float32", "float16")}
    for field in dataclasses.fields(FitConfig):
        kind = str(field.type)
        base = float if "float" in kind else int if "int" in kind else str
        convert = _optional(base) if "Optional" in kind else base
        parser.add_argument("--" + field.name.replace("_", "-"), type=convert, default=field.default,
                            choices=choices.get(field.name), help=FIT_HELP.get(field.name, field.name) +
                            ("" if field.name in choices else f" (default: {field.default})"))


def _optional(base):
    def convert(value: str):
        return None if value.lower() == "none" else base(value)
    convert.__name__ = base.__name__  # argparse names the type in its error
    return convert
