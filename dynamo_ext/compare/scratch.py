"""Training from scratch on a few labels: the baseline of few-label adaptation (``dynamo_ext.adapt``)."""
from __future__ import annotations

from torch import Tensor, nn

from .._checks import check_positive_int
from ..population.tasks import TaskData
from ..population.training import TrainConfig, train_base_model


def train_scratch(task: TaskData, x: Tensor, y: Tensor, arch: str = "gru", hidden_size: int = 64,
                  seed: int = 0, epochs: int = 200, family: str = "rnn") -> nn.Module:
    """A base model trained from scratch on a few labelled examples (the few-label baseline).

    Args:
        task: the task (its test split is kept for evaluation).
        x: [n, T, I] labelled inputs; y: their labels [n] (classes) or targets [n, T, C].
        arch, hidden_size, family: the base model (zoo.build_base_model);
            epochs: full-batch passes (Adam, the architecture's default rate).

    Raises:
        ValueError: x and y of different lengths.
    """
    check_positive_int(epochs, "epochs")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"arguments 'x' and 'y' must hold the same, nonzero number of examples, "
                         f"got {len(x)} and {len(y)}")
    few = TaskData(task.name, x, y, task.x_test, task.y_test, task.output_kind, task.n_outputs, task.config)
    return train_base_model(arch, hidden_size, few, seed, TrainConfig(epochs=epochs, batch_size=len(x)),
                            family=family)

