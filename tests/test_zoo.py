import json

import pytest
import torch

import dynamo_ext as de
from dynamo_ext.population.base_rnn import BaseRNN
from dynamo_ext.population.training import TrainConfig, evaluate, train_base_model


def test_population_is_trained_and_better_than_chance(tiny_population):
    assert [m.arch for m in tiny_population.members] == ["rnn", "gru", "lstm"]
    gru = tiny_population.members[1]
    assert gru.test_accuracy > 0.3  # chance is 0.1 on 10 digits
    assert gru.id == "gru-h12-s0" and gru.train_config["epochs"] == 3


def test_training_is_deterministic(digits_task):
    cfg = TrainConfig(epochs=1)
    a = train_base_model("gru", 8, digits_task, seed=3, config=cfg)
    b = train_base_model("gru", 8, digits_task, seed=3, config=cfg)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_save_load_roundtrip(tiny_population, tmp_path):
    tiny_population.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["task"] == "digits"
    assert {"id", "arch", "hidden_size", "seed", "test_accuracy", "train_config", "file"} <= set(manifest["models"][0])
    assert not list(tmp_path.rglob("*.tmp"))
    loaded = de.Population.load(tmp_path)
    x = tiny_population.task.x_test[:5]
    for a, b in zip(tiny_population.members, loaded.members):
        torch.testing.assert_close(a.model(x), b.model(x), rtol=0, atol=0)
        assert a.test_accuracy == b.test_accuracy


def test_load_errors_name_the_file(tiny_population, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        de.Population.load(tmp_path / "nothing")
    tiny_population.save(tmp_path)
    model_file = tmp_path / "models" / "gru-h12-s0.safetensors"
    model_file.write_bytes(model_file.read_bytes()[:50])
    with pytest.raises(ValueError, match="gru-h12-s0.safetensors.*corrupted"):
        de.Population.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json.*corrupted"):
        de.Population.load(tmp_path)


def test_manifest_paths_outside_the_folder_are_refused(tiny_population, tmp_path):
    tiny_population.save(tmp_path / "pop")
    manifest = json.loads((tmp_path / "pop" / "manifest.json").read_text())
    manifest["models"][0]["file"] = "../evil.safetensors"
    (tmp_path / "pop" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="outside"):
        de.Population.load(tmp_path / "pop")


def test_lstm_record_returns_h_and_c_consistent_with_forward(digits_task):
    torch.manual_seed(0)
    m = BaseRNN("lstm", 8, 6, 10)
    x = digits_task.x_test[:4]
    hidden, out = m.record(x)
    assert hidden.shape == (4, 8, 12) and out.shape == (4, 8, 10)
    torch.testing.assert_close(out, m(x))
    _, (h_n, c_n) = m.rnn(x)
    torch.testing.assert_close(hidden[:, -1, :6], h_n[0])
    torch.testing.assert_close(hidden[:, -1, 6:], c_n[0])


def test_from_modules_wraps_user_networks(digits_task):
    torch.manual_seed(0)
    gru = torch.nn.GRU(8, 5)  # time-major, as many users write it
    pop = de.Population.from_modules([(gru, torch.nn.Linear(5, 10))], digits_task, ids=["mine"])
    member = pop.members[0]
    assert member.id == "mine" and member.arch == "gru" and member.state_size == 5
    x = digits_task.x_test[:3]
    expected, _ = gru(x.transpose(0, 1))
    hidden, _ = member.model.record(x)
    torch.testing.assert_close(hidden, expected.transpose(0, 1))
    assert member.test_accuracy == evaluate(member.model, digits_task)


def test_bad_input(digits_task, tiny_population):
    with pytest.raises(ValueError, match="at least one"):
        de.Population.from_modules([], digits_task)
    with pytest.raises(ValueError, match="input_size=8"):
        de.Population.from_modules([(torch.nn.GRU(3, 5), torch.nn.Linear(5, 10))], digits_task)
    with pytest.raises(ValueError, match="unidirectional"):  # stacked layers are taken (tests/test_networks.py)
        BaseRNN.wrap(torch.nn.GRU(8, 5, num_layers=2, bidirectional=True), torch.nn.Linear(10, 10))
    with pytest.raises(ValueError, match="proj_size=0"):
        BaseRNN.wrap(torch.nn.LSTM(8, 5, proj_size=3), torch.nn.Linear(3, 10))
    with pytest.raises(ValueError, match="'archs'"):
        de.train_population(digits_task, archs=("transformer",), progress=False)
    with pytest.raises(ValueError, match="'epochs'"):
        de.train_population(digits_task, config=TrainConfig(epochs=0), progress=False)
    bad = digits_task.x_test[:2].clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="'x' must be finite"):
        tiny_population.record(bad)
    with pytest.raises(ValueError, match="input size 8"):
        tiny_population.record(torch.zeros(2, 8, 3))


def test_multitask_population_roundtrip(tmp_path):
    cfg = {"n_train": 40, "n_test": 20, "seq_len": 15}
    tasks = [de.load_task(name, **cfg) for name in ("flipflop", "integrate")]
    pop = de.train_population(tasks, archs=("rnn", "gru"), hidden_sizes=(6,), n_seeds=1,
                              config=TrainConfig(epochs=2), out=tmp_path / "pop", progress=False)
    assert pop.is_multitask and len(pop) == 4
    assert pop.labels("task") == ["flipflop", "flipflop", "integrate", "integrate"]
    assert pop.labels("arch") == ["rnn", "gru", "rnn", "gru"]
    assert pop.ids[2] == "integrate-rnn-h6-s0"
    assert pop.task_of(2).name == "integrate" and torch.equal(pop.task_of(2).y_test, tasks[1].y_test)
    # each member's accuracy is measured against its own task's targets
    assert pop.members[2].test_accuracy == pytest.approx(evaluate(pop.members[2].model, tasks[1]))
    back = de.Population.load(tmp_path / "pop")
    assert back.is_multitask and back.labels("task") == pop.labels("task")
    assert torch.equal(back.task_of(3).y_train, tasks[1].y_train)


def test_tasks_of_one_population_must_share_inputs():
    ff = de.load_task("flipflop", n_train=10, n_test=5, seq_len=8)
    other = de.load_task("integrate", n_train=10, n_test=5, seq_len=8, seed=3)
    with pytest.raises(ValueError, match="must share their inputs"):
        de.train_population([ff, other], archs=("rnn",), hidden_sizes=(4,), n_seeds=1, progress=False)
    with pytest.raises(ValueError, match="'by' must be one of"):
        de.Population(ff, [de.population.Member("a", "rnn", 4, 0, 0.5, BaseRNN("rnn", 3, 4, 3))]).labels("colour")
