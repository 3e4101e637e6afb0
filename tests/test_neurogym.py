"""neurogym's tasks as a task source (issue "your own networks", item 6); skipped without the extra."""
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
    # every trial ends at its decision: the last step has the fixation input off (channel 0)
    assert (task.x_train[:, -1, 0] == 0).all() and (task.x_train[:, 0].abs().sum(-1) >= 0).all()


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
