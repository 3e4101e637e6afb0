"""What a user meets first: the names the package binds, the estimator's parameters, float64 networks,
and the errors of the first call that sees bad input. Each test here failed before its fix."""
import dataclasses

import numpy as np
import pytest
import torch

import dynamo_ext as de
from dynamo_ext.meta.config import FitConfig
from dynamo_ext.meta.probes import relaxing_probes


def _gru_pairs(task, n, dtype, hidden=6):
    torch.manual_seed(0)
    return [(torch.nn.GRU(task.input_size, hidden, batch_first=True).to(dtype),
             torch.nn.Linear(hidden, task.n_outputs).to(dtype)) for _ in range(n)]


@pytest.fixture(scope="module")
def task():
    return de.load_task("flipflop", n_train=24, n_test=8, seq_len=12, seed=0)


def test_the_packages_bind_functions_under_their_names():
    from dynamo_ext import uses

    for name in ("embed", "average", "cluster", "adapt", "reparameterize", "spread", "support"):
        assert callable(getattr(uses, name)) and not isinstance(getattr(uses, name), type(uses)), name
    assert callable(de.fidelity) and de.fidelity is de.dynamics.fidelity
    assert de.dynamics.fidelity.__module__ == "dynamo_ext.dynamics.attractor_fidelity"
    assert uses.cluster is de.cluster and uses.spread is de.spread


def test_float64_networks_go_through_fit_embed_and_the_estimators_transform(task):
    nets = _gru_pairs(task, 3, torch.float64)
    result = de.fit(de.Population.from_modules(nets, task), steps=3, max_sequences=16, progress=False)
    new = de.BaseRNN.wrap(*_gru_pairs(task, 1, torch.float64)[0])
    idx = de.embed(result.meta, new, task.x_train[:16], steps=3, progress=False)
    assert torch.isfinite(result.meta.theta[idx]).all()
    est = de.DYNAMO(steps=3, max_sequences=16).fit(nets, task=task)
    theta = est.transform([_gru_pairs(task, 1, torch.float64)[0]])
    assert theta.shape == (1, est.embedding_dim) and np.isfinite(theta).all()


def test_the_estimators_parameters_are_fit_configs_fields_and_its_probes_what_was_recorded(task):
    params = de.DYNAMO().get_params()
    fields = {f.name for f in dataclasses.fields(FitConfig)} - {"seed", "checkpoint_every"}
    assert fields | {"random_state", "embed_steps", "n_fits", "progress"} == set(params)
    assert all(params[f] == getattr(FitConfig(), f) for f in fields)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['stepz'\\]"):
        de.DYNAMO(stepz=3)
    pop = de.Population.from_modules(_gru_pairs(task, 2, torch.float32), task)
    est = de.DYNAMO(steps=2, max_sequences=16, relax_steps=5).fit(pop)
    expected = relaxing_probes(pop, est._config())
    assert est.probe_inputs_.shape == (16, task.seq_len + 5, task.input_size)
    assert torch.equal(est.probe_inputs_, expected)


def test_the_first_call_that_sees_bad_input_names_it():
    with pytest.raises(ValueError, match="at least 2 networks or hidden-state arrays.*got 0"):
        de.DYNAMO().fit([])
    with pytest.raises(ValueError, match="neurogym:<env id>"):
        de.load_task("no_such_task")
    rnn = torch.nn.GRU(2, 4)
    with torch.no_grad():
        rnn.weight_hh_l0[0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite weights, got 1 NaN or Inf values in 'weight_hh_l0'"):
        de.find_fixed_points(rnn, n_inits=4)


def test_inputs_have_one_meaning_and_contexts_the_other():
    rnn = torch.nn.GRU(2, 4)
    with pytest.raises(ValueError, match="pass them as contexts"):
        de.find_fixed_points(rnn, inputs=torch.zeros(3, 2), n_inits=4)
    fps = de.find_fixed_points(rnn, contexts=torch.zeros(3, 2), n_inits=4)
    assert fps.contexts.shape == (3, 2)


def test_fit_and_training_leave_the_callers_random_state_alone_and_stay_deterministic(task):
    from dynamo_ext.population.training import TrainConfig, train_base_model

    pop = de.Population.from_modules(_gru_pairs(task, 2, torch.float32), task)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = de.fit(pop, steps=2, max_sequences=16, progress=False, seed=5)
    m1 = train_base_model("gru", 6, task, seed=3, config=TrainConfig(epochs=1))
    assert torch.equal(torch.get_rng_state(), before)
    torch.rand(7)  # another global state: the same results
    b = de.fit(pop, steps=2, max_sequences=16, progress=False, seed=5)
    m2 = train_base_model("gru", 6, task, seed=3, config=TrainConfig(epochs=1))
    assert torch.equal(a.meta.theta, b.meta.theta)
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters()))


def test_a_missing_extra_is_an_import_error_naming_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "DSA", None)  # import DSA now raises ImportError
    with pytest.raises(ImportError, match=r"the \[peers\] extra: pip install \"dynamo_ext\[peers\]\""):
        de.compare.pairwise_distances([np.random.rand(4, 6, 3), np.random.rand(4, 6, 2)], "dsa")
    monkeypatch.setitem(sys.modules, "neurogym", None)
    with pytest.raises(ImportError, match=r"the \[neurogym\] extra"):
        de.load_task("neurogym:ContextDecisionMaking-v0")
    monkeypatch.setitem(sys.modules, "dash", None)
    with pytest.raises(ImportError, match=r"the \[explore\] extra"):
        de.explore(None, None)


def test_the_solvers_settings_are_one_object_and_keywords_replace_its_fields():
    from dynamo_ext.dynamics import SolverSettings

    rnn = torch.nn.GRU(2, 4)
    a = de.find_fixed_points(rnn, n_inits=8, settings=SolverSettings(tol=1e-9, dedup_tol=1e-5))
    b = de.find_fixed_points(rnn, n_inits=8, tol=1e-9, dedup_tol=1e-5)
    assert torch.equal(a.states, b.states)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['tolerance'\]"):
        de.find_fixed_points(rnn, tolerance=1e-9)
    with pytest.raises(ValueError, match="'min_progress' must be in \\[0, 1\\)"):
        de.find_fixed_points(rnn, settings=SolverSettings(min_progress=1.0))
