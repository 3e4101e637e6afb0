"""Base CNNs: one depth family of 1-D or 2-D convolutional classifiers, and user CNNs.

For a CNN, DYNAMO's "dynamics" is the map from one layer's activations to the
next (docs/method.md, "CNNs"). The package's inputs keep the
sequence layout x [B, T, I]; a family views them as
- "cnn1d": a signal of I channels and length T, [B, I, T] (MNIST-1D: 1 x 40);
- "cnn2d": a one-channel image of T rows and I columns, [B, 1, T, I]
  (scikit-learn's digits: 8 x 8).

A family member: ``depth`` convolutions of ``width`` channels (kernel and
strides fixed by the family, "same" padding), each followed by the
activation (ReLU, tanh or GELU), then a linear classifier on the flattened
last layer. Members differ in width, seed and activation.

Recording protocol (as for the RNNs, see dynamo_ext.population): ``record(x)``
returns (hidden [B, 1, d], outputs [B, 1, C]). ``hidden`` holds every
recorded layer's activations average-pooled to a few positions (4 in 1-D,
2 x 2 in 2-D), flattened channel-major and concatenated over layers, so that
``d = positions * sum(layer_channels)``; outputs are the logits as a
sequence of one step, so that accuracies, losses and the baselines of the
RNN case apply unchanged.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_positive_int

FAMILIES: Dict[str, Dict] = {
    "cnn1d": {"dims": 1, "kernel": 5, "strides": (1, 2, 2), "pool": (4,)},
    "cnn2d": {"dims": 2, "kernel": 3, "strides": (1, 2, 2), "pool": (2, 2)},
}
ACTIVATIONS = ("relu", "tanh", "gelu")
ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def to_images(x: Tensor, family: str) -> Tensor:
    """The family's view of inputs [B, T, I]: [B, I, T] (cnn1d) or [B, 1, T, I] (cnn2d)."""
    if x.dim() != 3:
        raise ValueError(f"argument 'x' must have shape [B, T, I], got {tuple(x.shape)}")
    return x.transpose(1, 2) if FAMILIES[family]["dims"] == 1 else x.unsqueeze(1)


def pool_layer(h: Tensor, family: str) -> Tensor:
    """One layer's activations [B, C, *spatial] average-pooled to the family's positions, [B, C * P]."""
    pool = FAMILIES[family]["pool"]
    pooled = F.adaptive_avg_pool1d(h, pool[0]) if len(pool) == 1 else F.adaptive_avg_pool2d(h, pool)
    return pooled.flatten(1)


def positions(family: str) -> int:
    """P, the number of pooled positions recorded per channel."""
    return math.prod(FAMILIES[family]["pool"])


def conv_stack(family: str, in_channels: int, channels: Sequence[int]) -> nn.ModuleList:
    """The family's convolutions (kernel, strides, "same" padding) with the given output channels."""
    spec = FAMILIES[family]
    conv = nn.Conv1d if spec["dims"] == 1 else nn.Conv2d
    strides = list(spec["strides"]) + [2] * max(0, len(channels) - len(spec["strides"]))
    layers, c = [], in_channels
    for out, stride in zip(channels, strides):
        layers.append(conv(c, out, spec["kernel"], stride=stride, padding=spec["kernel"] // 2))
        c = out
    return nn.ModuleList(layers)


class BaseCNN(nn.Module):
    """A base CNN of a family (module docstring).

    Args:
        family: "cnn1d" or "cnn2d".
        arch: the activation, "relu", "tanh" or "gelu".
        input_size: I; seq_len: T (the inputs' layout [B, T, I]).
        hidden_size: the width (channels of every layer).
        n_outputs: C, the classes.
        depth: convolutions (default: the family's, 3).

    Shapes: ``forward(x [B, T, I])`` -> logits [B, 1, C]; ``record(x)`` ->
    (pooled layer activations [B, 1, state_size], logits [B, 1, C]).

    Raises:
        ValueError: an unknown family or activation, sizes that are not positive.
    """

    def __init__(self, family: str, arch: str, input_size: int, seq_len: int, hidden_size: int,
                 n_outputs: int, depth: Optional[int] = None):
        super().__init__()
        self.family = check_choice(family, "family", tuple(FAMILIES))
        self.arch = check_choice(arch, "arch", ACTIVATIONS)
        self.input_size = check_positive_int(input_size, "input_size")
        self.seq_len = check_positive_int(seq_len, "seq_len")
        self.hidden_size = check_positive_int(hidden_size, "hidden_size")
        self.n_outputs = check_positive_int(n_outputs, "n_outputs")
        self.depth = check_positive_int(depth or len(FAMILIES[family]["strides"]), "depth")
        in_channels = input_size if FAMILIES[family]["dims"] == 1 else 1
        self.convs = conv_stack(family, in_channels, [hidden_size] * self.depth)
        self.act = ACTIVATION_MODULES[arch]()
        with torch.no_grad():
            flat = self._layers(torch.zeros(1, seq_len, input_size))[-1].flatten(1).shape[1]
        self.readout = nn.Linear(flat, n_outputs)

    @property
    def layer_channels(self) -> List[int]:
        return [self.hidden_size] * self.depth

    @property
    def state_size(self) -> int:
        return positions(self.family) * sum(self.layer_channels)

    def spec(self) -> Dict:
        """Constructor arguments: models with equal specs have parameters of equal shapes."""
        return {"family": self.family, "arch": self.arch, "input_size": self.input_size, "seq_len": self.seq_len,
                "hidden_size": self.hidden_size, "n_outputs": self.n_outputs, "depth": self.depth}

    def _layers(self, x: Tensor) -> List[Tensor]:
        h, out = to_images(x, self.family), []
        for conv in self.convs:
            h = self.act(conv(h))
            out.append(h)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.readout(self._layers(x)[-1].flatten(1)).unsqueeze(1)

    def record(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        layers = self._layers(x)
        hidden = torch.cat([pool_layer(h, self.family) for h in layers], 1)
        return hidden.unsqueeze(1), self.readout(layers[-1].flatten(1)).unsqueeze(1)


class RecordedCNN(nn.Module):
    """A user's CNN (e.g. an nn.Sequential) made recordable: the named layers' outputs are recorded.

    Args:
        module: maps the family's view of x (``to_images``) to logits [B, C].
        layers: names (``module.named_modules()``) of the layers whose
            outputs are recorded, in order, one per level of the family's depth.
        family: "cnn1d" or "cnn2d" (how x [B, T, I] is viewed).
        input_size, seq_len: the inputs' I and T (to measure the layers' channels).
        arch: a label for the model (default: the module's class name).

    Raises:
        ValueError: an unknown layer name, a layer whose output is not
            [B, C, *spatial] of the family's dimension.
    """

    def __init__(self, module: nn.Module, layers: Sequence[str], family: str, input_size: int, seq_len: int,
                 arch: Optional[str] = None):
        super().__init__()
        self.family = check_choice(family, "family", tuple(FAMILIES))
        named = dict(module.named_modules())
        missing = [name for name in layers if name not in named]
        if missing or len(layers) == 0:
            raise ValueError(f"argument 'layers' must name modules of the model, got {list(layers)}; "
                             f"unknown: {missing}; known: {[n for n in named if n]}")
        self.module, self.layers = module, list(layers)
        self._recorded = [named[n] for n in self.layers]  # a plain list: not registered twice as submodules
        self.arch = arch or type(module).__name__
        self.input_size, self.seq_len = int(input_size), int(seq_len)
        with torch.no_grad():
            acts, logits = self._run(torch.zeros(2, seq_len, input_size))
        dims = FAMILIES[family]["dims"]
        for name, a in zip(self.layers, acts):
            if a.dim() != 2 + dims:
                raise ValueError(f"layer {name!r} must output [B, C, {'L' if dims == 1 else 'H, W'}] for family "
                                 f"{family!r}, got shape {tuple(a.shape)}")
        self.layer_channels = [int(a.shape[1]) for a in acts]
        self.hidden_size = max(self.layer_channels)
        self.n_outputs = int(logits.shape[-1])
        self.depth = len(self.layers)

    @property
    def state_size(self) -> int:
        return positions(self.family) * sum(self.layer_channels)

    def _run(self, x: Tensor) -> Tuple[List[Tensor], Tensor]:
        acts: Dict[str, Tensor] = {}
        hooks = [mod.register_forward_hook(lambda _m, _i, out, n=n: acts.__setitem__(n, out))
                 for n, mod in zip(self.layers, self._recorded)]
        try:
            logits = self.module(to_images(x, self.family))
        finally:
            for h in hooks:
                h.remove()
        return [acts[n] for n in self.layers], logits

    def forward(self, x: Tensor) -> Tensor:
        return self.module(to_images(x, self.family)).unsqueeze(1)

    def record(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        acts, logits = self._run(x)
        return torch.cat([pool_layer(a, self.family) for a in acts], 1).unsqueeze(1), logits.unsqueeze(1)


__all__ = ["FAMILIES", "ACTIVATIONS", "BaseCNN", "RecordedCNN", "to_images", "pool_layer", "positions",
           "conv_stack"]
