"""Fitting a DYNAMO meta-model to a population: the training loop and the refinement of embeddings.

``fit`` trains the meta-model's shared weights, the model embeddings theta_n
and the hidden maps A_n jointly on the loss of ``dynamo_ext.meta.loss``
(docs/method.md, "The loss"; arXiv:2302.14078 section 2), single-process or
distributed, from a Population, a Recording or a StreamedRecording, and
resumably (``dynamo_ext.meta.checkpoint``).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import List, Optional, Union

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .. import _io
from .._checks import check_positive_int, check_tensor
from ..population.population import Population
from ..population.recording import Recording, RecordingSource
from ..population.streaming import StreamedRecording, StreamedTargets
from .budget import ScratchRecording, check_quality, over_budget
from .checkpoint import (
    CHECKPOINT,
    META_CONFIG,
    META_WEIGHTS,
    known_settings,
    save_meta,
)
from .cnn import MetaCNN
from .config import FitConfig, FitResult
from .distributed import (
    Shard,
    all_reduce_sum,
    current_shard,
    is_main_process,
    sync_model_parameters,
    sync_standardization,
)
from .hidden_loss import has_linear_maps
from .loop import train_loop
from .loss import Targets, dynamo_loss
from .optim import make_optimizer
from .probes import relax_steps, relaxing_probes  # noqa: F401  (relax_steps: part of this module's API)
from .rnn import MetaModel, MetaRNN


def fit(population: Union[Population, Recording, StreamedRecording], config: Optional[FitConfig] = None, *,
        progress: bool = True, out: Optional[Union[str, Path]] = None, resume: bool = False,
        overwrite: bool = False, distributed: bool = False, n_fits: int = 1, **overrides):
    """Fit a DYNAMO meta-model to a population (docs/method.md).

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
        overwrite: let ``out`` hold another fit's meta-model, replaced at the end (else refused before
            any work, as an ``out`` that is a file or cannot be written).
        memory_budget_gb (a FitConfig field): a Population whose recording would take more memory
            than this (``budget.recording_bytes``) is recorded to disk one model at a time and streamed
            batch by batch (in ``recording_dir``, or a temporary folder removed afterwards), with
            the same losses as in memory; one line says so when ``progress``.
        quality_threshold (a FitConfig field): after fitting a Population, every base model's
            held-out emulation is measured (``budget.check_quality``) and the models whose hidden R^2 is
            below it are named (``FitResult.poorly_emulated``; one line when ``progress``). Not run
            by a distributed fit.
        distributed: fit as one rank of the initialised torch.distributed
            process group (dynamo_ext.meta.distributed): this rank records or reads
            only its own block of base models, DistributedDataParallel sums the
            gradients, and the loss history equals a single process's up to
            rounding. Only rank 0 writes to ``out``. Every rank returns the
            same meta-model.
        n_fits: fit this many meta-models, with seeds ``seed``, ``seed + 1``, ..., on one recording
            (made once, with ``seed``'s probe noise, so the first fit is the fit ``n_fits=1`` gives),
            one after the other (each fit already uses every core through PyTorch's
            threads); with ``out``, fit i is saved in ``out/fit-<i>``. Their readings' spread:
            ``dynamo_ext.uses.across_fits`` (docs/guide/trust.md). Not with ``resume``, ``distributed`` or
            ``checkpoint_every``.

    Returns:
        FitResult with the MetaRNN or MetaCNN (``meta.model_ids`` names the base models in
        embedding-table order) and the loss history; with ``n_fits`` > 1 a ``FitSpread`` of the
        FitResults (``meta.spread``).

    Raises:
        ValueError: an empty population, a bad setting (named; ``n_fits`` > 1 with resume, distributed
            or checkpoint_every), NaN/Inf in
            the recording, a ``recording_dir`` that holds files, ``resume`` without
            ``out``, a checkpoint written with other settings, ``distributed``
            without a process group or with fewer models than ranks.
    """
    if resume and out is None:
        raise ValueError("argument 'resume' needs 'out', the folder holding the checkpoint")
    config = FitConfig(**{**asdict(config or FitConfig()), **known_settings(overrides)}).validate()
    n_fits = check_positive_int(n_fits, "n_fits")
    if n_fits > 1 and (resume or distributed or config.checkpoint_every):
        raise ValueError(f"argument 'n_fits' must be 1 with resume, distributed or checkpoint_every (they "
                         f"concern one fit), got {n_fits}")
    if out is not None:
        outs = [Path(out)] if n_fits == 1 else [Path(out) / f"fit-{i}" for i in range(n_fits)]
        for folder in outs:
            _io.check_output_folder(folder, "out", (META_WEIGHTS, META_CONFIG), resume=resume, overwrite=overwrite)
    if not isinstance(population, RecordingSource):
        raise ValueError("argument 'population' must be a Population, Recording or StreamedRecording (the "
                         f"recording protocol, population.recording.RecordingSource), got {type(population).__name__}")
    if population.n_models == 0:
        raise ValueError("argument 'population' must hold at least one base model, got an empty population")
    shard = current_shard(population.n_models) if distributed else None
    results = []
    with _targets(population, config, shard, progress) as (x, targets, streamed):
        for i in range(n_fits):
            cfg = replace(config, seed=config.seed + i)
            checkpoint = Path(out) / CHECKPOINT if out is not None and (cfg.checkpoint_every or resume) else None
            result = _train(population, x, targets, cfg, shard, progress, checkpoint, resume)
            if streamed is not None:
                result.extra["streamed_recording"] = streamed
            results.append(result)
    x = targets = None  # the recording is not kept through the quality checks
    for i, result in enumerate(results):
        if isinstance(population, Population) and config.quality_threshold is not None and shard is None:
            check_quality(result, population, progress=progress)
        if out is not None and is_main_process():
            save_meta(result.meta, outs[i], history=result.history, fit_config=asdict(result.config))
    if n_fits == 1:
        return results[0]
    from .spread import FitSpread

    return FitSpread(results)


@contextmanager
def _targets(population, config: FitConfig, shard: Optional[Shard], progress: bool):
    """(probe inputs x, the loss's Targets, where a streamed recording went or None): the population
    recorded once (to disk and streamed when over the memory budget), the scratch recording removed
    on leaving."""
    dtype = getattr(torch, config.dtype)
    held = shard.models if shard is not None else None
    storage = torch.float16 if config.recording_dtype == "float16" else None
    scratch = None
    if isinstance(population, Population) and shard is None and over_budget(population, config, dtype, progress):
        scratch = ScratchRecording(population, config, progress)
        population = scratch.recording
    try:
        probes = relaxing_probes(population, config) if isinstance(population, Population) else None
        rec = population.fit_recording(probes, held)
        x = rec.x
        targets = (StreamedTargets(rec, dtype, models=held) if isinstance(rec, StreamedRecording)
                   else Targets(rec, dtype, models=held, storage=storage))
        rec = None  # the targets hold what the fit reads: the raw recording is not kept through the fit
        check_tensor(x, "recording.x", ndim=3)
        yield x, targets, (scratch.info if scratch is not None else None)
    finally:
        targets = None
        if scratch is not None:
            scratch.close()


def _build_meta(population, x: Tensor, config: FitConfig) -> MetaModel:
    """A fresh meta-model for the population (MetaRNN, or MetaCNN for CNN populations), initialised from
    ``config.seed`` (a generator of its own: the caller's global random state is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        meta = _new_meta(population, x, config)
    return meta.to(device=config.device, dtype=getattr(torch, config.dtype))


def _new_meta(population, x: Tensor, config: FitConfig) -> MetaModel:
    n_models = population.n_models
    if population.family == "rnn":
        meta = MetaRNN(n_models, x.shape[-1], population.n_outputs, population.state_sizes,
                       state_size=config.state_size, embedding_dim=config.embedding_dim, cell=config.cell,
                       backend=config.backend, output_kind=population.output_kind, model_ids=population.ids,
                       recurrence_rank=config.recurrence_rank)
    else:  # the CNN case: FitConfig.state_size is the meta-CNN's width
        meta = MetaCNN(n_models, x.shape[-1], x.shape[1], population.n_outputs, population.layer_channels,
                       family=population.family, width=config.state_size, embedding_dim=config.embedding_dim,
                       output_kind=population.output_kind, model_ids=population.ids)
    return meta


def _train(population, x: Tensor, targets, config: FitConfig, shard: Optional[Shard], progress: bool,
           checkpoint: Optional[Path], resume: bool) -> FitResult:
    """One meta-model trained on the targets (and its embeddings refined when asked)."""
    meta = _build_meta(population, x, config)
    if shard is not None:
        sync_standardization(meta, targets.means, targets.scales, shard)
    else:
        for n, mp in enumerate(meta.maps):
            mp.mean.copy_(targets.means[n])
            mp.scale.copy_(targets.scales[n])
    n_models = population.n_models
    history = train_loop(meta, list(meta.parameters()), targets, config,
                         sample_models=lambda g, b: torch.randint(n_models, (b,), generator=g),
                         desc="fitting meta-model", progress=progress, checkpoint=checkpoint, resume=resume,
                         shard=shard, pack_maps=shard is None and has_linear_maps(meta.maps))
    if config.refine_steps:
        history["history"]["refine_loss"] = refine_embeddings(meta, targets, config, progress=progress,
                                                              shard=shard)
    meta.eval()
    return FitResult(meta, history["history"], config, history["seconds"])


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
