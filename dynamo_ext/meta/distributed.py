"""Distributed fitting on torch.distributed: the population's base models sharded across ranks.

Each rank holds the recordings of its own block of base models only (model n
belongs to rank ``n * world // N``). Every rank draws the same minibatch of
(model, sequence) rows from the same seeded generator and computes the loss
on the rows of its own models, divided by the whole minibatch's size
(``fit.dynamo_loss`` with ``batch_rows``), times the world size;
DistributedDataParallel averages the gradients over ranks, so each step
applies the gradient of the single-process loss. The meta-model's weights
(phi, every theta_n and A_n) are replicated; only the data is split.

Start it with ``torchrun --nproc_per_node K -m dynamo_ext.cli fit --distributed ...``
(gloo on CPU, NCCL on GPUs), or call ``fit(..., distributed=True)`` from a
process group of your own.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import List

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Shard:
    """This rank's share of a population of ``n_models`` base models."""

    rank: int
    world: int
    n_models: int

    def owner(self, n: int) -> int:
        """The rank that holds base model ``n``."""
        return n * self.world // self.n_models

    @cached_property
    def models(self) -> List[int]:
        """Population indices of this rank's base models (a contiguous block)."""
        return [n for n in range(self.n_models) if self.owner(n) == self.rank]

    def rows(self, model_idx: Tensor) -> Tensor:
        """Positions of the minibatch rows whose base model this rank holds."""
        owners = torch.div(model_idx * self.world, self.n_models, rounding_mode="floor")
        return (owners == self.rank).nonzero().squeeze(1)


def current_shard(n_models: int) -> Shard:
    """This process's Shard in the default process group.

    Raises:
        ValueError: no process group has been initialised, or fewer base
            models than ranks.
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError("distributed fitting needs an initialised torch.distributed process group: start the "
                         "program with torchrun and call init_process_group(), or use `dynamo-ext fit --distributed`")
    world = dist.get_world_size()
    if n_models < world:
        raise ValueError(f"distributed fitting needs at least one base model per rank: got {n_models} models "
                         f"for {world} ranks")
    return Shard(dist.get_rank(), world, n_models)


def init_from_env(device: str = "cpu") -> str:
    """Initialise the default process group from torchrun's environment variables.

    Uses NCCL when ``device`` is "cuda" (each rank takes GPU ``LOCAL_RANK``),
    gloo otherwise.

    Returns:
        The device this rank fits on ("cpu" or "cuda:<LOCAL_RANK>").

    Raises:
        ValueError: the torchrun variables (RANK, WORLD_SIZE, MASTER_ADDR,
            MASTER_PORT) are missing, or "cuda" without a GPU.
    """
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ValueError(f"--distributed must run under torchrun (missing environment variables {missing}), e.g. "
                         "torchrun --nproc_per_node 2 -m dynamo_ext.cli fit --distributed POPULATION --out DIR")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"argument 'device' is {device!r} but no CUDA device is available")
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return f"cuda:{local}"
    dist.init_process_group("gloo")
    return "cpu"


def all_reduce_sum(t: Tensor) -> Tensor:
    """Sum ``t`` over ranks in place and return it."""
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def sync_standardization(meta: nn.Module, means: dict, scales: dict, shard: Shard) -> None:
    """Fill every HiddenMap's mean/scale buffers from the rank that holds that model's recording."""
    sizes = [int(mp.mean.numel()) for mp in meta.maps]
    flat = meta.theta.new_zeros(sum(sizes) + len(sizes))
    offsets = torch.tensor([0] + sizes).cumsum(0).tolist()
    for n in shard.models:
        flat[offsets[n]:offsets[n + 1]] = means[n].to(flat)
        flat[offsets[-1] + n] = scales[n].to(flat)
    all_reduce_sum(flat)
    with torch.no_grad():
        for n, mp in enumerate(meta.maps):
            mp.mean.copy_(flat[offsets[n]:offsets[n + 1]])
            mp.scale.copy_(flat[offsets[-1] + n])


def sync_model_parameters(meta: nn.Module, shard: Shard) -> None:
    """Give every rank each model's theta_n and A_n, c_n as its holder computed them.

    For steps that update each model's own parameters on its own rank only
    (``fit.refine_embeddings`` with phi frozen).
    """
    params: List[Tensor] = [meta.theta]
    owned = torch.zeros(meta.n_models, dtype=torch.bool)
    owned[shard.models] = True
    parts = [(meta.theta * owned.to(meta.theta.device).unsqueeze(1)).flatten()]
    for n, mp in enumerate(meta.maps):
        for p in mp.parameters():
            params.append(p)
            parts.append(p.detach().flatten() * float(owned[n]))
    flat = all_reduce_sum(torch.cat([q.detach() for q in parts]))
    with torch.no_grad():
        start = 0
        for p in params:
            p.copy_(flat[start:start + p.numel()].view_as(p))
            start += p.numel()


class LossModule(nn.Module):
    """The DYNAMO loss of one rank's rows as a module, so that DistributedDataParallel can wrap it
    (its forward must produce every use of the meta-model's parameters)."""

    def __init__(self, meta: nn.Module, loss_fn):
        super().__init__()
        self.meta = meta
        self._loss_fn = loss_fn

    def forward(self, *args, **kwargs):
        return self._loss_fn(self.meta, *args, **kwargs)


def wrap(meta: nn.Module, loss_fn) -> nn.Module:
    """DistributedDataParallel around ``LossModule(meta, loss_fn)``.

    ``find_unused_parameters``: a minibatch touches only some base models'
    maps; the parameters no rank used keep ``grad = None`` (as in a single
    process, so Adam leaves them alone). Buffers (the standardisation) are
    fixed, synchronised by ``sync_standardization`` before this call, and not
    synchronised again at each forward.
    """
    device = meta.theta.device
    return nn.parallel.DistributedDataParallel(
        LossModule(meta, loss_fn), device_ids=[device] if device.type == "cuda" else None,
        find_unused_parameters=True, forward_sync_buffers=False)


def is_main_process() -> bool:
    """True outside a process group and on rank 0 inside one (the rank that writes files)."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


__all__ = ["Shard", "current_shard", "init_from_env", "all_reduce_sum", "sync_standardization",
           "sync_model_parameters", "wrap", "is_main_process"]
