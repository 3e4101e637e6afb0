import math

import numpy as np
import pytest
import torch

from dynamo_ext import compare as bl
from dynamo_ext.compare.representation import hsic_unbiased
from dynamo_ext.uses.clustering import cluster_distances, compare_measures
from dynamo_ext.population.base_rnn import BaseRNN


def _gram_hsic_unbiased(k, l):
    """Song et al. (2012) Eq. 5 written with n x n Gram matrices."""
    n = k.shape[0]
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    return (np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * (one @ k @ l @ one)) / (n * (n - 3))


def test_feature_space_unbiased_hsic_matches_the_gram_formula():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 5)), rng.normal(size=(40, 3)) + 0.3
    y[:, 0] += x[:, 1]
    assert hsic_unbiased(x, y) == pytest.approx(_gram_hsic_unbiased(x @ x.T, y @ y.T), rel=1e-10)


def test_cka_svcca_procrustes_invariances():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 30, 8))  # [S, T, d]
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    rotated = 2.5 * x @ q + 1.0  # rotation, isotropic scale, shift
    other = rng.normal(size=(6, 30, 5))
    assert bl.linear_cka(x, rotated) == pytest.approx(1.0, abs=1e-10)
    assert abs(bl.linear_cka(x, other)) < 0.05
    assert bl.linear_cka(x, rotated, debiased=False) == pytest.approx(1.0, abs=1e-10)
    assert bl.svcca(x, x @ rng.normal(size=(8, 8))) == pytest.approx(1.0, abs=1e-8)  # any invertible map
    assert bl.svcca(x, other) < 0.3
    assert bl.procrustes_distance(x, rotated) == pytest.approx(0.0, abs=1e-6)
    d = bl.procrustes_distance(x, other)
    assert 0.5 < d <= math.sqrt(2) and d == pytest.approx(bl.procrustes_distance(other, x))
    # a partial relation lies between the extremes
    mixed = np.concatenate([x[..., :4], other[..., :4]], -1)
    assert 0.2 < bl.linear_cka(x, mixed) < 0.9
    with pytest.raises(ValueError, match="same number of samples"):
        bl.linear_cka(x, other[:3])
    with pytest.raises(ValueError, match="variance_kept"):
        bl.svcca(x, other, variance_kept=0)


def test_weight_distance_output_disagreement_and_averages():
    torch.manual_seed(0)
    a, b = BaseRNN("gru", 3, 8, 4), BaseRNN("gru", 3, 8, 4)
    assert bl.weight_distance(a, a) == 0.0 and bl.weight_distance(a, b) > 0
    assert math.isnan(bl.weight_distance(a, BaseRNN("lstm", 3, 8, 4)))
    assert math.isnan(bl.weight_distance(a, BaseRNN("gru", 3, 9, 4)))
    avg = bl.naive_weight_average([a, b])
    torch.testing.assert_close(avg.rnn.weight_hh_l0, (a.rnn.weight_hh_l0 + b.rnn.weight_hh_l0) / 2)
    with pytest.raises(ValueError, match="one architecture and size"):
        bl.naive_weight_average([a, BaseRNN("gru", 3, 9, 4)])
    x = torch.randn(5, 7, 3)
    ens = bl.OutputEnsemble([a, b])
    expected = ((a(x).softmax(-1) + b(x).softmax(-1)) / 2).log()
    torch.testing.assert_close(ens(x), expected)
    ya, yb = torch.randn(20, 7, 4), torch.randn(20, 7, 4)
    assert bl.output_disagreement(ya, ya, "classes") == 0.0
    expect = float((ya[:, -1].argmax(-1) != yb[:, -1].argmax(-1)).float().mean())
    assert bl.output_disagreement(ya, yb, "classes") == pytest.approx(expect)
    assert bl.output_disagreement(ya, -ya, "real") == pytest.approx(1.0)


def test_distance_matrices_on_a_population(tiny_population):
    d = bl.distance_matrices(tiny_population, max_sequences=50)
    assert set(d) == set(bl.MEASURES)
    for name, m in d.items():
        assert m.shape == (3, 3)
        assert np.allclose(np.diag(m), 0)
        assert np.allclose(m, m.T, equal_nan=True), name
    assert np.isnan(d["weights"][0, 1])  # rnn vs gru: not comparable
    assert np.all(d["cka"][~np.eye(3, dtype=bool)] > 0)


def test_cluster_distances_and_compare_measures():
    rng = np.random.default_rng(5)
    pts = np.concatenate([rng.normal(c, 0.05, size=(4, 2)) for c in ([0, 0], [2, 0], [0, 2])])
    dist = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    labels = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    for method in ("kmeans", "agglomerative"):
        res = cluster_distances(dist, 3, labels, method=method)
        assert res.ari == pytest.approx(1.0) and res.silhouette > 0.8
    noisy = rng.random((12, 12))
    noisy = noisy + noisy.T
    np.fill_diagonal(noisy, 0)
    with_nan = dist.copy()
    with_nan[0, 5] = with_nan[5, 0] = np.nan  # an incomparable pair counts as far apart
    rows = compare_measures({"good": dist, "noise": noisy, "nan": with_nan},
                            {"group": labels, "one": ["x"] * 12})
    assert {r["labels_by"] for r in rows} == {"group"}  # a single label gives nothing to score
    score = {(r["measure"], r["method"]): r["ari"] for r in rows}
    assert score[("good", "kmeans")] == pytest.approx(1.0) and score[("nan", "agglomerative")] == pytest.approx(1.0)
    assert score[("noise", "kmeans")] < 0.5
    with pytest.raises(ValueError, match="square"):
        cluster_distances(np.zeros((3, 4)), 2)


@pytest.mark.parametrize("n, k", [(12, 2), (40, 3), (300, 2)])  # the partial dense solve, then Lanczos
def test_classical_mds_equals_scikit_learns_without_a_full_eigendecomposition(n, k):
    from sklearn.manifold import ClassicalMDS

    from dynamo_ext.uses.clustering import classical_mds

    points = np.random.default_rng(n).standard_normal((n, 5))
    d = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
    ours = classical_mds(d, k)
    ref = ClassicalMDS(n_components=k, metric="precomputed").fit_transform(d)
    np.testing.assert_allclose(ours, ref, atol=1e-8)
    # distances that are not Euclidean: the directions of negative eigenvalues are zero, not NaN
    bent = d.copy()
    bent[0, 1] = bent[1, 0] = 3 * d.max()
    out = classical_mds(bent, n - 1 if n < 20 else k)
    assert np.isfinite(out).all()
    with pytest.raises(ValueError, match="'n_components' must be in \\[1, 11\\]"):
        classical_mds(d[:12, :12], 12)
