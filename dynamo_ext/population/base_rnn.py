"""Recurrent base models: BaseRNN, a torch RNN / GRU / LSTM / CT-RNN with a linear readout.

A *base model* is a trained recurrent network with a linear readout (docs/method.md,
"Base models and their recording"). Its *hidden state* z_t at step t is what fully determines its
dynamics: h_t (tanh or ReLU nn.RNN, GRU, CT-RNN) or [h_t; c_t] (LSTM), and for
stacked layers the layers' states concatenated, [z_1; ...; z_L].
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from torch import Tensor, nn

from .._checks import check_choice, check_positive_int
from .ctrnn import CTRNN
from .step import check_layer, layer_state_size, layer_step, run_steps, top_hidden

ARCHS = ("rnn", "gru", "lstm")  # trained by default
RNN_ARCHS = ARCHS + ("relu_rnn", "ctrnn")  # every BaseRNN architecture
_RNN_CLASSES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


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
    (``dynamo_ext.population.step``): ``state_size`` is L * H, or L * 2H for the LSTM.

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
