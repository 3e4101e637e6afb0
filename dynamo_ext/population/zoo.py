"""The model zoo: training a whole population of base models, resumably.

``train_population`` trains every (architecture, hidden size, seed) of a
family on one or more tasks, writing each member as it finishes so that an
interrupted run resumes where it stopped (docs/method.md, "Base models and their recording").
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Dict, Optional, Sequence

from tqdm.auto import tqdm

from .. import _io
from .._checks import check_choice, check_positive_int
from .families import DEFAULT_ARCHS, FAMILY_ARCHS
from .population import MANIFEST, Population
from .recording import Member, check_shared_inputs
from .tasks import TaskData, load_task
from .training import TrainConfig, evaluate, train_base_model


def train_population(task: TaskData | str | Sequence = "mnist1d", archs: Optional[Sequence[str]] = None,
                     hidden_sizes: Optional[Sequence[int]] = None, n_seeds: int = 4,
                     config: Optional[TrainConfig] = None, out: Optional[str | Path] = None,
                     base_seed: int = 0, progress: bool = True, resume: bool = False,
                     family: str = "rnn", overwrite: bool = False) -> Population:
    """Train a population: for each task and architecture, ``n_seeds`` models.

    Seed i of an architecture uses hidden size ``hidden_sizes[i % len]`` and
    torch seed ``base_seed + i``. Each model is trained with
    ``train_base_model`` (Adam, one-cycle, cross-entropy at the last step or
    MSE at every step) and its test accuracy measured.

    Args:
        task: a TaskData or a task name for ``load_task``; or a list of them
            that share one input stream (e.g. tasks.PULSE_TASKS): a
            multi-task population, model ids "<task>-<arch>-h<H>-s<seed>".
        archs: RNNs: "rnn", "gru", "lstm" (the default), "relu_rnn", "ctrnn"; CNNs: the
            activations "relu", "tanh", "gelu" (default all).
        hidden_sizes: RNNs: hidden sizes (default 32, 48, 64, 64); CNNs: widths,
            channels per layer (default 32, 48).
        family: "rnn" (default), or a CNN family of dynamo_ext.population.base_cnn: "cnn1d"
            (the signal [B, I, T]; MNIST-1D) or "cnn2d" (the image
            [B, 1, T, I]; digits). CNN ids are "<family>-<activation>-w<width>-s<seed>".
        out: optional folder; the population is saved there (safetensors +
            manifest.json), written atomically after every finished model, so
            that an interrupted run loses no finished model.
        resume: with ``out``, reuse the models already finished there (same
            id and training settings) and train only the rest; the result
            equals an uninterrupted run's (each model depends on its own seed only).
        overwrite: let ``out`` hold another population, replaced (else refused before any training, as
            an ``out`` that is a file or cannot be written).

    Returns:
        The Population.

    Raises:
        ValueError: unknown architecture, empty ``archs``, bad sizes, tasks
            that do not share their inputs.
    """
    multi = isinstance(task, (list, tuple))
    task_list = [load_task(t) if isinstance(t, str) else t for t in (task if multi else [task])]
    if len(task_list) == 0:
        raise ValueError("argument 'task' must name at least one task, got an empty list")
    check_shared_inputs(task_list)
    check_choice(family, "family", tuple(FAMILY_ARCHS))
    archs = DEFAULT_ARCHS[family] if archs is None else archs
    if len(archs) == 0:
        raise ValueError("argument 'archs' must name at least one architecture, got an empty list")
    for a in archs:
        check_choice(a, "archs", FAMILY_ARCHS[family])
    if family != "rnn" and any(t.output_kind != "classes" for t in task_list):
        raise ValueError(f"family {family!r} needs a classification task (mnist1d, digits), got "
                         f"{[t.name for t in task_list]}")
    if hidden_sizes is None:
        hidden_sizes = (32, 48, 64, 64) if family == "rnn" else (32, 48)
    if len(hidden_sizes) == 0:
        raise ValueError("argument 'hidden_sizes' must hold at least one size, got an empty list")
    for h in hidden_sizes:
        check_positive_int(h, "hidden_sizes")
    check_positive_int(n_seeds, "n_seeds")
    config = (config or TrainConfig()).validate()
    plan = [(t, a, hidden_sizes[i % len(hidden_sizes)], base_seed + i)
            for t in task_list for a in archs for i in range(n_seeds)]
    if resume and out is None:
        raise ValueError("argument 'resume' needs 'out', the population folder to continue")
    if out is not None:
        _io.check_output_folder(out, "out", (MANIFEST,), resume=resume, overwrite=overwrite)
    finished = _finished_members(out, asdict(config)) if resume else {}
    tasks = {t.name: t for t in task_list} if multi else None
    members = []
    bar = tqdm(total=len(plan) * config.epochs, desc="training base models", unit="epoch", disable=not progress)
    for t, arch, hidden, seed in plan:
        t0 = time.perf_counter()
        mid = f"{arch}-h{hidden}-s{seed}" if family == "rnn" else f"{family}-{arch}-w{hidden}-s{seed}"
        mid = f"{t.name}-{mid}" if multi else mid
        if mid in finished:
            members.append(finished[mid])
            bar.update(config.epochs)
            continue
        bar.set_description(f"training {mid}")
        model = train_base_model(arch, hidden, t, seed, config, progress=bar, family=family)
        acc = evaluate(model, t)
        cfg = {**asdict(config), "train_seconds": round(time.perf_counter() - t0, 2)}
        members.append(Member(mid, arch, hidden, seed, acc, model, cfg, t.name if multi else ""))
        if out is not None:  # every finished model is on disk before the next one starts
            Population(task_list[0], members, tasks).save(out)
    bar.close()
    pop = Population(task_list[0], members, tasks)
    if out is not None:
        pop.save(out)
    return pop


def _finished_members(out, config: Dict) -> Dict[str, Member]:
    """Members already trained in ``out`` with the same settings (empty when there is no manifest)."""
    if not (Path(out) / MANIFEST).is_file():
        return {}
    same = lambda m: {k: v for k, v in m.train_config.items() if k != "train_seconds"} == config  # noqa: E731
    return {m.id: m for m in Population.load(out).members if same(m)}
