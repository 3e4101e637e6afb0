"""Base-model families: which architectures each family ("rnn", "cnn1d", "cnn2d") trains, and a builder.

Recurrent base models (BaseRNN) and CNNs (BaseCNN) of one depth family join a
population through the same recording protocol (docs/method.md, "Base models and their recording").
"""
from __future__ import annotations

from torch import nn

from .._checks import check_choice
from .base_cnn import ACTIVATIONS, FAMILIES, BaseCNN
from .base_rnn import ARCHS, RNN_ARCHS, BaseRNN
from .tasks import TaskData

FAMILY_ARCHS = {"rnn": RNN_ARCHS, **{f: ACTIVATIONS for f in FAMILIES}}
DEFAULT_ARCHS = {"rnn": ARCHS, **{f: ACTIVATIONS for f in FAMILIES}}


def family_of(model: nn.Module) -> str:
    """"rnn" for recurrent base models, else the CNN family ("cnn1d", "cnn2d")."""
    return getattr(model, "family", "rnn")


def build_base_model(family: str, arch: str, task: TaskData, hidden_size: int) -> nn.Module:
    """An untrained base model for ``task``: a BaseRNN (family "rnn") or a BaseCNN of the family."""
    check_choice(family, "family", tuple(FAMILY_ARCHS))
    check_choice(arch, "arch", FAMILY_ARCHS[family])
    if family == "rnn":
        return BaseRNN(arch, task.input_size, hidden_size, task.n_outputs)
    return BaseCNN(family, arch, task.input_size, task.seq_len, hidden_size, task.n_outputs)
