import copy

import pytest
import torch

import dynamo_ext as de
from dynamo_ext.uses.adaptation import adapt, compare_few_labels, few_label_sample


def test_adapt_fits_only_theta_and_lowers_the_loss(tiny_fit, digits_task):
    meta = copy.deepcopy(tiny_fit.meta)
    before = {k: v.clone() for k, v in meta.state_dict().items()}
    x, y = few_label_sample(digits_task, 5, seed=1)
    assert len(x) == 50 and torch.bincount(y, minlength=10).tolist() == [5] * 10
    net = adapt(meta, x, y, steps=30, restarts=3, seed=0)
    for k, v in meta.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=k)  # the meta-model is untouched
    assert all(p.requires_grad for p in meta.parameters())
    assert net.theta.shape == (meta.embedding_dim,)

    def loss(theta):
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(meta(x, theta=theta)[1][:, -1], y))
    start = loss(meta.theta.detach().mean(0))
    assert net.train_loss == pytest.approx(loss(net.theta), rel=1e-4)
    assert net.train_loss < start
    torch.testing.assert_close(net(x), meta(x, theta=net.theta)[1])


def test_adapt_bad_input(tiny_fit):
    meta = tiny_fit.meta
    x = torch.rand(4, 8, 8)
    with pytest.raises(ValueError, match="classes in \\[0, 10\\)"):
        adapt(meta, x, torch.tensor([0, 1, 2, 10]))
    with pytest.raises(ValueError, match="'y' must have shape \\[4\\]"):
        adapt(meta, x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="'x' must have shape"):
        adapt(meta, torch.rand(4, 8, 3), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="'restarts'"):
        adapt(meta, x, torch.tensor([0, 1, 2, 3]), restarts=0)


def test_compare_few_labels_reports_both(tiny_fit, digits_task):
    rows = compare_few_labels(tiny_fit.meta, digits_task, (1, 3), scratch_hidden=8, scratch_epochs=5,
                              adapt_kwargs={"steps": 10, "restarts": 2})
    assert [r["n_labelled"] for r in rows] == [10, 30]
    for r in rows:
        assert 0 <= r["adapt_accuracy"] <= 1 and 0 <= r["scratch_accuracy"] <= 1
    assert rows[0]["theta"] != rows[1]["theta"]


def test_few_labels_on_a_real_output_task():
    task = de.load_task("integrate", n_train=30, n_test=10, seq_len=12)
    x, y = few_label_sample(task, 4)
    assert x.shape == (4, 12, 3) and y.shape == (4, 12, 3)
