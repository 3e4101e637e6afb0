"""Population: the base models of one or more tasks, saved and loaded as a folder, and recorded.

A *population* is a set of base models trained on one task (or several tasks
sharing one input space); ``Population.from_modules`` takes a user's own
networks (the recording and step protocols are written out there). docs/method.md,
"Base models and their recording".
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from .._checks import check_choice, check_positive_int, check_tensor
from .base_cnn import BaseCNN, RecordedCNN
from .base_rnn import BaseRNN
from .families import family_of
from .recording import (
    Member,
    Recording,
    check_shared_inputs,
    layer_channels_of,
    param_dtype,
)
from .storage import MANIFEST, load_population, save_population  # noqa: F401 (MANIFEST: part of this API)
from .tasks import TaskData
from .protocol import check_protocol
from .training import evaluate



class Population:
    """A population of base models trained on one task, or on several tasks that share one input stream.

    Build it with ``train_population``, ``Population.load(folder)`` or
    ``Population.from_modules(models, task)``; ``members[i]`` holds model i.
    In a multi-task population (``tasks`` given) each member names its task
    in ``member.task``; ``task`` is the first of them and provides the shared
    inputs; ``task_of(i)`` gives model i's own targets.

    Raises:
        ValueError: no members, repeated ids, tasks whose inputs differ, or a
            member whose task is not in ``tasks``.
    """

    def __init__(self, task: TaskData, members: Sequence[Member], tasks: Optional[Dict[str, TaskData]] = None):
        if len(members) == 0:
            raise ValueError("argument 'members' must hold at least one base model, got an empty population")
        ids = [m.id for m in members]
        if len(set(ids)) != len(ids):
            raise ValueError(f"argument 'members' must have unique ids, got {ids}")
        self.task = task
        self.tasks: Dict[str, TaskData] = dict(tasks) if tasks else {task.name: task}
        check_shared_inputs(list(self.tasks.values()))
        for m in members:
            if m.task and m.task not in self.tasks:
                raise ValueError(f"member {m.id!r}: task {m.task!r} is not one of the population's tasks "
                                 f"{sorted(self.tasks)}")
        self.members: List[Member] = list(members)
        families = sorted({family_of(m.model) for m in self.members})
        if len(families) > 1:
            raise ValueError(f"argument 'members' must be of one family (RNNs, or CNNs of one family), got {families}")

    def __repr__(self) -> str:
        archs = {}
        for m in self.members:
            archs[m.arch] = archs.get(m.arch, 0) + 1
        return (f"Population({len(self)} models of family {self.family!r} on {', '.join(self.tasks)}: "
                + ", ".join(f"{n} {a}" for a, n in archs.items()) + ")")

    @property
    def family(self) -> str:
        """"rnn", "cnn1d" or "cnn2d" (dynamo_ext.population.base_cnn)."""
        return family_of(self.members[0].model)

    @property
    def layer_channels(self) -> Optional[List[List[int]]]:
        """CNN populations: per model, the channels of each recorded layer; None for RNNs."""
        return layer_channels_of(self.members)

    @property
    def is_multitask(self) -> bool:
        return len(self.tasks) > 1

    def task_of(self, index: int) -> TaskData:
        """The task (targets) of model ``index``."""
        return self.tasks.get(self.members[index].task, self.task)

    def labels(self, by: str) -> List:
        """One label per model: by "arch", "task" or "hidden_size"."""
        check_choice(by, "by", ("arch", "task", "hidden_size"))
        if by == "task":
            return [m.task or self.task.name for m in self.members]
        return [getattr(m, by) for m in self.members]

    def __len__(self) -> int:
        return len(self.members)

    @property
    def ids(self) -> List[str]:
        return [m.id for m in self.members]

    @property
    def archs(self) -> List[str]:
        return [m.arch for m in self.members]

    def index(self, model_id: str) -> int:
        try:
            return self.ids.index(model_id)
        except ValueError:
            raise ValueError(f"argument 'model_id' must be one of {self.ids}, got {model_id!r}") from None

    @classmethod
    def from_modules(cls, models: Sequence, task: TaskData, ids: Optional[Sequence[str]] = None,
                     layers: Optional[Sequence[str]] = None, family: str = "cnn1d") -> "Population":
        """Wrap trained networks into a population on ``task``.

        The recording protocol, for any other module (python/own_network.py):
            ``record(x [B, T, I]) -> (hidden [B, T, d], outputs [B, T, C])``
            in the module's parameter dtype; ``state_size`` (int, d);
            ``input_size`` (int, I; checked against the task); ``arch`` (str,
            a label; default the class name); optionally ``hidden_size`` (for
            the report), ``forward(x) -> outputs [B, T, C]`` (scored for the
            test accuracy; without it, ``record``'s outputs are) and
            ``step(x [B, I], z [B, d]) -> z' [B, d]``, the one-step map whose
            fixed points ``find_fixed_points`` and ``fidelity`` solve. Each
            such module is run once on two test sequences
            (``protocol.check_protocol``), and what is missing or of the wrong
            shape is named. Such members are not written by ``save``.

        Args:
            models: BaseRNN or BaseCNN instances, (rnn, readout) pairs of
                torch.nn.RNN (tanh or ReLU) / GRU / LSTM (any number of layers)
                or dynamo_ext.CTRNN and an nn.Linear readout of the top
                layer's h, modules following the recording protocol, or,
                with ``layers``, CNNs (e.g. nn.Sequential) mapping the
                family's view of x to logits [B, C].
            task: the task they solve; their test accuracy is measured on it.
            ids: optional names (default "<arch>-<i>").
            layers: for plain CNN modules: the names of the layers to record
                (dynamo_ext.population.base_cnn.RecordedCNN), one per level of the depth family.
            family: with ``layers``: "cnn1d" (x viewed as [B, I, T]) or
                "cnn2d" ([B, 1, T, I]).

        Raises:
            ValueError: empty list, unsupported module, or sizes that do not
                match the task.
        """
        if len(models) == 0:
            raise ValueError("argument 'models' must hold at least one model, got an empty list")
        members = []
        for i, m in enumerate(models):
            if isinstance(m, tuple):
                m = BaseRNN.wrap(*m)
            elif layers is not None and not hasattr(m, "record"):
                m = RecordedCNN(m, layers, family, task.input_size, task.seq_len)
            if not (hasattr(m, "record") and hasattr(m, "state_size")):
                raise ValueError(f"argument 'models[{i}]' must be a BaseRNN, an (rnn, readout) pair or a module "
                                 f"with record() and state_size, got {type(m).__name__}")
            if getattr(m, "input_size", task.input_size) != task.input_size:
                raise ValueError(f"argument 'models[{i}]' must take input_size={task.input_size} (the task's), "
                                 f"got {m.input_size}")
            if not isinstance(m, (BaseRNN, BaseCNN, RecordedCNN)):  # a user's module: run its protocol once
                check_protocol(m, task, f"models[{i}]")
            dt = param_dtype(m)
            if dt not in (torch.float32, torch.float64):
                raise ValueError(f"argument 'models[{i}]' must have float32 or float64 parameters, got {dt} "
                                 "(convert it with .float())")
            arch = getattr(m, "arch", type(m).__name__)
            mid = ids[i] if ids is not None else f"{arch}-{i}"
            members.append(Member(mid, arch, int(getattr(m, "hidden_size", m.state_size)), None,
                                  evaluate(m, task), m))
        return cls(task, members)

    def save(self, folder) -> Path:
        """Write models/<id>.safetensors and manifest.json (atomically) into ``folder`` (``storage``).

        Raises:
            ValueError: a member that is not a BaseRNN or BaseCNN (a user's module is not saved).
        """
        return save_population(self, folder)

    @classmethod
    def load(cls, folder) -> "Population":
        """Read a population written by ``save`` / ``train_population`` (``storage``).

        Raises:
            ValueError: missing folder, manifest or model file, a corrupted
                file, or a manifest path outside the folder.
        """
        return load_population(folder, cls)

    # the recording protocol of ``fit`` (``recording.RecordingSource``)
    n_models = property(lambda self: len(self.members), doc="N, the number of base models.")
    state_sizes = property(lambda self: [m.state_size for m in self.members], doc="d_n of each base model.")
    output_kind = property(lambda self: self.task.output_kind, doc='"classes" or "real".')
    n_outputs = property(lambda self: self.task.n_outputs, doc="C, the outputs per step.")

    def fit_recording(self, x: Optional[Tensor] = None, models: Optional[Sequence[int]] = None) -> Recording:
        """The recording a fit reads: ``record(x, models=models)``."""
        return self.record(x=x, models=models)

    @torch.no_grad()
    def record(self, x: Optional[Tensor] = None, max_sequences: Optional[int] = None,
               batch_size: int = 1000, models: Optional[Sequence[int]] = None) -> Recording:
        """Record every model's hidden states and outputs on probe inputs.

        Args:
            x: [S, T, I] probe inputs (default: the task's training inputs).
            max_sequences: keep only the first this many probe sequences.
            models: record only these members (indices, in this order; default all).

        Returns:
            A Recording (hidden states float32 [S, T, d_n] per model).

        Raises:
            ValueError: x of the wrong shape or with NaN/Inf, a model index out of range.
        """
        x = self.task.x_train if x is None else x
        check_tensor(x, "x", ndim=3)
        if x.shape[-1] != self.task.input_size:
            raise ValueError(f"argument 'x' must have input size {self.task.input_size} (the models'), "
                             f"got shape {tuple(x.shape)}")
        if max_sequences is not None:
            x = x[:check_positive_int(max_sequences, "max_sequences")]
        x = x.float()
        if models is None:
            members = self.members
        else:
            bad = [i for i in models if not 0 <= int(i) < len(self.members)]
            if bad:
                raise ValueError(f"argument 'models' must hold indices in [0, {len(self.members)}), got {bad}")
            members = [self.members[int(i)] for i in models]
        hidden, outputs = [], []
        for m in members:
            m.model.eval()
            dt = param_dtype(m.model)
            hs, ys = zip(*(m.model.record(x[i:i + batch_size].to(dt)) for i in range(0, len(x), batch_size)))
            hidden.append(torch.cat(hs).float())
            outputs.append(torch.cat(ys).float())
        return Recording(x, hidden, torch.stack(outputs), self.task.output_kind, self.family,
                         layer_channels_of(members))
