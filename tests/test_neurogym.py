"""neurogym's tasks as a task source; skipped without the extra."""
import json

import pytest
import torch

import dynamo_ext as de

ngym = pytest.importorskip("neurogym", reason="neurogym is not installed (pip install 'dynamo_ext[neurogym]')")
NAME = "neurogym:ContextDecisionMaking-v0"


def test_a_neurogym_task_maps_onto_task_data_and_is_made_again_from_its_settings():
    task = de.load_task(NAME, n_train=60, n_test=20, seed=3)
    assert task.output_kind == "classes" and task.n_outputs == 3 and task.generated
    assert task.x_train.shape[0] == 60 and task.x_test.shape[0] == 20 and task.input_size == 5
    assert task.y_train.dtype == torch.long and set(task.y_train.tolist()) <= {1, 2}  # a decision, not fixation
    again = de.load_task(NAME, **task.config)
    assert torch.equal(again.x_train, task.x_train) and torch.equal(again.y_test, task.y_test)
    assert not torch.equal(de.load_task(NAME, n_train=60, n_test=20, seed=4).x_train, task.x_train)
    # every trial fixates, then ends at its decision: the fixation input (channel 0) is on at some step and
    # off at the last, and every trial carries stimulus input (channels 1-4)
    assert (task.x_train[:, -1, 0] == 0).all() and (task.x_train[:, :-1, 0] > 0).any(1).all()
    assert (task.x_train[:, :, 1:].abs().sum((1, 2)) > 0).all()


def test_a_population_on_a_neurogym_task_saves_loads_and_fits_through_the_cli(tmp_path):
    from dynamo_ext.cli import main

    out = tmp_path / "pop"
    assert main(["zoo", "--task", NAME, "--archs", "gru", "--hidden-sizes", "8", "--seeds", "2", "--epochs", "2",
                 "--out", str(out), "--no-progress"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == NAME and "task_data" not in manifest  # made again from its settings
    pop = de.Population.load(out)
    assert pop.task.name == NAME and len(pop) == 2
    assert main(["fit", str(out), "--out", str(tmp_path / "meta"), "--steps", "5", "--batch-size", "8",
                 "--state-size", "8", "--no-progress"]) == 0


def test_bad_neurogym_names_are_refused_naming_the_argument():
    with pytest.raises(ValueError, match="neurogym cannot make 'NoSuchTask-v0'"):
        de.load_task("neurogym:NoSuchTask-v0")


def test_networks_trained_the_neurogym_way_go_through_from_modules_fit_and_analyze(tmp_path):
    """python/neurogym_dataset.py at its quick settings: ngym.Dataset batches (time major, per-step labels),
    time-major nn.GRU / nn.LSTM trained with cross-entropy over every step, then from_modules, fit, analyze."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "python" / "neurogym_dataset.py"
    spec = importlib.util.spec_from_file_location("neurogym_dataset", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    metrics = example.main(["--quick", "--out", str(tmp_path / "report")])
    assert [p["id"] for p in metrics["population"]] == ["gru-s0", "gru-s1", "lstm-s0", "lstm-s1"]
    assert all(0 <= row["hidden_r2"] <= 1 and 0 <= row["output_agreement"] <= 1 for row in metrics["emulation"])
    assert (tmp_path / "report" / "report.md").is_file()
    x, y, n_actions = example.neurogym_batches(2, 8, 30, seed=5)
    assert x.shape == (30, 16, 3) and y.shape == (30, 16)  # neurogym's own layout
    task = de.TaskData.from_tensors("ngym", x, y, x, y, time_major=True)
    assert task.per_step and task.x_train.shape == (16, 30, 3) and torch.equal(task.y_train, torch.from_numpy(y).T)
    assert task.n_outputs == n_actions
