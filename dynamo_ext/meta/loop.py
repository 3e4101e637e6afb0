"""The training loop every fit runs: Adam with a cosine-decayed learning rate over minibatches of
(base model, probe sequence) rows of the DYNAMO loss (dynamo_ext.meta.loss; docs/method.md, "The
loss"), single-process or as one rank of a distributed fit, checkpointed and resumable.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .checkpoint import load_training_state, save_training_state
from .config import FitConfig
from .distributed import Shard, all_reduce_sum, is_main_process, wrap
from .loss import Targets, dynamo_loss
from .optim import make_optimizer
from .packed import CombinedOptimizer, PackedMaps
from .rnn import MetaModel


def train_loop(meta: MetaModel, params, targets: Targets, config: FitConfig, sample_models, desc: str,
               progress: bool = True, checkpoint: Optional[Path] = None, resume: bool = False,
               shard: Optional[Shard] = None, pack_maps: bool = False) -> Dict:
    """Adam + cosine schedule over minibatches of (model, sequence) rows; returns the history.

    With ``pack_maps`` (every map one nn.Linear; a single process) the maps are held in one table
    while the loop runs and updated row-sparsely (``packed.PackedMaps``: the same Adam update,
    in a number of operations that does not grow with the models in a batch); the maps in
    ``params`` are then left to it.

    With ``checkpoint`` (a path), the training state is saved there every
    ``config.checkpoint_every`` steps and after the last; with ``resume`` it is
    first restored from there if the file exists. With ``shard``
    (dynamo_ext.meta.distributed) each rank computes the loss on its own models'
    rows under DistributedDataParallel, and rank 0 writes the checkpoint."""
    packed = PackedMaps(meta.maps) if pack_maps else None
    try:
        return _train(meta, list(params), targets, config, sample_models, desc, progress, checkpoint, resume, shard,
                      packed)
    finally:
        if packed is not None:
            packed.release()


def _train(meta, params, targets, config, sample_models, desc, progress, checkpoint, resume, shard, packed) -> Dict:
    g = torch.Generator().manual_seed(config.seed)
    in_table = set() if packed is None else {id(p) for p in packed.parameters()}
    opt = make_optimizer([p for p in params if id(p) not in in_table], config.lr)
    # what checkpoints read and write: one Adam's state over every parameter, packed or not
    saved = opt if packed is None else CombinedOptimizer(opt, packed, params)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, config.steps) / config.steps)))
    history: Dict[str, List[float]] = {"loss": [], "loss_h": [], "loss_y": [], "loss_theta": []}
    # settings that do not change the result stay out of the checkpoint's compatibility check
    unchecked = ("checkpoint_every", "device", "memory_budget_gb", "recording_dir", "quality_threshold")
    settings = {**{k: v for k, v in asdict(config).items() if k not in unchecked},
                "model_ids": list(meta.model_ids), "desc": desc}
    start = 0
    if resume and checkpoint is not None:
        restored = load_training_state(checkpoint, meta, saved, sched, g, settings)
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
                losses = dynamo_loss(meta, targets, model_idx, seq_idx, *lambdas, packed=packed)
                losses["loss"].backward()
            else:
                rows = shard.rows(model_idx)
                losses = ddp(targets, model_idx[rows], seq_idx[rows], *lambdas, batch_rows=config.batch_size,
                             theta_rows=shard.models)
                (losses["loss"] * shard.world).backward()  # DDP averages over ranks: this sums the shares
                losses = _sum_over_ranks(losses)
            opt.step()
            if packed is not None:
                packed.step(opt.param_groups[0]["lr"])
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
                save_training_state(checkpoint, meta, saved, sched, g, done, history, settings)
    return {"history": history, "seconds": time.perf_counter() - t0}


def _sum_over_ranks(losses: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Every rank's share of each loss term added up (one all-reduce), detached."""
    keys = list(losses)
    total = all_reduce_sum(torch.stack([losses[k].detach() for k in keys]))
    return dict(zip(keys, total))
