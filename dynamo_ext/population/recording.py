"""A population's members and its recording: every model's hidden trajectories and outputs on shared probes.

A *recording* holds, for the same probe inputs x [S, T, I], each base model n's
hidden states h^n [S, T, d_n] and outputs y^n [S, T, C]: the targets that a
DYNAMO meta-model is fitted to (docs/method.md, "Base models and their recording").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor, nn

from .families import family_of
from .tasks import TaskData


def layer_channels_of(members: Sequence["Member"]) -> Optional[List[List[int]]]:
    """Per member, the channels of each recorded layer (CNN families); None for RNNs."""
    if not members or family_of(members[0].model) == "rnn":
        return None
    return [list(m.model.layer_channels) for m in members]


@dataclass
class Member:
    """One base model of a population and its facts (the manifest entry)."""

    id: str
    arch: str
    hidden_size: int
    seed: Optional[int]  # None for a user's model (Population.from_modules)
    test_accuracy: float
    model: nn.Module = field(repr=False)
    train_config: Dict[str, Any] = field(default_factory=dict)
    task: str = ""  # the member's task in a multi-task population ("" = the population's task)

    @property
    def state_size(self) -> int:
        return int(self.model.state_size)

    def info(self) -> Dict[str, Any]:
        info = {"id": self.id, "arch": self.arch, "hidden_size": self.hidden_size, "seed": self.seed,
                "test_accuracy": self.test_accuracy}
        return {**info, "task": self.task} if self.task else info


@dataclass
class Recording:
    """Hidden trajectories and outputs of every base model on the same probe inputs.

    Attributes:
        x: [S, T, I] probe inputs.
        hidden: list of N tensors [S, T, d_n] (base hidden states, float32).
        outputs: [N, S, T, C] base outputs (logits, or real outputs).
        output_kind: "classes" or "real".
        family: "rnn", or the CNN family of the base models (then T = 1 in
            ``hidden`` and ``outputs``: pooled layer activations and logits).
        layer_channels: CNNs only: per model, the channels of each recorded layer.
    """

    x: Tensor
    hidden: List[Tensor]
    outputs: Tensor
    output_kind: str
    family: str = "rnn"
    layer_channels: Optional[List[List[int]]] = None

    @property
    def n_models(self) -> int:
        return len(self.hidden)

    @property
    def state_sizes(self) -> List[int]:
        return [int(h.shape[-1]) for h in self.hidden]

    ids = None  # a recording does not name its models: the meta-model's default ids

    @property
    def n_outputs(self) -> int:
        return int(self.outputs.shape[-1])

    def fit_recording(self, x: Optional[Tensor] = None, models: Optional[Sequence[int]] = None) -> "Recording":
        """The recording a fit reads: this one, or the ``models`` of it (``x`` must be None: a recording
        is already made on its own probe inputs)."""
        if x is not None:
            raise ValueError("a Recording is already made on its probe inputs: argument 'x' must be None")
        if models is None:
            return self
        return Recording(self.x, [self.hidden[n] for n in models], self.outputs[list(models)], self.output_kind,
                         self.family)


@runtime_checkable
class RecordingSource(Protocol):
    """What ``fit`` reads from a population: ``Population`` (recorded on the probe inputs ``x``),
    ``Recording`` (in memory) and ``population.streaming.StreamedRecording`` (on disk) follow it.

    ``fit_recording(x, models)`` returns the recording of the ``models`` (indices; None: all) that the
    fit's targets are built from: a Recording, or the StreamedRecording itself (read batch by batch).
    """

    n_models: int
    ids: Optional[List[str]]
    state_sizes: List[int]
    output_kind: str
    n_outputs: int
    family: str
    layer_channels: Optional[List[List[int]]]

    def fit_recording(self, x: Optional[Tensor] = None, models: Optional[Sequence[int]] = None): ...


def param_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of a model's parameters (float32 where it has none)."""
    return next((p.dtype for p in model.parameters()), torch.float32)


def check_shared_inputs(tasks: Sequence[TaskData]) -> None:
    """Raise ValueError unless every task has the same train and test inputs."""
    first = tasks[0]
    for t in tasks[1:]:
        if not (torch.equal(t.x_train, first.x_train) and torch.equal(t.x_test, first.x_test)):
            raise ValueError(f"tasks {first.name!r} and {t.name!r} must share their inputs to form one population "
                             "(use the pulse tasks with the same settings)")
        if t.n_outputs != first.n_outputs or t.output_kind != first.output_kind:
            raise ValueError(f"tasks {first.name!r} and {t.name!r} must have the same outputs, got "
                             f"{first.n_outputs} {first.output_kind} and {t.n_outputs} {t.output_kind}")
