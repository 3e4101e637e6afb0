"""A researcher's own data as a task: validated at construction, saved with the population,
restored exactly, never replaced by a generated task of the same name."""
import json

import numpy as np
import pytest
import torch

import dynamo_ext as de
from dynamo_ext.population.tasks import TaskData
from dynamo_ext.population.base_rnn import BaseRNN


def integration_arrays(n=40, T=12, seed=0):
    """A context-dependent integration task of the user's own, as NumPy arrays (float64)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, T, 3))
    y = np.cumsum(x[..., :2], axis=1)[..., :1] * 0.1
    return x, y


def own_task(name="integrate"):
    xtr, ytr = integration_arrays(40, seed=0)
    xte, yte = integration_arrays(20, seed=1)
    return TaskData.from_tensors(name, xtr, ytr, xte, yte)


def test_from_tensors_takes_numpy_and_infers_the_kind():
    task = own_task()
    assert task.output_kind == "real" and task.n_outputs == 1 and not task.generated
    assert task.x_train.dtype == torch.float32 and task.x_train.shape == (40, 12, 3)
    labels = TaskData.from_tensors("mine", np.zeros((5, 4, 2)), np.array([0, 2, 1, 2, 0]), np.zeros((3, 4, 2)),
                                   np.array([1, 1, 0]))
    assert labels.output_kind == "classes" and labels.n_outputs == 3 and labels.y_train.dtype == torch.int64
    assert "generated=False" in repr(labels) and "tensor" not in repr(labels)
    assert de.load_task("flipflop", n_train=10, n_test=5).generated


@pytest.mark.parametrize("change,match", [
    (dict(x_train=np.zeros((40, 12))), "'x_train' must be \\[N, T, I\\]"),
    (dict(y_train=np.zeros((40, 12))), "'y_train' must be \\[N, T, n_outputs\\] real targets"),
    (dict(n_outputs=2), "'y_train' must be .* n_outputs=2"),
    (dict(x_test=np.zeros((20, 12, 4))), "'x_test' must have the steps and inputs of x_train"),
    (dict(y_train=np.full((40, 12, 1), np.nan)), "'y_train' must be finite, got 480 NaN/Inf"),
    (dict(x_test=np.full((20, 12, 3), np.inf)), "'x_test' must be finite"),
    (dict(x_train=[[1.0]]), "'x_train' must be a torch.Tensor or a NumPy array, got list"),
    (dict(name=""), "'name' must be a non-empty string"),
    (dict(output_kind="regression"), "'output_kind'"),
])
def test_bad_task_data_is_refused_naming_the_field(change, match):
    xtr, ytr = integration_arrays(40, seed=0)
    xte, yte = integration_arrays(20, seed=1)
    fields = dict(name="mine", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte, output_kind="real", n_outputs=1)
    fields.update(change)
    with pytest.raises(ValueError, match=match):
        TaskData(**fields)


def test_class_labels_out_of_range_are_refused():
    with pytest.raises(ValueError, match="'y_test' must hold labels in \\[0, 3\\)"):
        TaskData("mine", np.zeros((2, 3, 1)), np.array([0, 2]), np.zeros((2, 3, 1)), np.array([1, 3]), "classes", 3)


def test_a_population_on_own_data_saves_and_loads_it_never_the_builtin_one(tmp_path):
    task = own_task("integrate")  # named like a generated task on purpose
    torch.manual_seed(0)
    models = [BaseRNN("gru", 3, 6, 1), BaseRNN("rnn", 3, 5, 1)]
    pop = de.Population.from_modules(models, task, ids=["g", "r"])
    pop.save(tmp_path / "pop")
    manifest = json.loads((tmp_path / "pop" / "manifest.json").read_text())
    assert set(manifest["task_data"]) == {"integrate"}
    back = de.Population.load(tmp_path / "pop")
    for k in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(back.task, k), getattr(task, k)), k
    assert back.task.output_kind == "real" and not back.task.generated
    # the whole pipeline runs on it: fit, analyze (no generator: no memory rows)
    res = de.fit(back, steps=5, batch_size=8, state_size=8, progress=False)
    from dynamo_ext.report.analysis import analyze

    m = analyze(res.meta, back, baselines=False, fidelity_inits=16)
    assert [r["id"] for r in m["fidelity"]] == ["g", "r"] and all(r["memory"] is None for r in m["fidelity"])
    # a changed or missing data file is refused, never replaced
    data = tmp_path / "pop" / manifest["task_data"]["integrate"]["file"]
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 1
    data.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="does not match the manifest's checksum"):
        de.Population.load(tmp_path / "pop")
    data.unlink()
    with pytest.raises(ValueError, match="task data of 'integrate' is missing"):
        de.Population.load(tmp_path / "pop")


def test_a_manifest_naming_an_unknown_task_without_data_is_refused(tmp_path):
    pop = de.Population.from_modules([BaseRNN("gru", 3, 6, 1)], own_task("mine"), ids=["g"])
    pop.save(tmp_path / "pop")
    path = tmp_path / "pop" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["task_data"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="names task 'mine', which is not a generated task"):
        de.Population.load(tmp_path / "pop")


def test_every_cli_command_that_takes_a_population_works_on_a_user_built_one(tmp_path):
    from dynamo_ext.cli import main

    torch.manual_seed(0)
    pop = de.Population.from_modules([BaseRNN("gru", 3, 6, 1), BaseRNN("lstm", 3, 4, 1)], own_task("integrate"),
                                     ids=["g", "l"])
    pop.save(tmp_path / "pop")
    p, meta, rep = str(tmp_path / "pop"), str(tmp_path / "meta"), str(tmp_path / "rep")
    assert main(["fit", p, "--out", meta, "--steps", "5", "--batch-size", "8", "--state-size", "8",
                 "--no-progress"]) == 0
    assert main(["analyze", p, meta, "--out", rep, "--no-baselines", "--input", "0.5", "0", "1"]) == 0
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert metrics["task"] == "integrate" and [r["id"] for r in metrics["fidelity"]] == ["g", "l"]
    assert metrics["fixed_point_input"] == [0.5, 0.0, 1.0]
    assert main(["fixed-points", meta, "--model-id", "l", "--population", p, "--n-inits", "16",
                 "--out", str(tmp_path / "fp")]) == 0
    assert (tmp_path / "fp" / "fixed_points.json").is_file()


def test_float64_networks_are_recorded_in_their_own_dtype_and_half_ones_refused():
    torch.manual_seed(0)
    task = own_task("mine")
    pop = de.Population.from_modules([BaseRNN("gru", 3, 6, 1).double(), BaseRNN("rnn", 3, 5, 1)], task, ids=["d", "f"])
    rec = pop.record(max_sequences=8)
    assert all(h.dtype == torch.float32 for h in rec.hidden) and rec.hidden[0].shape == (8, 12, 6)
    with torch.no_grad():
        want = pop.members[0].model.record(task.x_train[:8].double())[0].float()
    torch.testing.assert_close(rec.hidden[0], want)
    from dynamo_ext.report.analysis import analyze

    m = analyze(de.fit(pop, steps=5, batch_size=8, state_size=8, progress=False).meta, pop, baselines=False,
                fidelity_inits=16)
    assert [r["id"] for r in m["emulation"]] == ["d", "f"] and "unsupported" not in m["fidelity"][0]
    with pytest.raises(ValueError, match="'models\\[0\\]' must have float32 or float64 parameters, got torch.float16"):
        de.Population.from_modules([BaseRNN("gru", 3, 6, 1).half()], task)


def test_reprs_are_concise(tiny_fit, tiny_population):
    r = repr(tiny_fit)
    assert r.startswith("FitResult(meta=MetaRNN(n_models=3") and "final_loss=" in r and "tensor" not in r
    assert repr(tiny_population) == "Population(3 models of family 'rnn' on digits: 1 rnn, 1 gru, 1 lstm)"
    fps = de.dynamics.find_fixed_points(torch.nn.GRU(2, 4), inputs=torch.zeros(1, 2), n_inits=16)
    assert repr(fps).startswith(f"FixedPoints({len(fps)} points: ") and "tensor" not in repr(fps)


def test_user_models_have_no_seed_in_the_population_table():
    pop = de.Population.from_modules([BaseRNN("gru", 3, 6, 1)], own_task("mine"), ids=["g"])
    assert pop.members[0].seed is None and pop.members[0].info()["seed"] is None


def test_regression_tasks_report_r2_and_mse_and_uncomputable_scores_show_as_dash(tmp_path):
    from dynamo_ext.report.analysis import analyze
    from dynamo_ext.uses.clustering import compare_measures
    from dynamo_ext.report.tables import fmt
    from dynamo_ext.report.markdown import write_report

    torch.manual_seed(0)
    pop = de.Population.from_modules([BaseRNN("gru", 3, 6, 1), BaseRNN("rnn", 3, 5, 1)], own_task("mine"),
                                     ids=["g", "r"])
    res = de.fit(pop, steps=30, batch_size=8, state_size=8, progress=False)
    m = analyze(res.meta, pop, baselines=False, fidelity_inits=16)
    for row in m["emulation"]:
        assert {"output_r2", "base_target_r2", "meta_target_r2", "base_target_mse", "meta_target_mse"} <= set(row)
        y = pop.members[[p["id"] for p in m["population"]].index(row["id"])].model(pop.task.x_test).detach()
        mse = float((y - pop.task.y_test).pow(2).mean())
        assert row["base_target_mse"] == pytest.approx(mse, rel=1e-5)
        assert row["output_r2"] <= 1.0
    write_report(m, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "base_target_r2" in md and "meta_target_mse" in md
    assert fmt(float("nan")) == "-" and fmt(None) == "-" and fmt(0.5) == "0.500"
    rows = compare_measures({"ok": np.array([[0, 1, 5], [1, 0, 5], [5, 5, 0.]]), "bad": np.full((3, 3), np.nan)},
                            {"task": ["a", "a", "b"]})
    by = {(r["measure"], r["method"]): r for r in rows}
    assert by[("bad", "kmeans")]["ari"] is None and by[("ok", "kmeans")]["ari"] == pytest.approx(1.0)


def train_plain(module, readout, task, epochs=30, seed=0):
    """Train (module, readout) on the task in plain PyTorch, as a user would."""
    torch.manual_seed(seed)
    params = list(module.parameters()) + list(readout.parameters())
    opt = torch.optim.Adam(params, lr=1e-2)
    x, y = task.x_train, task.y_train
    for _ in range(epochs):
        out, _ = module(x)
        loss = torch.nn.functional.mse_loss(readout(out), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return module.eval(), readout.eval()


def mixed_user_population():
    torch.manual_seed(0)
    task = own_task("integrate")
    nets = [(torch.nn.GRU(3, 6, batch_first=True), torch.nn.Linear(6, 1)),
            (torch.nn.RNN(3, 5, nonlinearity="relu", batch_first=True), torch.nn.Linear(5, 1)),
            (torch.nn.LSTM(3, 4, num_layers=2, batch_first=True), torch.nn.Linear(4, 1)),
            (de.CTRNN(3, 6, dt=20.0, tau=100.0), torch.nn.Linear(6, 1))]
    trained = [train_plain(m, r, task, seed=i) for i, (m, r) in enumerate(nets)]
    return de.Population.from_modules(trained, task, ids=["gru", "relu", "lstm2", "ct"])


@pytest.mark.slow
def test_a_mixed_user_population_gives_the_same_results_after_save_load_and_through_every_cli_command(tmp_path):
    """nn.GRU, nn.RNN(relu), 2-layer nn.LSTM and CTRNN on own regression tensors: save -> load -> fit,
    analyze, fixed-points, adapt and reparam-check, with the in-memory results."""
    from dynamo_ext.report.analysis import analyze
    from dynamo_ext.cli import main

    pop = mixed_user_population()
    assert [m.arch for m in pop.members] == ["gru", "relu_rnn", "lstm", "ctrnn"]
    assert [m.state_size for m in pop.members] == [6, 5, 16, 6]
    p = tmp_path / "pop"
    pop.save(p)
    loaded = de.Population.load(p)
    x = pop.task.x_test[:5]
    for a, b in zip(pop.members, loaded.members):
        assert (a.id, a.arch, a.model.spec()) == (b.id, b.arch, b.model.spec())
        torch.testing.assert_close(b.model.record(x)[0], a.model.record(x)[0], atol=0, rtol=0)
    settings = dict(steps=20, batch_size=8, state_size=8, seed=0)
    in_memory = de.fit(pop, progress=False, **settings)
    meta = tmp_path / "meta"
    assert main(["fit", str(p), "--out", str(meta), "--steps", "20", "--batch-size", "8", "--state-size", "8",
                 "--no-progress"]) == 0
    torch.testing.assert_close(de.load_meta(meta).theta, in_memory.meta.theta, atol=0, rtol=0)
    rep = tmp_path / "rep"
    assert main(["analyze", str(p), str(meta), "--out", str(rep), "--no-baselines", "--input", "0.5", "0", "1"]) == 0
    metrics = json.loads((rep / "metrics.json").read_text())
    mem = analyze(in_memory.meta, pop, baselines=False, fixed_point_inputs=torch.tensor([0.5, 0.0, 1.0]))
    assert [r["id"] for r in metrics["fidelity"]] == pop.ids
    for ours, theirs in zip(metrics["fidelity"], mem["fidelity"]):
        assert ours["base"]["n_stable"] == theirs["base"]["n_stable"] >= 1
        assert ours["meta"]["n_fixed_points"] == theirs["meta"]["n_fixed_points"]
    assert [r["output_r2"] for r in metrics["emulation"]] == pytest.approx([r["output_r2"] for r in mem["emulation"]])
    assert main(["fixed-points", str(meta), "--model-id", "ct", "--population", str(p), "--n-inits", "16",
                 "--out", str(tmp_path / "fp")]) == 0
    assert main(["adapt", str(p), str(meta), "--labels-per-class", "2", "--out", str(tmp_path / "ad"),
                 "--no-progress"]) == 0
    rows = json.loads((tmp_path / "ad" / "adapt.json").read_text())
    assert rows[0]["n_labelled"] == 2 and all(np.isfinite([rows[0]["adapt_accuracy"], rows[0]["scratch_accuracy"]]))
    assert main(["reparam-check", str(p), "--steps", "20", "--out", str(tmp_path / "rc"), "--no-progress"]) == 0
    res = json.loads((tmp_path / "rc" / "reparameterization.json").read_text())
    assert sorted(res["embedding"]) == sorted(pop.ids + ["gru~permute", "relu~rescale", "lstm2~permute_sign_flip",
                                                          "ct~permute"])


def _bad_step_module():
    class Bad(torch.nn.Module):
        input_size, state_size = 3, 4

        def step(self, x, z):
            return z[:, :2]
    return Bad()


def _user_mistakes():
    task = own_task("mine")
    pop = de.Population.from_modules([BaseRNN("gru", 3, 6, 1)], task, ids=["g"])
    xtr, ytr = integration_arrays(10)
    return [
        ("record numpy x", lambda: pop.record(xtr), "'x' must be a torch.Tensor"),
        ("targets without a channel dimension", lambda: TaskData.from_tensors("t", xtr, ytr[..., 0], xtr, ytr),
         "y_train"),
        ("NaN in x_test", lambda: TaskData.from_tensors("t", xtr, ytr, np.where(xtr > 2, np.nan, xtr), ytr),
         "x_test"),
        ("readout of the wrong width", lambda: BaseRNN.wrap(torch.nn.GRU(3, 6), torch.nn.Linear(5, 1)), "readout"),
        ("half-precision model", lambda: de.Population.from_modules([BaseRNN("gru", 3, 6, 1).half()], task),
         "float32 or float64"),
        ("model of another input size", lambda: de.Population.from_modules([BaseRNN("gru", 4, 6, 1)], task),
         "input_size=3"),
        ("bidirectional RNN", lambda: de.Population.from_modules(
            [(torch.nn.GRU(3, 6, bidirectional=True), torch.nn.Linear(12, 1))], task), "unidirectional"),
        ("a Linear as a network", lambda: de.Population.from_modules([torch.nn.Linear(3, 1)], task), "models\\[0\\]"),
        ("numpy inputs to find_fixed_points", lambda: de.find_fixed_points(torch.nn.GRU(3, 4), inputs=xtr[0, 0]),
         "'inputs' must be a torch.Tensor"),
        ("contexts of the wrong width", lambda: de.find_fixed_points(torch.nn.GRU(3, 4), inputs=torch.zeros(5, 2)),
         "'inputs' must have shape"),
        ("a step returning the wrong shape", lambda: de.find_fixed_points(_bad_step_module(), n_inits=4),
         "step function must return states of shape"),
        ("a Linear to find_fixed_points", lambda: de.find_fixed_points(torch.nn.Linear(3, 3)), "argument 'model'"),
        ("trajectories of the wrong state size", lambda: de.find_fixed_points(
            torch.nn.LSTM(3, 4), trajectories=torch.zeros(2, 5, 4)), "state size 8"),
        ("CT-RNN with dt > tau", lambda: de.CTRNN(3, 4, dt=10.0, tau=5.0), "'alpha'"),
        ("a readout-less RNN to wrap", lambda: BaseRNN.wrap(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1)),
         "'rnn' must be"),
        ("an unknown arch", lambda: BaseRNN("transformer", 3, 4, 1), "'arch' must be one of"),
        ("a 'rescale' of a GRU", lambda: de.reparameterize(BaseRNN("gru", 3, 4, 1), "rescale"),
         "does not preserve the function"),
    ]


@pytest.mark.parametrize("case", range(len(_user_mistakes())), ids=[c[0] for c in _user_mistakes()])
def test_no_user_mistake_reaches_a_raw_pytorch_or_numpy_error(case):
    _, call, match = _user_mistakes()[case]
    with pytest.raises(ValueError, match=match):
        call()


def test_per_step_class_labels_and_time_major_tensors():
    """neurogym's convention: one label per step [N, T] (negative: not scored), and [T, B, ...] tensors."""
    from dynamo_ext.population.tasks import accuracy
    from dynamo_ext.population.training import task_loss

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, 2, generator=gen)
    y = torch.randint(0, 3, (6, 5), generator=gen)
    y[:, :2] = -100  # fixation steps not scored
    task = de.TaskData.from_tensors("steps", x, y, x, y, n_outputs=3)
    assert task.per_step and task.y_train.shape == (6, 5)
    logits = torch.randn(6, 5, 3, generator=gen)
    scored = y >= 0
    assert accuracy(task, logits, y) == pytest.approx(float((logits.argmax(-1) == y)[scored].float().mean()))
    assert float(task_loss(task, logits, y)) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits.reshape(-1, 3), y.reshape(-1), ignore_index=-100)))
    assert torch.equal(task.sequence_labels(), y[:, -1])
    tm = de.TaskData.from_tensors("tm", x.transpose(0, 1).numpy(), y.T.numpy(), x.transpose(0, 1), y.T,
                                  time_major=True, n_outputs=3)
    assert torch.equal(tm.x_train, x) and torch.equal(tm.y_test, y)
    with pytest.raises(ValueError, match=r"'y_train' must be \[N\] or \[N, T\] class labels of shape \[6, 5\]"):
        de.TaskData.from_tensors("bad", x, y[:, :4], x, y[:, :4], n_outputs=3)
    with pytest.raises(ValueError, match=r"labels in \[0, 3\) \(n_outputs\), or negative for steps not scored, got "
                                         r"values in \[0, 7\]"):
        de.TaskData.from_tensors("bad", x, y.clamp(min=0) + 5 * (y == 2), x, y, n_outputs=3)
    with pytest.raises(ValueError, match="both be \\[N\\] or both \\[N, T\\]"):
        de.TaskData.from_tensors("bad", x, y, x, y[:, -1], n_outputs=3)
    # adapt reads every scored step
    meta = de.MetaRNN(1, input_size=2, n_outputs=3, hidden_sizes=[4], state_size=4, embedding_dim=2)
    net = de.adapt(meta, x, y, steps=3, restarts=2)
    assert net.train_loss > 0
