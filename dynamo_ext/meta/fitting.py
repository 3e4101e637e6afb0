"""Fitting a DYNAMO meta-model to a population: the training loop and the refinement of embeddings.

``fit`` trains the meta-model's shared weights, the model embeddings theta_n
and the hidden maps A_n jointly on the loss of ``dynamo_ext.meta.loss``
(DESIGN.md section 1, arXiv:2302.14078 section 2), single-process or
distributed, from a Population, a Recording or a StreamedRecording, and
resumably (``dynamo_ext.meta.checkpoint``).
"""
from __future__ import annotations

import math
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Union

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .._checks import check_tensor
from ..population.population import Population
from ..population.recording import Recording
from ..population.streaming import StreamedRecording, StreamedTargets, record_to_disk
from .checkpoint import (
    CHECKPOINT,
    _known,
    load_training_state,
    save_meta,
    save_training_state,
)
from .cnn import MetaCNN
from .config import FitConfig, FitResult
from .distributed import (
    Shard,
    all_reduce_sum,
    current_shard,
    is_main_process,
    sync_model_parameters,
    sync_standardisation,
    wrap,
)
from .loss import Targets, dynamo_loss
from .rnn import MetaModel, MetaRNN


def fit(population: Union[Population, Recording, StreamedRecording], config: Optional[FitConfig] = None, *,
        progress: bool = True, out: Optional[Union[str, Path]] = None, resume: bool = False,
        distributed: bool = False, **overrides) -> FitResult:
    """Fit a DYNAMO meta-model to a population (DESIGN.md section 1).

    Minibatches mix models: each row draws a base model and a probe sequence
    uniformly. A population of CNNs (dynamo_ext.population.base_cnn) gets a MetaCNN
    (dynamo_ext.meta.cnn) whose width is ``state_size``; ``cell`` and
    ``backend`` then do not apply. Adam with a cosine-decayed learning rate; deterministic for a
    given ``seed``.

    Args:
        population: a Population (recorded on its task's training inputs,
            first ``max_sequences``, each followed by ``relax_steps`` of weak noise
            input: ``relaxing_probes``), a Recording, or a StreamedRecording
            (dynamo_ext.population.streaming: read from disk batch by batch).
        config: FitConfig; keyword ``overrides`` replace its fields.
        out: optional folder; the fitted meta-model is saved there
            (``save_meta``), atomically. With ``checkpoint_every`` > 0 the
            whole training state is also saved there every that many steps
            (dynamo_ext.meta.checkpoint, one file replaced atomically).
        resume: continue from ``out``'s checkpoint when there is one (the
            same settings and population are required); the result equals an
            uninterrupted run's.
        memory_budget_gb (a FitConfig field): a Population whose recording would take more memory
            than this (``recording_bytes``) is recorded to disk one model at a time and streamed
            batch by batch (in ``recording_dir``, or a temporary folder removed afterwards), with
            the same losses as in memory; one line says so when ``progress``.
        quality_threshold (a FitConfig field): after fitting a Population, every base model's
            held-out emulation is measured (``check_quality``) and the models whose hidden R^2 is
            below it are named (``FitResult.poorly_emulated``; one line when ``progress``). Not run
            by a distributed fit.
        distributed: fit as one rank of the initialised torch.distributed
            process group (dynamo_ext.meta.distributed): this rank records or reads
            only its own block of base models, DistributedDataParallel sums the
            gradients, and the loss history equals a single process's up to
            rounding. Only rank 0 writes to ``out``. Every rank returns the
            same meta-model.

    Returns:
        FitResult with the MetaRNN or MetaCNN (``meta.model_ids`` names the base models in
        embedding-table order) and the loss history.

    Raises:
        ValueError: an empty population, a bad setting (named), NaN/Inf in
            the recording, a ``recording_dir`` that holds files, ``resume`` without
            ``out``, a checkpoint written with other settings, ``distributed``
            without a process group or with fewer models than ranks.
    """
    if resume and out is None:
        raise ValueError("argument 'resume' needs 'out', the folder holding the checkpoint")
    config = FitConfig(**{**asdict(config or FitConfig()), **_known(overrides)}).validate()
    dtype = getattr(torch, config.dtype)
    if not isinstance(population, (Population, Recording, StreamedRecording)):
        raise ValueError("argument 'population' must be a Population, Recording or StreamedRecording, got "
                         f"{type(population).__name__}")
    n_models = len(population.members) if isinstance(population, Population) else population.n_models
    if n_models == 0:
        raise ValueError("argument 'population' must hold at least one base model, got an empty population")
    shard = current_shard(n_models) if distributed else None
    held = shard.models if shard is not None else None
    family, layer_channels = population.family, population.layer_channels
    storage = torch.float16 if config.recording_dtype == "float16" else None
    scratch, given = None, population
    if isinstance(population, Population) and shard is None and _over_budget(population, config, dtype, progress):
        scratch = _ScratchRecording(population, config)
        population = scratch.recording
    if isinstance(population, Population):
        ids, state_sizes = population.ids, [m.state_size for m in population.members]
        rec = population.record(x=relaxing_probes(population, config), models=held)
        x = rec.x
        targets = Targets(rec, dtype, models=held, storage=storage)
        n_outputs = rec.outputs.shape[-1]
    elif isinstance(population, Recording):
        ids, state_sizes, x = None, population.state_sizes, population.x
        rec = population if held is None else Recording(
            population.x, [population.hidden[n] for n in held], population.outputs[held], population.output_kind,
            family)
        targets = Targets(rec, dtype, models=held, storage=storage)
        n_outputs = population.outputs.shape[-1]
    else:
        ids, state_sizes, x = population.ids, population.state_sizes, population.x
        targets = StreamedTargets(population, dtype, models=held)
        n_outputs = population.n_outputs
    rec = None  # the targets hold what the fit reads: the raw recording is not kept through the fit
    check_tensor(x, "recording.x", ndim=3)

    output_kind = population.task.output_kind if isinstance(population, Population) else population.output_kind
    torch.manual_seed(config.seed)
    if family == "rnn":
        meta = MetaRNN(n_models, x.shape[-1], n_outputs, state_sizes, state_size=config.state_size,
                       embedding_dim=config.embedding_dim, cell=config.cell, backend=config.backend,
                       output_kind=output_kind, model_ids=ids)
    else:  # the CNN case: FitConfig.state_size is the meta-CNN's width
        meta = MetaCNN(n_models, x.shape[-1], x.shape[1], n_outputs, layer_channels, family=family,
                       width=config.state_size, embedding_dim=config.embedding_dim, output_kind=output_kind,
                       model_ids=ids)
    meta = meta.to(device=config.device, dtype=dtype)
    if shard is not None:
        sync_standardisation(meta, targets.means, targets.scales, shard)
    else:
        for n, mp in enumerate(meta.maps):
            mp.mean.copy_(targets.means[n])
            mp.scale.copy_(targets.scales[n])
    checkpoint = Path(out) / CHECKPOINT if out is not None and (config.checkpoint_every or resume) else None
    try:
        history = train_loop(meta, list(meta.parameters()), targets, config,
                             sample_models=lambda g, b: torch.randint(n_models, (b,), generator=g),
                             desc="fitting meta-model", progress=progress, checkpoint=checkpoint, resume=resume,
                             shard=shard)
        if config.refine_steps:
            history["history"]["refine_loss"] = refine_embeddings(meta, targets, config, progress=progress,
                                                                  shard=shard)
    finally:
        del targets
        if scratch is not None:
            scratch.close()
    meta.eval()
    result = FitResult(meta, history["history"], config, history["seconds"])
    if scratch is not None:
        result.extra["streamed_recording"] = scratch.info
    if isinstance(given, Population) and config.quality_threshold is not None and shard is None:
        check_quality(result, given, progress=progress)
    if out is not None and is_main_process():
        save_meta(meta, out, history=result.history, fit_config=asdict(config))
    return result


def check_quality(result: FitResult, population: Population, progress: bool = True) -> List[str]:
    """The per-model emulation check after a fit: ``emulation`` on the task's held-out inputs into
    ``result.extra["emulation"]``; the members with hidden R^2 below ``result.config.quality_threshold``
    into ``result.extra["poorly_emulated"]`` (returned), named in one line when ``progress``."""
    from .evaluate import emulation

    rows = emulation(result.meta, population)
    threshold = result.config.quality_threshold
    bad = [r["id"] for r in rows if not r["hidden_r2"] >= threshold]
    result.extra["emulation"] = rows
    result.extra["poorly_emulated"] = bad
    if progress:
        r2s = sorted(r["hidden_r2"] for r in rows)
        line = (f"fit: held-out hidden R^2 median {r2s[len(r2s) // 2]:.3f}, min {r2s[0]:.3f}; "
                f"{len(bad)} of {len(rows)} models below {threshold:g}")
        if bad:
            line += ": " + ", ".join(bad[:20]) + (f", ... ({len(bad) - 20} more)" if len(bad) > 20 else "")
        print(line, file=sys.stderr, flush=True)
    return bad


def recording_bytes(population: Population, config: FitConfig, dtype: torch.dtype) -> int:
    """Memory an in-memory fit's recording takes: per model the float32 hidden states and their
    standardised copy in ``dtype`` (or float16 with ``recording_dtype="float16"``) ([S, T, d_n] each),
    and the outputs alike."""
    x = relaxing_probes(population, config)
    steps = x.shape[1] if population.family == "rnn" else 1
    kept = torch.float16 if config.recording_dtype == "float16" else dtype
    per_value = 4 + torch.finfo(kept).bits // 8
    units = sum(m.state_size for m in population.members) + len(population) * population.task.n_outputs
    return int(x.shape[0]) * int(steps) * units * per_value


def _over_budget(population: Population, config: FitConfig, dtype: torch.dtype, progress: bool) -> bool:
    if config.memory_budget_gb is None:
        return False
    need = recording_bytes(population, config, dtype)
    over = need > config.memory_budget_gb * 2 ** 30
    if over and progress:
        print(f"fit: the recording of {len(population)} models would take {need / 2 ** 30:.1f} GiB, over "
              f"memory_budget_gb={config.memory_budget_gb:g}: recording to disk and streaming it batch by batch",
              file=sys.stderr, flush=True)
    return over


class _ScratchRecording:
    """A streamed recording of a Population written for one fit (``record_to_disk`` on its relaxing
    probes), in ``config.recording_dir`` or a temporary folder that ``close`` removes."""

    def __init__(self, population: Population, config: FitConfig):
        if config.recording_dir and Path(config.recording_dir).exists() and (
                not Path(config.recording_dir).is_dir() or any(Path(config.recording_dir).iterdir())):
            raise ValueError(f"argument 'recording_dir' must be a new or empty folder (a streamed recording is "
                             f"written there), got {config.recording_dir!r}, which holds files")
        self._tmp = None if config.recording_dir else tempfile.TemporaryDirectory(prefix="dynamo-recording-")
        folder = Path(config.recording_dir) if config.recording_dir else Path(self._tmp.name)
        t0 = time.perf_counter()
        self.recording = record_to_disk(population, folder, max_sequences=None,
                                        x=relaxing_probes(population, config),
                                        dtype=getattr(torch, config.recording_dtype))
        self.info = {"folder": None if self._tmp else str(folder), "bytes_on_disk": self.recording.disk_bytes(),
                     "record_seconds": time.perf_counter() - t0}

    def close(self) -> None:
        self.recording = None
        if self._tmp is not None:
            self._tmp.cleanup()


def relax_steps(population: Population, config: FitConfig) -> int:
    """Relax steps appended to each probe sequence (FitConfig.relax_steps; None: one probe length
    for real outputs at every step, 0 for classes read at the last step; CNNs: 0)."""
    if population.family != "rnn":
        return 0
    if config.relax_steps is not None:
        return config.relax_steps
    return population.task.seq_len if population.task.output_kind == "real" else 0


def relaxing_probes(population: Population, config: FitConfig) -> Tensor:
    """The probe inputs of a fit [S, T + relax, I]: the task's first ``max_sequences`` training
    inputs, each followed by ``relax_steps(population, config)`` steps of Gaussian input of standard
    deviation ``relax_noise`` (zero input where it is 0), on which the base models are recorded.
    Measured on a fresh flip-flop population (README, "Dynamical fidelity"): with the defaults the
    meta-model at every theta_n has its base model's 8 attractors and memory; with the task's
    inputs only it kept 2-6 of them and lost 5-17 points of accuracy over long silences."""
    x = population.task.x_train
    if config.max_sequences is not None:
        x = x[:config.max_sequences]
    steps = relax_steps(population, config)
    if steps:
        tail = x.new_zeros(x.shape[0], steps, x.shape[2])
        if config.relax_noise > 0:
            g = torch.Generator().manual_seed(config.seed + 7919)
            tail = config.relax_noise * torch.randn(tail.shape, generator=g, dtype=tail.dtype)
        x = torch.cat([x, tail], dim=1)
    return x


class TouchedAdam(torch.optim.Adam):
    """torch.optim.Adam whose ``step`` and ``zero_grad`` visit only the parameters that have a gradient.

    A minibatch reaches the maps A_n of the models it holds only; Adam already leaves a parameter
    without a gradient untouched (its moments and step count included), but it still walks every
    parameter in Python, twice a step: with 1024 base models, 2048 map tensors. Here ``step`` hands
    Adam the parameters with a gradient (the same update, bit for bit) and remembers them, and the
    next ``zero_grad`` clears those (or every parameter, when no step came in between)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._touched = None

    @torch.no_grad()
    def step(self, closure=None):
        everything = [group["params"] for group in self.param_groups]
        touched = [[p for p in params if p.grad is not None] for params in everything]
        for group, params in zip(self.param_groups, touched):
            group["params"] = params
        try:
            loss = super().step(closure)
        finally:
            for group, params in zip(self.param_groups, everything):
                group["params"] = params
        self._touched = [p for params in touched for p in params]
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        if self._touched is None or not set_to_none:
            super().zero_grad(set_to_none)
        else:
            for p in self._touched:
                p.grad = None
        self._touched = None


def make_optimizer(params, lr: float) -> torch.optim.Adam:
    """Adam as every fit uses it: PyTorch's fused implementation (one kernel over all parameters;
    0.13 ms a step against 0.47 ms for the per-parameter loop on the fit-step benchmark's 23
    parameters, CPU), visiting only the parameters with a gradient (``TouchedAdam``)."""
    return TouchedAdam(params, lr=lr, fused=True)


def train_loop(meta: MetaModel, params, targets: Targets, config: FitConfig, sample_models, desc: str,
               progress: bool = True, checkpoint: Optional[Path] = None, resume: bool = False,
               shard: Optional[Shard] = None) -> Dict:
    """Adam + cosine schedule over minibatches of (model, sequence) rows; returns the history.

    With ``checkpoint`` (a path), the training state is saved there every
    ``config.checkpoint_every`` steps and after the last; with ``resume`` it is
    first restored from there if the file exists. With ``shard``
    (dynamo_ext.meta.distributed) each rank computes the loss on its own models'
    rows under DistributedDataParallel, and rank 0 writes the checkpoint."""
    g = torch.Generator().manual_seed(config.seed)
    opt = make_optimizer(params, config.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, config.steps) / config.steps)))
    history: Dict[str, List[float]] = {"loss": [], "loss_h": [], "loss_y": [], "loss_theta": []}
    # settings that do not change the result stay out of the checkpoint's compatibility check
    unchecked = ("checkpoint_every", "device", "memory_budget_gb", "recording_dir", "quality_threshold")
    settings = {**{k: v for k, v in asdict(config).items() if k not in unchecked},
                "model_ids": list(meta.model_ids), "desc": desc}
    start = 0
    if resume and checkpoint is not None:
        restored = load_training_state(checkpoint, meta, opt, sched, g, settings)
        if restored is not None:
            start, history = restored["step"], restored["history"]
    lambdas = (config.lambda_h, config.lambda_y, config.lambda_theta)
    ddp = wrap(meta, dynamo_loss) if shard is not None else None
    S = targets.x.shape[0]
    t0 = time.perf_counter()
    meta.train()
    with tqdm(range(start, config.steps), desc=desc, unit="step", disable=not progress or not is_main_process(),
              initial=start, total=config.steps) as bar:
        for step in bar:
            model_idx = sample_models(g, config.batch_size)
            seq_idx = torch.randint(S, (config.batch_size,), generator=g)
            opt.zero_grad(set_to_none=True)
            if ddp is None:
                losses = dynamo_loss(meta, targets, model_idx, seq_idx, *lambdas)
                losses["loss"].backward()
            else:
                rows = shard.rows(model_idx)
                losses = ddp(targets, model_idx[rows], seq_idx[rows], *lambdas, batch_rows=config.batch_size,
                             theta_rows=shard.models)
                (losses["loss"] * shard.world).backward()  # DDP averages over ranks: this sums the shares
                losses = _sum_over_ranks(losses)
            opt.step()
            sched.step()
            for k, v in losses.items():
                history[k].append(float(v.detach()))
            if not math.isfinite(history["loss"][-1]):
                raise RuntimeError(f"{desc}: the loss became {history['loss'][-1]} at step {step}; "
                                   "lower 'lr' or check the recording")
            if step % 20 == 0:
                bar.set_postfix(loss=f"{history['loss'][-1]:.4f}")
            done = step + 1
            if checkpoint is not None and config.checkpoint_every and is_main_process() and (
                    done % config.checkpoint_every == 0 or done == config.steps):
                save_training_state(checkpoint, meta, opt, sched, g, done, history, settings)
    return {"history": history, "seconds": time.perf_counter() - t0}


def _sum_over_ranks(losses: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Every rank's share of each loss term added up (one all-reduce), detached."""
    keys = list(losses)
    total = all_reduce_sum(torch.stack([losses[k].detach() for k in keys]))
    return dict(zip(keys, total))


def refine_embeddings(meta: MetaModel, targets: Targets, config: FitConfig, progress: bool = True,
                      shard: Optional[Shard] = None) -> List[float]:
    """Polish every theta_n and A_n with the shared weights phi frozen, on one fixed set of probe
    sequences (the first ``config.refine_sequences``) for every model: a deterministic, full-batch
    version of the DYNAMO loss, so that each model's embedding settles at a minimum of its own loss
    instead of where minibatch noise left it. With phi frozen the loss separates over models, so
    base models with the same dynamics up to a change of hidden coordinates (A_n absorbs it) share
    their minimum. Adam (elementwise, so each model descends on its own) with a cosine decay from
    ``config.refine_lr`` over ``config.refine_steps`` steps.

    With ``shard`` (distributed fitting) each rank polishes its own models
    (the loss separates, so no gradient is exchanged) and the results are
    then shared (``distributed.sync_model_parameters``).

    Returns:
        The loss per step.
    """
    S = min(config.refine_sequences, targets.x.shape[0])
    models = torch.arange(meta.n_models) if shard is None else torch.as_tensor(shard.models, dtype=torch.long)
    model_idx = models.repeat_interleave(S)
    seq_idx = torch.arange(S).repeat(len(models))
    params = [meta.theta, *(p for mp in meta.maps for p in mp.parameters())]
    frozen = [p for p in meta.parameters() if p.requires_grad and not any(p is q for q in params)]
    for p in frozen:
        p.requires_grad_(False)
    opt = make_optimizer(params, config.refine_lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, config.refine_steps) / config.refine_steps)))
    losses: List[float] = []
    try:
        for _ in tqdm(range(config.refine_steps), desc="refining embeddings", unit="step",
                      disable=not progress or not is_main_process()):
            loss = dynamo_loss(meta, targets, model_idx, seq_idx, config.lambda_h, config.lambda_y,
                               config.lambda_theta, batch_rows=meta.n_models * S,
                               theta_rows=None if shard is None else shard.models)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.detach())
    finally:
        for p in frozen:
            p.requires_grad_(True)
    if shard is not None:
        sync_model_parameters(meta, shard)
        return all_reduce_sum(torch.stack(losses)).tolist() if losses else []
    return [float(v) for v in losses]
