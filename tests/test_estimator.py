"""The scikit-learn estimator ``dynamo_ext.DYNAMO``: fit returns self with the fitted attributes, transform
places new networks, clone / get_params / set_params, scikit-learn's checks that apply, lists of networks and
of arrays."""
import numpy as np
import pytest
import torch
from sklearn.base import clone

import dynamo_ext as de

SMALL = dict(steps=60, batch_size=32, state_size=16, max_sequences=200)


@pytest.fixture(scope="module")
def fitted(tiny_population):
    return de.DYNAMO(**SMALL).fit(tiny_population)


def test_fit_returns_self_with_the_fitted_attributes_of_the_functional_fit(tiny_population, fitted):
    ref = de.fit(tiny_population, **SMALL, progress=False)
    assert fitted.model_ids_ == tiny_population.ids and fitted.embedding_.shape == (3, 2)
    np.testing.assert_allclose(fitted.embedding_, ref.meta.theta.detach().double().numpy(), rtol=1e-6)
    assert fitted.history_["loss"] == pytest.approx(ref.history["loss"], rel=1e-6)
    assert fitted.n_features_in_ == tiny_population.task.input_size
    assert fitted.probe_inputs_.shape[0] == 200


def test_score_is_the_mean_held_out_hidden_r2(tiny_population, fitted):
    from dynamo_ext.meta.evaluate import emulation

    rows = emulation(fitted.meta_, tiny_population)
    assert fitted.score() == pytest.approx(np.mean([r["hidden_r2"] for r in rows]))
    assert -1 < fitted.score() <= 1


def test_pairwise_distances_readings(fitted):
    theta = fitted.pairwise_distances("theta")
    e = fitted.embedding_
    assert theta[0, 1] == pytest.approx(np.linalg.norm(e[0] - e[1]), rel=1e-5)
    functional = fitted.pairwise_distances("functional")
    assert functional.shape == (3, 3) and np.allclose(functional, functional.T) and (np.diag(functional) == 0).all()
    cka = fitted.pairwise_distances("cka")  # any registered measure, on the population's recording
    assert cka.shape == (3, 3) and np.allclose(cka, cka.T) and (np.diag(cka) == 0).all()
    with pytest.raises(ValueError, match="argument 'measure' must be one of .*got 'ckaa'"):
        fitted.pairwise_distances("ckaa")


def test_cluster_gives_scikit_learns_labels_(tiny_population, fitted):
    res = fitted.cluster(n_clusters=2, labels_true=tiny_population.archs)
    ref = de.cluster(fitted.meta_, 2, labels_true=tiny_population.archs, seed=fitted.random_state)
    assert res.labels_.tolist() == ref.assignments and res.n_clusters == 2 and res.ari == ref.ari
    assert fitted.cluster(2, measure="functional", method="agglomerative").labels_.shape == (3,)


def test_transform_places_a_network_without_changing_the_fitted_meta_model(tiny_population, fitted):
    before = fitted.meta_.theta.detach().clone()
    theta = fitted.transform([tiny_population.members[1].model])
    assert theta.shape == (1, 2) and np.isfinite(theta).all()
    assert torch.equal(fitted.meta_.theta.detach(), before) and fitted.meta_.n_models == 3
    # the same as the functional embed on a copy
    import copy
    meta = copy.deepcopy(fitted.meta_)
    idx = de.embed(meta, tiny_population.members[1].model, fitted.probe_inputs_, steps=400, progress=False)
    np.testing.assert_allclose(theta[0], meta.theta.detach()[idx].double().numpy(), rtol=1e-5)


def test_clone_get_params_set_params_and_not_fitted():
    from sklearn.exceptions import NotFittedError

    est = de.DYNAMO(embedding_dim=3, steps=10, random_state=4)
    copy = clone(est)
    assert copy.get_params() == est.get_params() and copy is not est
    assert copy.set_params(steps=20).steps == 20 and est.steps == 10
    assert "embedding_dim=3" in repr(est)
    with pytest.raises(NotFittedError):
        est.transform([])
    with pytest.raises(ValueError, match="argument 'steps' must be an integer >= 1, got 0"):
        de.DYNAMO(steps=0).fit([np.zeros((4, 5, 3))], inputs=np.zeros((4, 5, 2)))


def test_scikit_learns_estimator_checks_that_apply():
    from sklearn.utils import estimator_checks as checks

    est = de.DYNAMO()
    checks.check_parameters_default_constructible("DYNAMO", est)
    checks.check_no_attributes_set_in_init("DYNAMO", est)
    checks.check_get_params_invariance("DYNAMO", est)
    checks.check_set_params("DYNAMO", est)


def test_fit_on_a_list_of_networks_needs_a_task(tiny_population):
    models = [m.model for m in tiny_population.members]
    with pytest.raises(ValueError, match="argument 'task' is required"):
        de.DYNAMO(**SMALL).fit(models)
    est = de.DYNAMO(**SMALL).fit(models, task=tiny_population.task, ids=["a", "b", "c"])
    assert est.model_ids_ == ["a", "b", "c"] and est.population_ is not None


def test_fit_on_arrays_of_hidden_states_of_different_widths():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(48, 10, 2, generator=gen)
    nets = [torch.nn.GRU(2, d, batch_first=True) for d in (5, 8, 11)]
    with torch.no_grad():
        hidden = [net(x)[0].numpy() for net in nets]
    est = de.DYNAMO(steps=80, batch_size=16, state_size=12).fit(hidden, inputs=x.numpy())
    assert est.model_ids_ == ["net-0", "net-1", "net-2"] and est.embedding_.shape == (3, 2)
    assert est.recording_.state_sizes == [5, 8, 11] and est.result_.config.lambda_y == 0.0  # no outputs given
    assert np.isfinite(est.score())
    assert est.transform([hidden[1]]).shape == (1, 2)
    with pytest.raises(ValueError, match="argument 'inputs'"):
        de.DYNAMO().fit(hidden)
    with pytest.raises(ValueError, match="entry 1 must be recorded on 'inputs'"):
        de.DYNAMO().fit([hidden[0], hidden[1][:10]], inputs=x)
    with pytest.raises(ValueError, match="argument 'X' must be a Population"):
        de.DYNAMO().fit("population")
