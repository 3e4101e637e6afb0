"""How well a meta-model emulates each base model, on held-out inputs.

For base model n and the meta-model at theta_n on the task's test inputs:
- output_agreement: fraction of test sequences whose last-step class agrees
  (classes), or fraction of (sequence, step, output) with the same sign (real),
  counted where the task's target is nonzero (the entries its accuracy counts);
- hidden_r2: R^2 of A_n z + c_n (mapped back to base coordinates) against the
  base hidden states, pooled over units, steps and sequences;
- meta_test_accuracy: the task accuracy of the meta-model at theta_n;
- real outputs only: output_r2 and output_mse of the meta-model's outputs against the base
  model's, and the base model's and the meta-model's R^2 and MSE against the task's targets
  (base_target_r2, meta_target_r2, base_target_mse, meta_target_mse), over every step and output.
"""
from __future__ import annotations

from typing import Dict, List

import torch

from ..population.population import Population
from ..population.recording import param_dtype
from ..population.tasks import accuracy
from .rnn import MetaModel


def r2(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Coefficient of determination of pred against target [N, T, C], pooled over sequences, steps
    and outputs (the residual over the variance about the target's mean per output); NaN where the
    target does not vary."""
    ss_res = (pred - target).pow(2).sum()
    ss_tot = (target - target.mean(dim=(0, 1))).pow(2).sum()
    return float(1 - ss_res / ss_tot) if float(ss_tot) > 0 else float("nan")


@torch.no_grad()
def emulation(meta: MetaModel, population: Population, batch_size: int = 500) -> List[Dict]:
    """Per-model emulation metrics on the population's test inputs (see module docstring).

    Raises:
        ValueError: if the meta-model and population differ in size.
    """
    if meta.n_models < len(population):
        raise ValueError(f"argument 'meta' embeds {meta.n_models} models, the population has {len(population)}")
    x = population.task.x_test.to(meta.theta.dtype)  # shared by every task of the population
    rows = []
    for n, member in enumerate(population.members):
        zs, ys, hs, bs = [], [], [], []
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            z, y = meta(xb.to(meta.theta.device), n)  # the meta-model may sit on a GPU, the base models on the CPU
            h, yb = member.model.record(xb.to(param_dtype(member.model)))
            zs.append(meta.maps[n].to_base(z).cpu())
            ys.append(y.cpu())
            hs.append(h)
            bs.append(yb)
        pred_h, yhat = torch.cat(zs).float(), torch.cat(ys).float()
        h, y = torch.cat(hs).float(), torch.cat(bs).float()
        task = population.task_of(n)
        if task.per_step:  # the base's classes as labels, at the steps the task scores
            agree = accuracy(task, yhat, torch.where(task.y_test >= 0, y.argmax(-1), -1))
        elif task.output_kind == "classes":
            agree = float((yhat[:, -1].argmax(-1) == y[:, -1].argmax(-1)).float().mean())
        else:  # where the task has a nonzero target (tasks.accuracy's entries)
            mask = task.y_test != 0
            agree = float(((yhat.sign() == y.sign()) & mask).sum() / mask.sum().clamp(min=1))
        ss_res = (pred_h - h).pow(2).sum()
        ss_tot = (h - h.mean(dim=(0, 1))).pow(2).sum().clamp(min=1e-12)
        row = {"id": member.id, "output_agreement": agree, "hidden_r2": float(1 - ss_res / ss_tot),
               "meta_test_accuracy": accuracy(task, yhat, task.y_test)}
        if task.output_kind == "real":
            row.update(output_r2=r2(yhat, y), output_mse=float((yhat - y).pow(2).mean()),
                       base_target_r2=r2(y, task.y_test), meta_target_r2=r2(yhat, task.y_test),
                       base_target_mse=float((y - task.y_test).pow(2).mean()),
                       meta_target_mse=float((yhat - task.y_test).pow(2).mean()))
        rows.append(row)
    return rows
