"""Fitting a DYNAMO meta-model to a population, and its checkpoints.

Loss (DESIGN.md section 1, after arXiv:2302.14078), averaged over the rows of
a minibatch (each row: one base model n and one probe sequence) and time:
    L = lambda_h * ||A_n z_t + c_n - htilde^n_t||^2 / d_n
      + lambda_y * KL(softmax(y^n_t) || softmax(yhat_t))     (MSE for real outputs)
      + lambda_theta * mean_n ||theta_n||^2
with htilde the base hidden states standardised per model (per-unit mean,
one scale per model; both kept in the meta-model's HiddenMap buffers).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from . import _io
from .checkpoint import CHECKPOINT, load_training_state, save_training_state
from .distributed import (Shard, all_reduce_sum, current_shard, is_main_process, sync_model_parameters,
                          sync_standardisation, wrap)
from ._checks import check_choice, check_positive_float, check_positive_int, check_tensor
from .hidden_loss import grouped_hidden_loss, has_linear_maps
from .meta import BACKENDS, CELLS, MetaModel, MetaRNN
from .meta_cnn import MetaCNN
from .streaming import StreamedRecording, StreamedTargets
from .zoo import Population, Recording

META_WEIGHTS = "meta.safetensors"
META_CONFIG = "meta.json"


@dataclass
class FitConfig:
    """Settings of ``fit``; every field can also be passed to ``fit`` as a keyword."""

    state_size: int = 64
    embedding_dim: int = 2
    cell: str = "gru"
    backend: str = "fused"
    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-2
    lambda_h: float = 1.0
    lambda_y: float = 1.0
    lambda_theta: float = 1e-3
    max_sequences: Optional[int] = 2000
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"  # "cpu", "cuda" or "cuda:<index>"
    checkpoint_every: int = 0  # with fit(out=...): save the training state every this many steps (0: never)
    refine_steps: int = 0  # after fitting: steps of refine_embeddings (0: none)
    refine_sequences: int = 64
    refine_lr: float = 1e-2
    # steps of weak input (relax_noise) appended to every probe sequence of a Population of RNNs before
    # it is recorded, so that the base models relax onto their attractors while recorded (issue
    # "dynamical fidelity", README);
    # None: one probe length for tasks with outputs at every step (the pulse tasks), 0 for tasks
    # read at the last step (MNIST-1D, digits); 0: the task's inputs only
    relax_steps: Optional[int] = None
    # standard deviation of Gaussian input noise during those steps (0: exact silence): the base models
    # fluctuate about their attractors, which shows the meta-model their contraction (the Jacobian)
    relax_noise: float = 0.15

    def validate(self) -> "FitConfig":
        check_positive_int(self.state_size, "state_size")
        check_positive_int(self.embedding_dim, "embedding_dim")
        check_choice(self.cell, "cell", CELLS)
        check_choice(self.backend, "backend", BACKENDS)
        check_positive_int(self.steps, "steps")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_float(self.lr, "lr")
        for name in ("lambda_h", "lambda_y", "lambda_theta"):
            check_positive_float(getattr(self, name), name, allow_zero=True)
        if self.max_sequences is not None:
            check_positive_int(self.max_sequences, "max_sequences")
        check_choice(self.dtype, "dtype", ("float32", "float64"))
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"argument 'device' must be 'cpu', 'cuda' or 'cuda:<index>', got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"argument 'device' is {self.device!r} but no CUDA device is available")
        check_positive_int(self.refine_steps, "refine_steps", minimum=0)
        check_positive_int(self.checkpoint_every, "checkpoint_every", minimum=0)
        check_positive_int(self.refine_sequences, "refine_sequences")
        check_positive_float(self.refine_lr, "refine_lr")
        if self.relax_steps is not None:
            check_positive_int(self.relax_steps, "relax_steps", minimum=0)
        check_positive_float(self.relax_noise, "relax_noise", allow_zero=True)
        return self


@dataclass
class FitResult:
    """What ``fit`` returns: the meta-model, its loss history and settings.

    ``history`` maps "loss", "loss_h", "loss_y", "loss_theta" to one float per step.
    """

    meta: MetaModel
    history: Dict[str, List[float]]
    config: FitConfig
    seconds: float = 0.0
    extra: Dict = field(default_factory=dict)

    def __repr__(self) -> str:
        loss = self.history.get("loss") or [float("nan")]
        return (f"FitResult(meta={type(self.meta).__name__}(n_models={self.meta.n_models}, "
                f"embedding_dim={self.meta.embedding_dim}), steps={len(self.history.get('loss', []))}, "
                f"final_loss={loss[-1]:.4g}, seconds={self.seconds:.1f})")


class Targets:
    """Standardised hidden-state and output targets of a recording, ready for minibatches.

    ``models`` lists the population indices of the recording's models, in
    order (default: all of them); with torch.distributed each rank holds only
    its own share. ``hidden``, ``means`` and ``scales`` map a population index
    to that model's tensor; ``outputs[model_idx, seq_idx]`` takes population indices.
    """

    def __init__(self, rec: Recording, dtype: torch.dtype, models: Optional[Sequence[int]] = None):
        self.models = list(range(rec.n_models)) if models is None else [int(n) for n in models]
        if len(self.models) != rec.n_models:
            raise ValueError(f"argument 'models' must name the recording's {rec.n_models} models, "
                             f"got {len(self.models)} indices")
        self.x = rec.x.to(dtype)
        self.means, self.scales, self.hidden = {}, {}, {}
        for n, h in zip(self.models, rec.hidden):
            check_tensor(h, f"recording.hidden[{n}]", ndim=3)
            mean = h.mean(dim=(0, 1))
            scale = (h - mean).pow(2).mean().sqrt().clamp(min=1e-6)
            self.means[n] = mean
            self.scales[n] = scale
            self.hidden[n] = ((h - mean) / scale).to(dtype)
        check_tensor(rec.outputs, "recording.outputs", ndim=4)
        self.output_kind = rec.output_kind
        y = rec.outputs.to(dtype)
        self.outputs = ModelRows(F.log_softmax(y, dim=-1) if rec.output_kind == "classes" else y, self.models)


class ModelRows:
    """``[model, sequences]`` indexing, by population index, of a [N_held, S, ...] tensor of held models."""

    def __init__(self, values: Tensor, models: Sequence[int]):
        self.values = values
        self.lookup = torch.full((max(models, default=-1) + 1,), -1, dtype=torch.long)
        self.lookup[torch.as_tensor(list(models), dtype=torch.long)] = torch.arange(len(models))

    def __getitem__(self, key):
        model, seq = key
        return self.values[self.lookup[model], seq]


def _log_softmax_last(y: Tensor) -> Tensor:
    """log_softmax over the last dimension (the classes), computed over the first dimension of a
    class-first copy: PyTorch's CPU kernel over a short last dimension is slow (fit-step
    profile: 0.8 ms for [256, 40, 10], 0.08 ms over the leading dimension); same values."""
    return F.log_softmax(y.movedim(-1, 0).contiguous(), 0).movedim(0, -1)


def dynamo_loss(meta: MetaModel, targets: Targets, model_idx: Tensor, seq_idx: Tensor,
                lambda_h: float, lambda_y: float, lambda_theta: float, batch_rows: Optional[int] = None,
                theta_rows: Optional[Sequence[int]] = None) -> Dict[str, Tensor]:
    """The DYNAMO loss on one minibatch of (model, sequence) rows; see the module docstring.

    ``batch_rows`` (default ``len(model_idx)``) and ``theta_rows`` (default all
    models) let a rank of a distributed fit compute its share of a larger
    minibatch: its rows' sums divided by the whole minibatch's row count, and the
    theta penalty of its own models only, so that the shares add up to the loss.
    """
    B = len(model_idx) if batch_rows is None else batch_rows
    device = meta.theta.device
    loss_h = meta.theta.new_zeros(())
    loss_y = meta.theta.new_zeros(())
    if len(model_idx):
        # the loss sums over rows: grouping them by model first makes each model's rows of z
        # one contiguous slice (no per-model gather, no scatter in the backward)
        order = torch.argsort(model_idx, stable=True)
        model_idx, seq_idx = model_idx[order], seq_idx[order]
        models, counts = torch.unique_consecutive(model_idx, return_counts=True)
        x = targets.x[seq_idx].to(device)
        z, yhat = meta(x, model_idx.to(device))
        T = z.shape[1]  # steps of the recording: the sequence length, or 1 for a CNN
        ids, sizes = models.tolist(), counts.tolist()
        hidden = [targets.hidden[n][seq_n].to(device) for n, seq_n in zip(ids, seq_idx.split(sizes))]
        if has_linear_maps(meta.maps, ids):
            loss_h = grouped_hidden_loss(z, sizes, [meta.maps[n] for n in ids], hidden)
        else:
            for n, z_n, h_n in zip(ids, z.split(sizes), hidden):
                pred = meta.maps[n](z_n)
                loss_h = loss_h + F.mse_loss(pred, h_n, reduction="sum") / pred.shape[-1]
        loss_h = loss_h / (B * T)
        tgt = targets.outputs[model_idx, seq_idx].to(device)
        if targets.output_kind == "classes":
            loss_y = F.kl_div(_log_softmax_last(yhat), tgt, log_target=True, reduction="sum") / (B * T)
        else:
            loss_y = F.mse_loss(yhat, tgt, reduction="sum") / (B * T * tgt.shape[-1])
    theta = meta.theta if theta_rows is None else meta.theta[torch.as_tensor(list(theta_rows), dtype=torch.long)]
    loss_theta = theta.pow(2).sum() / meta.n_models
    loss = lambda_h * loss_h + lambda_y * loss_y + lambda_theta * loss_theta
    return {"loss": loss, "loss_h": loss_h, "loss_y": loss_y, "loss_theta": loss_theta}


def fit(population: Union[Population, Recording, StreamedRecording], config: Optional[FitConfig] = None, *,
        progress: bool = True, out: Optional[Union[str, Path]] = None, resume: bool = False,
        distributed: bool = False, **overrides) -> FitResult:
    """Fit a DYNAMO meta-model to a population (DESIGN.md section 1).

    Minibatches mix models: each row draws a base model and a probe sequence
    uniformly. A population of CNNs (dynamo_ext.cnn) gets a MetaCNN
    (dynamo_ext.meta_cnn) whose width is ``state_size``; ``cell`` and
    ``backend`` then do not apply. Adam with a cosine-decayed learning rate; deterministic for a
    given ``seed``.

    Args:
        population: a Population (recorded on its task's training inputs,
            first ``max_sequences``, each followed by ``relax_steps`` of weak noise
            input: ``relaxing_probes``), a Recording, or a StreamedRecording
            (dynamo_ext.streaming: read from disk batch by batch).
        config: FitConfig; keyword ``overrides`` replace its fields.
        out: optional folder; the fitted meta-model is saved there
            (``save_meta``), atomically. With ``checkpoint_every`` > 0 the
            whole training state is also saved there every that many steps
            (dynamo_ext.checkpoint, one file replaced atomically).
        resume: continue from ``out``'s checkpoint when there is one (the
            same settings and population are required); the result equals an
            uninterrupted run's.
        distributed: fit as one rank of the initialised torch.distributed
            process group (dynamo_ext.distributed): this rank records or reads
            only its own block of base models, DistributedDataParallel sums the
            gradients, and the loss history equals a single process's up to
            rounding. Only rank 0 writes to ``out``. Every rank returns the
            same meta-model.

    Returns:
        FitResult with the MetaRNN or MetaCNN (``meta.model_ids`` names the base models in
        embedding-table order) and the loss history.

    Raises:
        ValueError: an empty population, a bad setting (named), NaN/Inf in
            the recording, ``resume`` without ``out``, a checkpoint written
            with other settings, ``distributed`` without a process group or
            with fewer models than ranks.
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
    if isinstance(population, Population):
        ids, state_sizes = population.ids, [m.state_size for m in population.members]
        rec = population.record(x=relaxing_probes(population, config), models=held)
        x = rec.x
        targets = Targets(rec, dtype, models=held)
        n_outputs = rec.outputs.shape[-1]
    elif isinstance(population, Recording):
        ids, state_sizes, x = None, population.state_sizes, population.x
        rec = population if held is None else Recording(
            population.x, [population.hidden[n] for n in held], population.outputs[held], population.output_kind,
            family)
        targets = Targets(rec, dtype, models=held)
        n_outputs = population.outputs.shape[-1]
    else:
        ids, state_sizes, x = population.ids, population.state_sizes, population.x
        targets = StreamedTargets(population, dtype, models=held)
        n_outputs = population.n_outputs
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
    history = train_loop(meta, list(meta.parameters()), targets, config,
                         sample_models=lambda g, b: torch.randint(n_models, (b,), generator=g),
                         desc="fitting meta-model", progress=progress, checkpoint=checkpoint, resume=resume,
                         shard=shard)
    if config.refine_steps:
        history["history"]["refine_loss"] = refine_embeddings(meta, targets, config, progress=progress, shard=shard)
    meta.eval()
    result = FitResult(meta, history["history"], config, history["seconds"])
    if out is not None and is_main_process():
        save_meta(meta, out, history=result.history, fit_config=asdict(config))
    return result


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


def make_optimizer(params, lr: float) -> torch.optim.Adam:
    """Adam as every fit uses it: PyTorch's fused implementation (one kernel over all parameters;
    0.13 ms a step against 0.47 ms for the per-parameter loop on the fit-step benchmark's 23
    parameters, CPU)."""
    return torch.optim.Adam(params, lr=lr, fused=True)


def train_loop(meta: MetaModel, params, targets: Targets, config: FitConfig, sample_models, desc: str,
               progress: bool = True, checkpoint: Optional[Path] = None, resume: bool = False,
               shard: Optional[Shard] = None) -> Dict:
    """Adam + cosine schedule over minibatches of (model, sequence) rows; returns the history.

    With ``checkpoint`` (a path), the training state is saved there every
    ``config.checkpoint_every`` steps and after the last; with ``resume`` it is
    first restored from there if the file exists. With ``shard``
    (dynamo_ext.distributed) each rank computes the loss on its own models'
    rows under DistributedDataParallel, and rank 0 writes the checkpoint."""
    g = torch.Generator().manual_seed(config.seed)
    opt = make_optimizer(params, config.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, config.steps) / config.steps)))
    history: Dict[str, List[float]] = {"loss": [], "loss_h": [], "loss_y": [], "loss_theta": []}
    settings = {**{k: v for k, v in asdict(config).items() if k not in ("checkpoint_every", "device")},
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


def _known(overrides: Dict) -> Dict:
    names = {f.name for f in fields(FitConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown fit settings {unknown}; known: {sorted(names)}")
    return overrides


def save_meta(meta: MetaModel, folder: Union[str, Path], history: Optional[Dict] = None,
              fit_config: Optional[Dict] = None) -> Path:
    """Save a meta-model: meta.safetensors (weights) + meta.json (config, history), each atomically."""
    folder = Path(folder)
    _io.write_tensors(folder / META_WEIGHTS, meta.state_dict())
    _io.write_json(folder / META_CONFIG, {"format": "dynamo_ext.meta/1", "config": meta.config(),
                                          "dtype": str(meta.theta.dtype).replace("torch.", ""),
                                          "fit_config": fit_config or {}, "history": history or {}})
    return folder


def load_meta(folder: Union[str, Path]) -> MetaModel:
    """Load a meta-model saved by ``save_meta`` / ``fit(out=...)``.

    Raises:
        ValueError: missing folder or file, corrupted JSON or safetensors,
            weights that do not match the config.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"meta-model folder {str(folder)!r} does not exist")
    info = _io.read_json(folder / META_CONFIG, "meta-model config")
    try:
        config = dict(info["config"])
        cls = MetaCNN if config.pop("kind", "rnn") == "cnn" else MetaRNN
        meta = cls(**config).to(getattr(torch, info.get("dtype", "float32")))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"meta-model config {str(folder / META_CONFIG)!r} is corrupted: {exc}") from exc
    state = _io.read_tensors(folder / META_WEIGHTS, "meta-model weights")
    try:
        meta.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"meta-model weights {str(folder / META_WEIGHTS)!r} do not match "
                         f"{str(folder / META_CONFIG)!r}: {exc}") from exc
    meta.eval()
    return meta


def load_history(folder: Union[str, Path]) -> Dict[str, List[float]]:
    """The loss history stored beside a saved meta-model."""
    return _io.read_json(Path(folder) / META_CONFIG, "meta-model config").get("history", {})
