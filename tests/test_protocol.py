"""Population.from_modules runs a user's module once against the protocol it claims and names what is missing or
of the wrong shape; a module with record and no forward is scored through record."""
import pytest
import torch
from torch import nn

import dynamo_ext as de


class RecordOnly(nn.Module):
    """The written protocol, exactly: record, state_size, input_size, arch, step; no forward."""

    arch = "mine"

    def __init__(self, task, d=6, hidden_out=None, outputs_out=None, step_out=None):
        super().__init__()
        self.cell = nn.RNNCell(task.input_size, d)
        self.readout = nn.Linear(d, task.n_outputs)
        self.state_size, self.input_size = d, task.input_size
        self._bad = (hidden_out, outputs_out, step_out)

    def step(self, x, z):
        return self._bad[2](z) if self._bad[2] else self.cell(x, z)

    def record(self, x):
        z, hs = x.new_zeros(x.shape[0], self.state_size), []
        for t in range(x.shape[1]):
            z = self.cell(x[:, t], z)
            hs.append(z)
        h = torch.stack(hs, 1)
        y = self.readout(h)
        return (self._bad[0](h) if self._bad[0] else h), (self._bad[1](y) if self._bad[1] else y)


def test_a_module_of_the_written_protocol_without_forward_joins_and_is_scored_through_record(digits_task):
    model = RecordOnly(digits_task)
    pop = de.Population.from_modules([model], digits_task)
    x = digits_task.x_test
    with torch.no_grad():
        expected = de.population.accuracy(digits_task, model.record(x)[1], digits_task.y_test)
    assert pop.members[0].test_accuracy == pytest.approx(expected)
    assert pop.record(max_sequences=4).state_sizes == [6]


@pytest.mark.parametrize("bad, message", [
    (dict(hidden_out=lambda h: h[..., :3]), r"must return hidden \[B, T, state_size=6\]"),
    (dict(outputs_out=lambda y: y[..., :2]), r"must return outputs \[B, T, C=10\]"),
    (dict(outputs_out=lambda y: y.numpy()), r"must return outputs .* got a ndarray"),
    (dict(step_out=lambda z: z[:, :2]), r"step\(x, z\) must return z' of z's shape \(2, 6\), got shape \(2, 2\)"),
    (dict(hidden_out=lambda h: 1 / 0), r"record\(x\) failed on x of shape \(2, 8, 8\): ZeroDivisionError"),
])
def test_each_protocol_error_is_named_before_any_work(digits_task, bad, message):
    with pytest.raises(ValueError, match=r"argument 'models\[1\]'.*" + message):
        de.Population.from_modules([RecordOnly(digits_task), RecordOnly(digits_task, **bad)], digits_task)


def test_a_module_without_record_or_with_a_bad_state_size_is_named(digits_task):
    class NoRecord(nn.Module):
        state_size = 4

    with pytest.raises(ValueError, match=r"'models\[0\]' must be a BaseRNN, an \(rnn, readout\) pair or a module"):
        de.Population.from_modules([NoRecord()], digits_task)
    model = RecordOnly(digits_task)
    model.state_size = 6.0
    with pytest.raises(ValueError, match=r"'models\[0\]'.state_size must be a positive int, got 6.0"):
        de.Population.from_modules([model], digits_task)
