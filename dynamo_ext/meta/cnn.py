"""The meta-CNN: one FiLM-conditioned CNN that emulates every layer of a population of base CNNs.

docs/method.md, "CNNs" (after arXiv:2302.14078): the layer-to-layer
map plays the part of the dynamics. With theta_n the model embedding of base
CNN n and L the family's depth, for layers l = 1..L
    a_l = conv_l(z_{l-1})                                 (z_0 = the input view)
    (gamma_l, beta_l) = g_l(theta)                        one small MLP of theta
    z_l = act((1 + gamma_l) * a_l + beta_l)               per-channel FiLM
    yhat = W_y flatten(z_L) + V_y theta + b_y             shared head
    hhat^n_l = A^n_l pool(z_l) + c^n_l                    per-model, per-layer 1x1 maps
with pool the average pooling to the recorded positions (dynamo_ext.population.base_cnn):
a 1x1 map commutes with average pooling, so the maps act on pooled meta
activations. The meta-CNN convolutions are PyTorch's (oneDNN on CPU, cuDNN
on GPU). The fitting loss is the RNN case's with one "time step": pooled
layer activations (standardised per model) and logits (KL).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_positive_int
from ..population.base_cnn import (
    ACTIVATION_MODULES,
    ACTIVATIONS,
    FAMILIES,
    conv_stack,
    pool_layer,
    positions,
    to_images,
)
from .rnn import MetaModel


class CNNMap(nn.Module):
    """Per-model maps A^n_l, c^n_l from the meta-CNN's pooled layer activations into base CNN n's.

    Input z [..., L * W * P] (layer-major, then channel, then position, as
    MetaCNN returns it); output [..., P * sum_l C^n_l] in the base CNN's
    recorded layout (dynamo_ext.population.base_cnn). Buffers ``mean`` and ``scale`` hold the
    standardisation, as in meta.HiddenMap.
    """

    def __init__(self, width: int, layer_channels: Sequence[int], n_positions: int):
        super().__init__()
        self.width, self.n_positions = width, n_positions
        self.layer_channels = [check_positive_int(c, "layer_channels") for c in layer_channels]
        self.layers = nn.ModuleList([nn.Linear(width, c) for c in self.layer_channels])
        d = n_positions * sum(self.layer_channels)
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("scale", torch.ones(()))

    @property
    def out_features(self) -> int:
        return self.n_positions * sum(self.layer_channels)

    def forward(self, z: Tensor) -> Tensor:
        lead = z.shape[:-1]
        z = z.reshape(*lead, len(self.layers), self.width, self.n_positions).transpose(-1, -2)  # [..., L, P, W]
        outs = [lin(z[..., l, :, :]).transpose(-1, -2).flatten(-2) for l, lin in enumerate(self.layers)]
        return torch.cat(outs, -1)

    def to_base(self, z: Tensor) -> Tensor:
        """Prediction in the base CNN's coordinates: (A z + c) * scale + mean."""
        return self(z) * self.scale + self.mean


class MetaCNN(MetaModel):
    """DYNAMO meta-model for a population of base CNNs of one depth family.

    Args:
        n_models: N, rows of the model-embedding table.
        input_size, seq_len: I and T of the inputs' layout x [B, T, I].
        n_outputs: C classes.
        layer_channels: per base model, the channels of each recorded layer
            (all of the family's depth L).
        family: "cnn1d" or "cnn2d" (dynamo_ext.population.base_cnn.FAMILIES: kernel, strides, pooling).
        width: W, channels of every meta-CNN layer (default 64).
        embedding_dim: m (default 2).
        film_hidden: hidden units of the FiLM MLP of theta (default 32).
        activation: the meta-CNN's nonlinearity (default "gelu").
        output_kind: "classes" (the only kind CNN tasks have here).
        model_ids: optional names of the N base models.

    Shapes: ``forward(x [B, T, I])`` returns z [B, 1, L * W * P] (pooled
    layer activations, one "time step") and yhat [B, 1, C]; float32 unless converted.

    Raises:
        ValueError: bad sizes, an unknown family or activation, base models
            of different depths.
    """

    def __init__(self, n_models: int, input_size: int, seq_len: int, n_outputs: int,
                 layer_channels: Sequence[Sequence[int]], family: str = "cnn1d", width: int = 64,
                 embedding_dim: int = 2, film_hidden: int = 32, activation: str = "gelu",
                 output_kind: str = "classes", model_ids: Optional[Sequence[str]] = None):
        super().__init__()
        self._init_table(n_models, embedding_dim, model_ids)
        self.family = check_choice(family, "family", tuple(FAMILIES))
        self.label = f"meta-{family}"
        self.input_size = check_positive_int(input_size, "input_size")
        self.seq_len = check_positive_int(seq_len, "seq_len")
        self.n_outputs = check_positive_int(n_outputs, "n_outputs")
        self.width = check_positive_int(width, "width")
        self.film_hidden = check_positive_int(film_hidden, "film_hidden")
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        self.output_kind = check_choice(output_kind, "output_kind", ("classes",))
        if len(layer_channels) != n_models:
            raise ValueError(f"argument 'layer_channels' must have {n_models} entries (n_models), "
                             f"got {len(layer_channels)}")
        depths = sorted({len(c) for c in layer_channels})
        if len(depths) != 1 or depths[0] == 0:
            raise ValueError(f"argument 'layer_channels': every base CNN must record the same, nonzero number "
                             f"of layers (one depth family), got depths {depths}")
        self.depth = depths[0]
        self.n_positions = positions(family)
        self.state_size = self.depth * width * self.n_positions
        m = embedding_dim
        in_channels = input_size if FAMILIES[family]["dims"] == 1 else 1
        self.convs = conv_stack(family, in_channels, [width] * self.depth)
        self.act = ACTIVATION_MODULES[activation]()
        self.film = nn.Sequential(nn.Linear(m, film_hidden), nn.Tanh(), nn.Linear(film_hidden, 2 * self.depth * width))
        nn.init.zeros_(self.film[2].weight)  # start at the identity modulation
        nn.init.zeros_(self.film[2].bias)
        with torch.no_grad():
            flat = self._layers(torch.zeros(1, seq_len, input_size), torch.zeros(1, m))[-1].flatten(1).shape[1]
        self.head = nn.Linear(flat, n_outputs)
        self.head_theta = nn.Linear(m, n_outputs, bias=False)
        self.maps = nn.ModuleList([CNNMap(width, c, self.n_positions) for c in layer_channels])

    def config(self) -> Dict:
        """Constructor arguments (JSON-serialisable), for checkpoints; ``kind`` selects the class."""
        return {"kind": "cnn", "n_models": self.n_models, "input_size": self.input_size, "seq_len": self.seq_len,
                "n_outputs": self.n_outputs, "layer_channels": [mp.layer_channels for mp in self.maps],
                "family": self.family, "width": self.width, "embedding_dim": self.embedding_dim,
                "film_hidden": self.film_hidden, "activation": self.activation, "output_kind": self.output_kind,
                "model_ids": list(self.model_ids)}

    def _layers(self, x: Tensor, th: Tensor) -> List[Tensor]:
        film = self.film(th).view(len(th), self.depth, 2, self.width)
        spatial = (1,) * FAMILIES[self.family]["dims"]
        h, out = to_images(x, self.family), []
        for l, conv in enumerate(self.convs):
            gamma = film[:, l, 0].view(len(th), self.width, *spatial)
            beta = film[:, l, 1].view(len(th), self.width, *spatial)
            h = self.act((1 + gamma) * conv(h) + beta)
            out.append(h)
        return out

    def forward(self, x: Tensor, model_index=None, theta: Optional[Tensor] = None, *,
                model_ids=None) -> Tuple[Tensor, Tensor]:
        """Run the meta-CNN.

        Args:
            x: [B, T, I] inputs (dtype of the parameters).
            model_index: int64 [B] (or an int): emulate the base models at these positions
                (``model_ids[i]`` names position i; ``model_ids=`` is this keyword's deprecated name).
            theta: [m] or [B, m]: run at these embeddings instead.

        Returns:
            (z [B, 1, L * W * P] pooled layer activations, yhat [B, 1, C] logits).

        Raises:
            ValueError: x of the wrong shape or dtype, positions out of range.
        """
        if not isinstance(x, Tensor) or x.dim() != 3 or tuple(x.shape[1:]) != (self.seq_len, self.input_size):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"argument 'x' must have shape [B, {self.seq_len}, {self.input_size}], got {got}")
        if x.dtype != self.theta.dtype:
            raise ValueError(f"argument 'x' must have dtype {self.theta.dtype} (the meta-model's), got {x.dtype}")
        th = self.resolve_theta(model_index, theta, batch=x.shape[0], model_ids=model_ids)
        layers = self._layers(x, th)
        z = torch.cat([pool_layer(h, self.family) for h in layers], 1)
        y = self.head(layers[-1].flatten(1)) + self.head_theta(th)
        return z.unsqueeze(1), y.unsqueeze(1)

    def map_layout(self, model: nn.Module) -> Dict:
        return {"layer_channels": list(model.layer_channels)}

    def _new_map(self, hidden_size: int, layer_channels: Optional[Sequence[int]] = None) -> CNNMap:
        if layer_channels is None or len(layer_channels) != self.depth \
                or self.n_positions * sum(layer_channels) != hidden_size:
            raise ValueError(f"argument 'layer_channels' must give {self.depth} layers' channels with "
                             f"{self.n_positions} * sum = hidden_size {hidden_size}, got {layer_channels}")
        return CNNMap(self.width, layer_channels, self.n_positions)


__all__ = ["MetaCNN", "CNNMap"]
