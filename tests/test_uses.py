import numpy as np
import pytest
import torch

import dynamo_ext as de
from dynamo_ext.uses.clustering import cluster_points
from dynamo_ext.population.training import train_base_model, TrainConfig


def test_average_is_the_meta_model_at_the_mean_embedding(tiny_fit):
    meta = tiny_fit.meta
    avg = de.average(meta, ["gru-h12-s0", 2])
    assert isinstance(avg, torch.nn.Module)
    torch.testing.assert_close(avg.theta, meta.theta.detach()[[1, 2]].mean(0))
    x = torch.rand(4, 8, 8)
    out = avg(x)
    assert out.shape == (4, 8, 10)
    torch.testing.assert_close(out, meta(x, theta=avg.theta)[1])
    with pytest.raises(ValueError, match="unknown model"):
        de.average(meta, ["nope"])
    with pytest.raises(ValueError, match="at least one"):
        de.average(meta, [])


def test_cluster_recovers_separated_groups():
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.normal(c, 0.05, size=(5, 2)) for c in ([0, 0], [1, 1], [0, 2])])
    labels = ["a"] * 5 + ["b"] * 5 + ["c"] * 5
    res = cluster_points(pts, 3, labels)
    assert res.ari == pytest.approx(1.0) and res.nmi == pytest.approx(1.0) and res.silhouette > 0.8
    shuffled = cluster_points(pts, 3, list(rng.permutation(labels)))
    assert shuffled.ari < 0.5
    agg = cluster_points(pts, 3, labels, method="agglomerative")
    assert agg.ari == pytest.approx(1.0)


def test_cluster_on_meta_and_bad_input(tiny_fit):
    res = de.cluster(tiny_fit.meta, 2, labels_true=["rnn", "gru", "lstm"])
    assert len(res.assignments) == 3 and res.ari is not None
    with pytest.raises(ValueError, match="'n_clusters' must be at most"):
        de.cluster(tiny_fit.meta, 4)
    with pytest.raises(ValueError, match="'labels_true' must have 3"):
        de.cluster(tiny_fit.meta, 2, labels_true=["a"])
    # scikit-learn's names; the old keywords answer once more, with a DeprecationWarning
    with pytest.warns(DeprecationWarning, match="'k' is 'n_clusters'"):
        old = de.cluster(tiny_fit.meta, k=2, labels_true=["rnn", "gru", "lstm"])
    with pytest.warns(DeprecationWarning, match="'labels' is 'labels_true'"):
        assert de.cluster(tiny_fit.meta, 2, labels=["rnn", "gru", "lstm"]).ari == old.ari == res.ari
    with pytest.raises(TypeError, match="both 'n_clusters' and its old name 'k'"):
        de.cluster(tiny_fit.meta, 2, k=2)
    first = de.cluster(tiny_fit.meta, 2, labels_true=["rnn", "gru"], n=2)  # the first n embeddings only
    assert len(first.assignments) == 2
    with pytest.raises(ValueError, match="'n' must be at most the number of embeddings \\(3\\), got 4"):
        de.cluster(tiny_fit.meta, 2, n=4)


def test_embed_fits_only_the_new_model(tiny_fit, tiny_population, digits_task):
    import copy
    meta = copy.deepcopy(tiny_fit.meta)
    before = {k: v.clone() for k, v in meta.state_dict().items()}
    new_model = train_base_model("gru", 10, digits_task, seed=7, config=TrainConfig(epochs=2))
    x = digits_task.x_train[:200]
    idx = de.embed(meta, new_model, x, model_id="newcomer", steps=40, progress=False)
    assert idx == 3 and meta.model_ids[3] == "newcomer"
    for k, v in before.items():
        if k == "theta":
            torch.testing.assert_close(meta.theta[:3], v, rtol=0, atol=0)
        elif not k.startswith("maps.3"):
            torch.testing.assert_close(meta.state_dict()[k], v, rtol=0, atol=0, msg=k)
    assert not torch.equal(meta.theta[3], before["theta"].mean(0))
    # the embedded model's outputs follow the new model better than the population mean does
    with torch.no_grad():
        target = new_model(x).log_softmax(-1)
        def kl(theta):
            y = meta(x, theta=theta)[1].log_softmax(-1)
            return float(torch.nn.functional.kl_div(y, target, log_target=True, reduction="sum"))
        assert kl(meta.theta[3]) < kl(meta.theta[:3].mean(0))


def test_embed_bad_input(tiny_fit, tiny_population):
    with pytest.raises(ValueError, match="input size 8"):
        de.embed(tiny_fit.meta, tiny_population.members[0].model, torch.zeros(3, 8, 2), progress=False)
