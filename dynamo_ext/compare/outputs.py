"""Function space: how often two models' outputs disagree, and the output ensemble.

The output ensemble (mean output probabilities or outputs of the members) is
the baseline of ``dynamo_ext.average``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import check_choice
from ..population.recording import param_dtype
from .registry import Measure, register


def output_disagreement(y_a: Tensor, y_b: Tensor, output_kind: str) -> float:
    """Fraction of probe sequences with different last-step classes (``"classes"``), or of entries
    with different signs (``"real"``), between outputs [S, T, C] of two models."""
    check_choice(output_kind, "output_kind", ("classes", "real"))
    if y_a.shape != y_b.shape:
        raise ValueError(f"outputs must have the same shape, got {tuple(y_a.shape)} and {tuple(y_b.shape)}")
    if output_kind == "classes":
        return float((y_a[:, -1].argmax(-1) != y_b[:, -1].argmax(-1)).float().mean())
    return float((y_a.sign() != y_b.sign()).float().mean())


def output_disagreement_matrix(outputs: Tensor, output_kind: str) -> np.ndarray:
    """``output_disagreement`` between every pair of N models at once: [N, N] float64, zero diagonal.

    Args:
        outputs: [N, S, T, C] outputs of the N models on the same probes.
        output_kind: "classes" (last-step class per sequence) or "real" (signs of every entry).

    The agreements are counted as products of indicator matrices (one GEMM per class or sign value),
    so the cost is N^2 * S (classes) or 3 N^2 * S * T * C multiply-adds at the GEMM rate.
    """
    check_choice(output_kind, "output_kind", ("classes", "real"))
    if outputs.ndim != 4:
        raise ValueError(f"argument 'outputs' must be [N, S, T, C], got shape {tuple(outputs.shape)}")
    if output_kind == "classes":
        labels = outputs[:, :, -1].argmax(-1)  # [N, S]
        values, total = [labels == c for c in range(outputs.shape[-1])], labels.shape[1]
    else:
        signs = outputs.reshape(outputs.shape[0], -1).sign()
        values, total = [signs == v for v in (-1.0, 0.0, 1.0)], signs.shape[1]
    agree = sum(v.double() @ v.double().t() for v in values)
    d = 1.0 - agree.numpy() / total
    np.fill_diagonal(d, 0.0)
    return d


MEASURE = register(Measure(
    name="outputs", description="output disagreement (last-step classes, or signs of real outputs)",
    range="a fraction, in [0, 1]", source="the functional baseline of model comparison (outputs on shared probes)",
    reads="outputs", matrix=lambda inputs: output_disagreement_matrix(inputs.recording.outputs,
                                                                      inputs.recording.output_kind),
    pair=output_disagreement))


class OutputEnsemble(nn.Module):
    """The output ensemble of several models: x [B, T, I] -> outputs [B, T, C].

    Classes: the log of the mean of the members' softmax probabilities (a
    valid logit vector); real outputs: the mean of the members' outputs.
    """

    def __init__(self, models: Sequence[nn.Module], output_kind: str = "classes"):
        super().__init__()
        if len(models) == 0:
            raise ValueError("argument 'models' must hold at least one model, got an empty list")
        self.members = nn.ModuleList(models)
        self.output_kind = check_choice(output_kind, "output_kind", ("classes", "real"))

    def forward(self, x: Tensor) -> Tensor:
        outs = torch.stack([m(x.to(param_dtype(m))).float() for m in self.members])  # members may differ in dtype
        if self.output_kind == "real":
            return outs.mean(0)
        return torch.logsumexp(outs.log_softmax(-1), 0) - np.log(len(self.members))
