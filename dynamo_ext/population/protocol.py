"""The recording protocol a user's network follows to join a Population, checked on a tiny input.

docs/guide/own-networks.md: ``record(x [B, T, I]) -> (hidden [B, T, d], outputs [B, T, C])`` in the
module's parameter dtype, ``state_size`` (d), optionally ``input_size`` (I), ``arch`` (a label),
``hidden_size``, ``forward(x) -> outputs [B, T, C]`` (else the outputs of ``record`` are scored) and
``step(x [B, I], z [B, d]) -> z' [B, d]`` (the one-step map whose fixed points are solved).
``check_protocol`` runs each method the module has on two of the task's test sequences and names what
is missing or of the wrong shape, before the population does any work with it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .recording import param_dtype
from .task_data import TaskData


def _shape(value) -> str:
    return f"shape {tuple(value.shape)}" if isinstance(value, Tensor) else f"a {type(value).__name__}"


def check_protocol(model: nn.Module, task: TaskData, name: str) -> None:
    """Check ``model`` against the recording protocol (and the step protocol when it has ``step``).

    Raises:
        ValueError naming ``name`` and what is missing or wrong: no ``record`` or ``state_size``, an
            ``input_size`` other than the task's, a ``record`` that does not return (hidden [B, T, d],
            outputs [B, T, C]) with d = ``state_size`` and C = the task's outputs, a ``step`` that does not
            map [B, I], [B, d] to [B, d].
    """
    missing = [a for a in ("record", "state_size") if not hasattr(model, a)]
    if missing:
        raise ValueError(f"argument '{name}' must follow the recording protocol (record(x) -> (hidden, outputs), "
                         f"state_size; docs/guide/own-networks.md): {type(model).__name__} lacks {missing}")
    d = model.state_size
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"argument '{name}'.state_size must be a positive int, got {d!r}")
    if getattr(model, "input_size", task.input_size) != task.input_size:
        raise ValueError(f"argument '{name}' must take input_size={task.input_size} (the task's), "
                         f"got {model.input_size}")
    x = task.x_test[:2].to(param_dtype(model))
    with torch.no_grad():
        try:
            out = model.record(x)
        except Exception as exc:  # the user's code: say where it failed
            raise ValueError(f"argument '{name}'.record(x) failed on x of shape {tuple(x.shape)}: "
                             f"{type(exc).__name__}: {exc}") from exc
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise ValueError(f"argument '{name}'.record(x) must return (hidden, outputs), got {_shape(out)}")
        hidden, outputs = out
        if not (isinstance(hidden, Tensor) and hidden.dim() == 3 and hidden.shape[0] == 2 and hidden.shape[2] == d):
            raise ValueError(f"argument '{name}'.record(x) must return hidden [B, T, state_size={d}] for x of shape "
                             f"{tuple(x.shape)}, got {_shape(hidden)}")
        if not (isinstance(outputs, Tensor) and tuple(outputs.shape) == (*hidden.shape[:2], task.n_outputs)):
            raise ValueError(f"argument '{name}'.record(x) must return outputs [B, T, C={task.n_outputs}] (the "
                             f"task's outputs) beside hidden {tuple(hidden.shape)}, got {_shape(outputs)}")
        if callable(getattr(model, "step", None)):
            z = hidden[:, -1]
            try:
                z_next = model.step(x[:, -1], z)
            except Exception as exc:
                raise ValueError(f"argument '{name}'.step(x [B, I], z [B, {d}]) failed: {type(exc).__name__}: "
                                 f"{exc}") from exc
            if not (isinstance(z_next, Tensor) and z_next.shape == z.shape):
                raise ValueError(f"argument '{name}'.step(x, z) must return z' of z's shape {tuple(z.shape)}, got "
                                 f"{_shape(z_next)}")


def scores_forward(model: nn.Module) -> bool:
    """Whether ``model`` defines its own ``forward`` (else its outputs are read from ``record``)."""
    return type(model).forward is not nn.Module.forward
