"""The probe inputs a Population is recorded on for a fit: the task's training inputs, each followed by
steps of weak noise input so that the base models relax onto their attractors while recorded
(docs/method.md, "Base models and their recording")."""
from __future__ import annotations

import torch
from torch import Tensor

from ..population.population import Population
from .config import FitConfig


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
    Measured on a fresh flip-flop population (docs/guide/fixed-points.md, "Dynamical fidelity"): with the defaults the
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
