"""Placing a new base model into a trained meta-model (docs/method.md, "The uses of the embedding").

With the meta-model's shared parameters phi frozen, only the new model's
embedding theta_new (m numbers) and its linear map (A_new, c_new) are fitted,
on the same DYNAMO loss restricted to that model.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .._checks import check_tensor
from ..meta.config import FitConfig
from ..meta.loop import train_loop
from ..meta.loss import Targets
from ..meta.rnn import MetaModel
from ..population.recording import Recording, param_dtype


def embed(meta: MetaModel, model: nn.Module, x: Tensor, *, model_id: Optional[str] = None,
          steps: int = 400, lr: float = 1e-2, batch_size: int = 64, seed: int = 0,
          progress: bool = True) -> int:
    """Fit theta and the linear map of a model not seen in training; the meta-model stays frozen.

    Args:
        meta: a fitted MetaRNN or MetaCNN; it gains one row in ``theta`` and one map.
        model: the new base model (a BaseRNN, or any module following the
            recording protocol of dynamo_ext.population).
        x: [S, T, I] probe inputs (e.g. the task's training inputs).
        steps, lr, batch_size, seed: optimisation settings (Adam, cosine decay); ``seed`` also draws
            the new map's initial weights, so the result is the same for the same seed.

    Returns:
        The new model's index in ``meta.theta`` (its embedding is
        ``meta.theta[index]``).

    Raises:
        ValueError: x of the wrong shape or with NaN/Inf, or a model whose
            input size differs from the meta-model's.
    """
    check_tensor(x, "x", ndim=3)
    if x.shape[-1] != meta.input_size:
        raise ValueError(f"argument 'x' must have input size {meta.input_size} (the meta-model's), "
                         f"got shape {tuple(x.shape)}")
    with torch.no_grad():  # the model runs in its own parameter dtype (float32 when it has none)
        hidden, outputs = model.record(x.to(param_dtype(model)))
    rec = Recording(x, [hidden.float()], outputs.float().unsqueeze(0), meta.output_kind)
    # the targets hold the one new model under the index it takes in the embedding table
    targets = Targets(rec, meta.theta.dtype, models=[meta.n_models])
    with torch.random.fork_rng(devices=[]):  # the new map's initial weights from ``seed``, not the global RNG
        torch.manual_seed(seed)
        idx = meta.add_model(hidden.shape[-1], model_id=model_id, **meta.map_layout(model))
    new_map = meta.maps[idx]
    new_map.mean.copy_(targets.means[idx])
    new_map.scale.copy_(targets.scales[idx])

    config = FitConfig(steps=steps, lr=lr, batch_size=batch_size, seed=seed, lambda_theta=0.0).validate()
    _pick_start(meta, targets, idx)
    frozen = [p for p in meta.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    meta.theta.requires_grad_(True)
    for p in new_map.parameters():
        p.requires_grad_(True)
    mask = torch.zeros_like(meta.theta)
    mask[idx] = 1
    hook = meta.theta.register_hook(lambda g: g * mask)
    try:
        train_loop(meta, [meta.theta, *new_map.parameters()], targets, config,
                   sample_models=lambda g, b: torch.full((b,), idx, dtype=torch.long),
                   desc="embedding new model", progress=progress)
    finally:
        hook.remove()
        for p in frozen:
            p.requires_grad_(True)
        meta.eval()
    return idx


@torch.no_grad()
def _pick_start(meta: MetaModel, targets: Targets, idx: int, n_probe: int = 256) -> None:
    """Start theta_new at the population's mean or the existing embedding whose outputs fit best."""
    candidates = torch.cat([meta.theta[:idx].mean(0, keepdim=True), meta.theta[:idx]])
    x = targets.x[:n_probe]
    best, best_loss = candidates[0], float("inf")
    for th in candidates:
        _, yhat = meta(x, theta=th)
        tgt = targets.outputs[idx, :n_probe]
        if targets.output_kind == "classes":
            loss = torch.nn.functional.kl_div(yhat.log_softmax(-1), tgt, log_target=True, reduction="sum")
        else:
            loss = (yhat - tgt).pow(2).sum()
        if float(loss) < best_loss:
            best, best_loss = th, float(loss)
    meta.theta.data[idx] = best


__all__ = ["embed"]
