import pytest
import torch

import dynamo_ext as de
from dynamo_ext.population.tasks import accuracy, flipflop_batch


def test_flipflop_targets_hold_the_last_pulse():
    g = torch.Generator().manual_seed(0)
    x, y = flipflop_batch(20, 50, 3, 0.1, g)
    assert x.shape == y.shape == (20, 50, 3)
    assert set(x.unique().tolist()) <= {-1.0, 0.0, 1.0}
    for b in range(20):
        for c in range(3):
            state = 0.0
            for t in range(50):
                if x[b, t, c] != 0:
                    state = float(x[b, t, c])
                assert float(y[b, t, c]) == state


def test_digits_rows_are_time_steps(digits_task):
    assert digits_task.x_train.shape[1:] == (8, 8)
    assert digits_task.output_kind == "classes"
    assert len(digits_task.x_train) + len(digits_task.x_test) == 1797
    assert 0.0 <= float(digits_task.x_train.min()) and float(digits_task.x_train.max()) <= 1.0


def test_mnist1d_is_generated_locally():
    task = de.load_task("mnist1d", num_samples=500)
    assert task.x_train.shape == (400, 40, 1) and task.x_test.shape == (100, 40, 1)
    assert task.y_train.dtype == torch.int64 and int(task.y_train.max()) == 9


def test_accuracy_for_classes_and_real_outputs(digits_task):
    logits = torch.zeros(4, 3, 10)
    logits[torch.arange(4), -1, torch.tensor([1, 2, 3, 4])] = 1.0
    assert accuracy(digits_task, logits, torch.tensor([1, 2, 0, 0])) == 0.5
    ff = de.load_task("flipflop", n_train=4, n_test=4, seq_len=5)
    targets = torch.tensor([[[1.0], [0.0]], [[-1.0], [-1.0]]])
    outputs = torch.tensor([[[0.3], [5.0]], [[0.2], [-0.1]]])
    assert accuracy(ff, outputs, targets) == pytest.approx(2 / 3)


def test_unknown_task_and_bad_settings():
    with pytest.raises(ValueError, match="'name'"):
        de.load_task("cifar")
    with pytest.raises(ValueError, match="bad settings"):
        de.load_task("digits", colour=True)
    with pytest.raises(ValueError, match="n_train"):
        de.load_task("flipflop", n_train=0)


def test_pulse_tasks_share_inputs_and_differ_in_targets():
    tasks = {name: de.load_task(name, n_train=40, n_test=10, seq_len=30, pulse_prob=0.2)
             for name in ("flipflop", "integrate", "first")}
    x = tasks["flipflop"].x_train
    for t in tasks.values():
        assert torch.equal(t.x_train, x) and t.output_kind == "real" and t.n_outputs == 3
    # integrate: sign of the running sum; first: sign of the first pulse, held
    torch.testing.assert_close(tasks["integrate"].y_train, x.cumsum(1).sign())
    for s in range(5):
        for c in range(3):
            pulses = x[s, :, c].nonzero().squeeze(1)
            y = tasks["first"].y_train[s, :, c]
            if len(pulses):
                assert (y[:pulses[0]] == 0).all() and (y[pulses[0]:] == x[s, pulses[0], c]).all()
            else:
                assert (y == 0).all()
    assert not torch.equal(tasks["flipflop"].y_train, tasks["integrate"].y_train)
    assert not torch.equal(tasks["flipflop"].y_train, tasks["first"].y_train)
