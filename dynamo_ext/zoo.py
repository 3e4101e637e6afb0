"""The model zoo: base models, population training, storage and recording.

A *base model* is a trained recurrent network (torch.nn.RNN with tanh,
torch.nn.GRU or torch.nn.LSTM, one layer) with a linear readout. Its *hidden
state* at step t is h_t (RNN, GRU) or the concatenation [h_t; c_t] (LSTM), so
that the state fully determines the dynamics. A *population* is a set of base
models trained on one task; a *recording* holds every model's hidden
trajectories and outputs on the same probe inputs (DESIGN.md section 1).

Any nn.Module can join a population if it follows the recording protocol:
    ``record(x [B, T, I]) -> (hidden [B, T, d], outputs [B, T, C])``
and has an int attribute ``state_size`` (= d) and a str attribute ``arch``.

Populations of CNNs (dynamo_ext.cnn: families "cnn1d" and "cnn2d") follow
the same protocol with one "time step": their hidden state is the pooled
activations of every layer, and ``arch`` names the activation.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import _io
from ._checks import check_choice, check_positive_float, check_positive_int, check_tensor
from .cnn import ACTIVATIONS, FAMILIES, BaseCNN, RecordedCNN
from .ctrnn import CTRNN
from .step import check_layer, layer_state_size, layer_step, run_steps, top_hidden
from .tasks import TASKS, TaskData, accuracy, load_task

ARCHS = ("rnn", "gru", "lstm")  # trained by default
RNN_ARCHS = ARCHS + ("relu_rnn", "ctrnn")  # every BaseRNN architecture
_RNN_CLASSES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
MANIFEST = "manifest.json"
# Adam learning rates that train each architecture reliably on MNIST-1D
# (the tanh RNN diverges to chance level at 1e-2).
# ReLU and CT-RNNs: not tuned (the tanh RNN's order of magnitude; ReLU RNNs reach 0.985-0.988 on the
# flip-flop and 0.90-0.93 on pulse integration at 1e-3, 80 epochs).
DEFAULT_LR = {"rnn": 2e-3, "relu_rnn": 1e-3, "ctrnn": 2e-3, "gru": 1e-2, "lstm": 1e-2,
              "relu": 1e-2, "tanh": 1e-2, "gelu": 1e-2}
FAMILY_ARCHS = {"rnn": RNN_ARCHS, **{f: ACTIVATIONS for f in FAMILIES}}
DEFAULT_ARCHS = {"rnn": ARCHS, **{f: ACTIVATIONS for f in FAMILIES}}
# Decoupled weight decay (AdamW) per family: without it, tanh CNNs on MNIST-1D stop at 0.84-0.91 test
# accuracy; with 0.1 (and widths >= 32) they reach 0.92-0.93. RNNs train without it.
DEFAULT_WEIGHT_DECAY = {"rnn": 0.0, **{f: 0.1 for f in FAMILIES}}


def family_of(model: nn.Module) -> str:
    """"rnn" for recurrent base models, else the CNN family ("cnn1d", "cnn2d")."""
    return getattr(model, "family", "rnn")


def layer_channels_of(members: Sequence["Member"]) -> Optional[List[List[int]]]:
    """Per member, the channels of each recorded layer (CNN families); None for RNNs."""
    if not members or family_of(members[0].model) == "rnn":
        return None
    return [list(m.model.layer_channels) for m in members]


def build_base_model(family: str, arch: str, task: TaskData, hidden_size: int) -> nn.Module:
    """An untrained base model for ``task``: a BaseRNN (family "rnn") or a BaseCNN of the family."""
    check_choice(family, "family", tuple(FAMILY_ARCHS))
    check_choice(arch, "arch", FAMILY_ARCHS[family])
    if family == "rnn":
        return BaseRNN(arch, task.input_size, hidden_size, task.n_outputs)
    return BaseCNN(family, arch, task.input_size, task.seq_len, hidden_size, task.n_outputs)


class BaseRNN(nn.Module):
    """A base model: a recurrent network with a linear readout of its top layer's h.

    Args:
        arch: "rnn" (tanh), "relu_rnn" (torch.nn.RNN with ReLU), "gru", "lstm"
            or "ctrnn" (a leaky continuous-time RNN, ``dynamo_ext.CTRNN``).
        input_size: I; hidden_size: H (per layer); n_outputs: C.
        num_layers: stacked layers L (torch.nn.RNN / GRU / LSTM; 1 for "ctrnn").
        alpha, nonlinearity: "ctrnn" only: dt / tau in (0, 1] and "tanh",
            "relu" or "softplus".
        rnn, readout: optional existing modules to wrap (a user's trained
            network); they must match ``arch`` and the sizes (``BaseRNN.wrap``
            reads them off the modules).

    Shapes: inputs x [B, T, I] (batch first, in the parameters' dtype);
    ``forward`` returns outputs [B, T, C]; ``record`` returns (hidden
    [B, T, state_size], outputs); ``step(x [B, I], z [B, state_size])`` the
    next state. The state is the layers' states concatenated,
    [z_1; ...; z_L], with z_l = h_l, or [h_l; c_l] for the LSTM
    (``dynamo_ext.step``): ``state_size`` is L * H, or L * 2H for the LSTM.

    Raises:
        ValueError: an unknown arch, sizes that are not positive integers, a
            "ctrnn" with num_layers > 1.
    """

    def __init__(self, arch: str, input_size: int, hidden_size: int, n_outputs: int,
                 rnn: Optional[nn.Module] = None, readout: Optional[nn.Linear] = None, num_layers: int = 1,
                 alpha: float = 1.0, nonlinearity: str = "tanh"):
        super().__init__()
        check_choice(arch, "arch", RNN_ARCHS)
        self.arch = arch
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = check_positive_int(hidden_size, "hidden_size")
        self.n_outputs = check_positive_int(n_outputs, "n_outputs")
        self.num_layers = check_positive_int(num_layers, "num_layers")
        if arch == "ctrnn" and num_layers != 1:
            raise ValueError(f"argument 'num_layers' must be 1 for arch 'ctrnn', got {num_layers}")
        if rnn is None:
            if arch == "ctrnn":
                rnn = CTRNN(input_size, hidden_size, alpha=alpha, nonlinearity=nonlinearity)
            elif arch == "relu_rnn":
                rnn = nn.RNN(input_size, hidden_size, num_layers, nonlinearity="relu", batch_first=True)
            else:
                rnn = _RNN_CLASSES[arch](input_size, hidden_size, num_layers, batch_first=True)
        if readout is None:
            readout = nn.Linear(hidden_size, n_outputs)
        self.rnn = rnn
        self.readout = readout
        self._batch_first = bool(getattr(rnn, "batch_first", True))

    @property
    def state_size(self) -> int:
        return layer_state_size(self.rnn)

    def spec(self) -> Dict[str, Any]:
        """Constructor arguments: models with equal specs have parameters of equal shapes."""
        spec = {"arch": self.arch, "input_size": self.input_size, "hidden_size": self.hidden_size,
                "n_outputs": self.n_outputs}
        if self.num_layers != 1:
            spec["num_layers"] = self.num_layers
        if self.arch == "ctrnn":
            spec.update(alpha=self.rnn.alpha, nonlinearity=self.rnn.nonlinearity)
        return spec

    def _run(self, x: Tensor) -> Tensor:
        seq = x if self._batch_first else x.transpose(0, 1)
        out, _ = self.rnn(seq)
        return out if self._batch_first else out.transpose(0, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Outputs (logits or real outputs) [B, T, C] for inputs [B, T, I]."""
        return self.readout(self._run(x))

    def step(self, x: Tensor, z: Tensor) -> Tensor:
        """The next state z' [B, state_size] from inputs x [B, I] and states z [B, state_size]."""
        return layer_step(self.rnn, x, z)

    def record(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Hidden states [B, T, state_size] and outputs [B, T, C] for inputs [B, T, I]."""
        if self.arch != "lstm" and self.num_layers == 1:
            h = self._run(x)
            return h, self.readout(h)
        states = run_steps(self.step, x, self.state_size)
        return states, self.readout(top_hidden(self.rnn, states))

    @classmethod
    def wrap(cls, rnn: nn.Module, readout: nn.Linear) -> "BaseRNN":
        """Wrap a user's trained torch.nn.RNN (tanh or ReLU) / GRU / LSTM (any number of layers) or
        ``dynamo_ext.CTRNN``, and its nn.Linear readout (of the top layer's h).

        Raises:
            ValueError: another module, a bidirectional or projected network,
                or a readout whose in_features is not the hidden size.
        """
        arch = {nn.GRU: "gru", nn.LSTM: "lstm", CTRNN: "ctrnn"}.get(type(rnn))
        if isinstance(rnn, nn.RNN) and type(rnn) is nn.RNN:
            arch = "rnn" if rnn.nonlinearity == "tanh" else "relu_rnn"
        if arch is None:
            raise ValueError(f"argument 'rnn' must be torch.nn.RNN, GRU, LSTM or dynamo_ext.CTRNN, got "
                             f"{type(rnn).__name__} (other modules join through the recording protocol: "
                             "see Population.from_modules)")
        check_layer(rnn, "rnn")
        if not isinstance(readout, nn.Linear) or readout.in_features != rnn.hidden_size:
            raise ValueError(f"argument 'readout' must be nn.Linear with in_features={rnn.hidden_size}, got {readout}")
        return cls(arch, rnn.input_size, rnn.hidden_size, readout.out_features, rnn=rnn, readout=readout,
                   num_layers=rnn.num_layers)


@dataclass
class TrainConfig:
    """Base-model training settings (Adam, or AdamW with weight decay, a one-cycle schedule, gradient
    clipping at 1)."""

    epochs: int = 40
    lr: Optional[float] = None  # None: the architecture's default, DEFAULT_LR
    batch_size: int = 100
    clip: float = 1.0
    weight_decay: Optional[float] = None  # None: the family's default, DEFAULT_WEIGHT_DECAY

    def validate(self) -> "TrainConfig":
        check_positive_int(self.epochs, "epochs")
        if self.lr is not None:
            check_positive_float(self.lr, "lr")
        if self.weight_decay is not None:
            check_positive_float(self.weight_decay, "weight_decay", allow_zero=True)
        check_positive_int(self.batch_size, "batch_size")
        check_positive_float(self.clip, "clip")
        return self


def task_loss(task: TaskData, outputs: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy at the last step (classes) or MSE at every step (real outputs)."""
    if task.output_kind == "classes":
        return F.cross_entropy(outputs[:, -1], targets)
    return F.mse_loss(outputs, targets)


@torch.no_grad()
def evaluate(model: nn.Module, task: TaskData, batch_size: int = 1000) -> float:
    """Test accuracy of a model mapping x [B, T, I] to outputs [B, T, C] (tasks.accuracy); the inputs
    are cast to the model's parameter dtype."""
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    x = task.x_test if param is None else task.x_test.to(param.dtype)
    outs = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return accuracy(task, outs, task.y_test)


def train_base_model(arch: str, hidden_size: int, task: TaskData, seed: int,
                     config: Optional[TrainConfig] = None, progress: Optional[tqdm] = None,
                     family: str = "rnn") -> nn.Module:
    """Train one base model on ``task`` from seed ``seed``; deterministic for a given seed.

    ``family`` "rnn" gives a BaseRNN of ``arch`` (rnn, gru, lstm); "cnn1d" or
    "cnn2d" a BaseCNN whose ``arch`` is its activation (relu, tanh, gelu) and
    ``hidden_size`` its width."""
    config = (config or TrainConfig()).validate()
    torch.manual_seed(seed)
    model = build_base_model(family, arch, task, hidden_size)
    lr = config.lr if config.lr is not None else DEFAULT_LR[arch]
    wd = config.weight_decay if config.weight_decay is not None else DEFAULT_WEIGHT_DECAY[family]
    opt = (torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd) if wd > 0
           else torch.optim.Adam(model.parameters(), lr=lr))
    n = len(task.x_train)
    steps_per_epoch = math.ceil(n / config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=config.epochs * steps_per_epoch)
    g = torch.Generator().manual_seed(seed)
    for _ in range(config.epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, config.batch_size):
            idx = perm[i:i + config.batch_size]
            loss = task_loss(task, model(task.x_train[idx]), task.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            opt.step()
            sched.step()
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return model


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
        """"rnn", "cnn1d" or "cnn2d" (dynamo_ext.cnn)."""
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
            the report) and ``step(x [B, I], z [B, d]) -> z' [B, d]``, the
            one-step map whose fixed points ``find_fixed_points`` and
            ``fidelity`` solve. Such members are not written by ``save``.

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
                (dynamo_ext.cnn.RecordedCNN), one per level of the depth family.
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
        """Write models/<id>.safetensors and manifest.json (atomically) into ``folder``."""
        folder = Path(folder)
        entries = []
        for m in self.members:
            if not isinstance(m.model, (BaseRNN, BaseCNN)):
                raise ValueError(f"member {m.id!r}: only BaseRNN and BaseCNN members can be saved, got "
                                 f"{type(m.model).__name__}")
            fname = f"models/{m.id}.safetensors"
            _io.write_tensors(folder / fname, m.model.state_dict(), metadata={"arch": m.arch})
            entries.append({**m.info(), "file": fname, "n_outputs": m.model.n_outputs,
                            "input_size": m.model.input_size, "train_config": m.train_config})
            if isinstance(m.model, BaseRNN):  # num_layers, alpha, nonlinearity where they differ from the default
                entries[-1].update({k: v for k, v in m.model.spec().items() if k not in entries[-1]})
            if isinstance(m.model, BaseCNN):
                entries[-1].update(family=m.model.family, seq_len=m.model.seq_len, depth=m.model.depth)
        manifest = {"format": "dynamo_ext.population/2", "task": self.task.name, "task_config": self.task.config,
                    "models": entries}
        if self.is_multitask:
            manifest["tasks"] = {name: t.config for name, t in self.tasks.items()}
        # a user's task data is stored beside the manifest (a generated task is made again from its settings)
        stored = {name: _io.write_task(folder, t) for name, t in self.tasks.items() if not t.generated}
        if stored:
            manifest["task_data"] = stored
        _io.write_json(folder / MANIFEST, manifest)
        return folder

    @classmethod
    def load(cls, folder) -> "Population":
        """Read a population written by ``save`` / ``train_population``.

        Raises:
            ValueError: missing folder, manifest or model file, a corrupted
                file, or a manifest path outside the folder.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"population folder {str(folder)!r} does not exist")
        manifest = _io.read_json(folder / MANIFEST, "population manifest")
        try:
            stored = manifest.get("task_data", {})

            def task_named(name: str, cfg: Dict) -> TaskData:
                if name in stored:  # a user's data, never replaced by a generated task of the same name
                    return _io.read_task(folder, name, stored[name], cfg)
                if name not in TASKS and not name.startswith("neurogym:"):
                    raise ValueError(f"population manifest {str(folder / MANIFEST)!r} names task {name!r}, which "
                                     f"is not a generated task ({', '.join(TASKS)}) and has no stored task data")
                return load_task(name, **cfg)

            task = task_named(manifest["task"], manifest.get("task_config", {}))
            tasks = {name: task_named(name, cfg) for name, cfg in manifest.get("tasks", {}).items()}
            entries = manifest["models"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"population manifest {str(folder / MANIFEST)!r} is corrupted: missing {exc}") from exc
        root = folder.resolve()
        members = []
        for e in entries:
            try:
                path = (folder / e["file"]).resolve()
                if root not in path.parents:
                    raise ValueError(f"population manifest entry {e['id']!r}: file {e['file']!r} is outside "
                                     f"the population folder {str(folder)!r}")
                if e.get("family", "rnn") == "rnn":
                    extra = {k: e[k] for k in ("num_layers", "alpha", "nonlinearity") if k in e}
                    model = BaseRNN(e["arch"], e["input_size"], e["hidden_size"], e["n_outputs"], **extra)
                else:
                    model = BaseCNN(e["family"], e["arch"], e["input_size"], e["seq_len"], e["hidden_size"],
                                    e["n_outputs"], e["depth"])
                state = _io.read_tensors(path, f"model file of {e['id']!r}")
                try:
                    model.load_state_dict(state)
                except RuntimeError as exc:
                    raise ValueError(f"model file {str(path)!r} does not match its manifest entry: {exc}") from exc
                model.eval()
                members.append(Member(e["id"], e["arch"], e["hidden_size"], e["seed"], e["test_accuracy"], model,
                                      e.get("train_config", {}), e.get("task", "")))
            except (KeyError, TypeError) as exc:
                raise ValueError(f"population manifest {str(folder / MANIFEST)!r} is corrupted: "
                                 f"entry missing {exc}") from exc
        return cls(task, members, tasks or None)

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


def train_population(task: TaskData | str | Sequence = "mnist1d", archs: Optional[Sequence[str]] = None,
                     hidden_sizes: Optional[Sequence[int]] = None, n_seeds: int = 4,
                     config: Optional[TrainConfig] = None, out: Optional[str | Path] = None,
                     base_seed: int = 0, progress: bool = True, resume: bool = False,
                     family: str = "rnn") -> Population:
    """Train a population: for each task and architecture, ``n_seeds`` models.

    Seed i of an architecture uses hidden size ``hidden_sizes[i % len]`` and
    torch seed ``base_seed + i``. Each model is trained with
    ``train_base_model`` (Adam, one-cycle, cross-entropy at the last step or
    MSE at every step) and its test accuracy measured.

    Args:
        task: a TaskData or a task name for ``load_task``; or a list of them
            that share one input stream (e.g. tasks.PULSE_TASKS): a
            multi-task population, model ids "<task>-<arch>-h<H>-s<seed>".
        archs: RNNs: "rnn", "gru", "lstm" (the default), "relu_rnn", "ctrnn"; CNNs: the
            activations "relu", "tanh", "gelu" (default all).
        hidden_sizes: RNNs: hidden sizes (default 32, 48, 64, 64); CNNs: widths,
            channels per layer (default 32, 48).
        family: "rnn" (default), or a CNN family of dynamo_ext.cnn: "cnn1d"
            (the signal [B, I, T]; MNIST-1D) or "cnn2d" (the image
            [B, 1, T, I]; digits). CNN ids are "<family>-<activation>-w<width>-s<seed>".
        out: optional folder; the population is saved there (safetensors +
            manifest.json), written atomically after every finished model, so
            that an interrupted run loses no finished model.
        resume: with ``out``, reuse the models already finished there (same
            id and training settings) and train only the rest; the result
            equals an uninterrupted run's (each model depends on its own seed only).

    Returns:
        The Population.

    Raises:
        ValueError: unknown architecture, empty ``archs``, bad sizes, tasks
            that do not share their inputs.
    """
    multi = isinstance(task, (list, tuple))
    task_list = [load_task(t) if isinstance(t, str) else t for t in (task if multi else [task])]
    if len(task_list) == 0:
        raise ValueError("argument 'task' must name at least one task, got an empty list")
    check_shared_inputs(task_list)
    check_choice(family, "family", tuple(FAMILY_ARCHS))
    archs = DEFAULT_ARCHS[family] if archs is None else archs
    if len(archs) == 0:
        raise ValueError("argument 'archs' must name at least one architecture, got an empty list")
    for a in archs:
        check_choice(a, "archs", FAMILY_ARCHS[family])
    if family != "rnn" and any(t.output_kind != "classes" for t in task_list):
        raise ValueError(f"family {family!r} needs a classification task (mnist1d, digits), got "
                         f"{[t.name for t in task_list]}")
    if hidden_sizes is None:
        hidden_sizes = (32, 48, 64, 64) if family == "rnn" else (32, 48)
    if len(hidden_sizes) == 0:
        raise ValueError("argument 'hidden_sizes' must hold at least one size, got an empty list")
    for h in hidden_sizes:
        check_positive_int(h, "hidden_sizes")
    check_positive_int(n_seeds, "n_seeds")
    config = (config or TrainConfig()).validate()
    plan = [(t, a, hidden_sizes[i % len(hidden_sizes)], base_seed + i)
            for t in task_list for a in archs for i in range(n_seeds)]
    if resume and out is None:
        raise ValueError("argument 'resume' needs 'out', the population folder to continue")
    finished = _finished_members(out, asdict(config)) if resume else {}
    tasks = {t.name: t for t in task_list} if multi else None
    members = []
    bar = tqdm(total=len(plan) * config.epochs, desc="training base models", unit="epoch", disable=not progress)
    for t, arch, hidden, seed in plan:
        t0 = time.perf_counter()
        mid = f"{arch}-h{hidden}-s{seed}" if family == "rnn" else f"{family}-{arch}-w{hidden}-s{seed}"
        mid = f"{t.name}-{mid}" if multi else mid
        if mid in finished:
            members.append(finished[mid])
            bar.update(config.epochs)
            continue
        bar.set_description(f"training {mid}")
        model = train_base_model(arch, hidden, t, seed, config, progress=bar, family=family)
        acc = evaluate(model, t)
        cfg = {**asdict(config), "train_seconds": round(time.perf_counter() - t0, 2)}
        members.append(Member(mid, arch, hidden, seed, acc, model, cfg, t.name if multi else ""))
        if out is not None:  # every finished model is on disk before the next one starts
            Population(task_list[0], members, tasks).save(out)
    bar.close()
    pop = Population(task_list[0], members, tasks)
    if out is not None:
        pop.save(out)
    return pop


def _finished_members(out, config: Dict) -> Dict[str, Member]:
    """Members already trained in ``out`` with the same settings (empty when there is no manifest)."""
    if not (Path(out) / MANIFEST).is_file():
        return {}
    same = lambda m: {k: v for k, v in m.train_config.items() if k != "train_seconds"} == config  # noqa: E731
    return {m.id: m for m in Population.load(out).members if same(m)}
