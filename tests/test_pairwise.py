"""compare.pairwise_distances on lists of arrays (netrep / DSA style): every measure a distance, the same values
as the per-pair functions, units free to differ, and errors that name the argument."""
import numpy as np
import pytest
import torch

from dynamo_ext import compare


def _networks(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((12, 15, 5))
    rotated = x @ np.linalg.qr(rng.standard_normal((5, 5)))[0] * 3.0  # same up to rotation and scale
    wider = np.tanh(x @ rng.standard_normal((5, 9)))  # another width
    other = rng.standard_normal((12, 15, 7))
    return [x, torch.tensor(rotated), wider, other]


@pytest.mark.parametrize("measure, pair", [("cka", lambda a, b: 1 - compare.linear_cka(a, b)),
                                           ("svcca", lambda a, b: 1 - compare.svcca(a, b)),
                                           ("procrustes", compare.procrustes_distance)])
def test_each_measure_is_a_distance_equal_to_its_per_pair_function(measure, pair):
    data = _networks()
    d = compare.pairwise_distances(data, measure)
    assert d.shape == (4, 4) and np.allclose(d, d.T) and (np.diag(d) == 0).all() and (d >= 0).all()
    assert d[0, 1] == pytest.approx(0.0, abs=1e-6)  # rotation and scale: identical activity for every measure
    for i, j in ((0, 2), (1, 3), (2, 3)):
        assert d[i, j] == pytest.approx(max(pair(data[i], data[j]), 0.0), abs=1e-7)
    assert d[0, 3] > 0.2  # unrelated activity is far


def test_samples_given_flat_and_the_population_api_agree(tiny_population):
    rec = tiny_population.record(max_sequences=40)
    flat = [h.reshape(-1, h.shape[-1]) for h in rec.hidden]
    by_api = compare.distance_matrices(tiny_population, rec, measures=("procrustes",))["procrustes"]
    np.testing.assert_allclose(compare.pairwise_distances(flat, "procrustes", n_jobs=1), by_api, atol=1e-9)


def test_bad_data_is_named_before_any_work():
    data = _networks()
    with pytest.raises(ValueError, match="argument 'measure' must be one of"):
        compare.pairwise_distances(data, "rsa")
    with pytest.raises(ValueError, match="argument 'data' must be a list of at least 2 arrays"):
        compare.pairwise_distances(data[0], "cka")
    with pytest.raises(ValueError, match="argument 'data' must be a list of at least 2 arrays"):
        compare.pairwise_distances(data[:1], "cka")
    with pytest.raises(ValueError, match=r"same samples .* got sample counts \[150, 180\]"):
        compare.pairwise_distances([data[0], data[0][:10]], "cka")
    with pytest.raises(ValueError, match="entry 1: representations must be finite"):
        compare.pairwise_distances([data[0], np.full((12, 15, 2), np.nan)], "svcca")
    with pytest.raises(ValueError, match=r"entry 0 must be \[trials, time, units\]"):
        compare.pairwise_distances([np.zeros(5), data[0]], "cka")
    with pytest.raises(ValueError, match=r"measure 'cka' takes the options \[\], got \['rank'\]"):
        compare.pairwise_distances(data, "cka", rank=3)
    with pytest.raises(ValueError, match="argument 'n_jobs' must be an integer >= 1"):
        compare.pairwise_distances(data, "cka", n_jobs=0)


def test_dsa_takes_trials_and_lengths_that_differ():
    pytest.importorskip("DSA")
    data = _networks()
    d = compare.pairwise_distances([data[0], data[2][:8, :12], data[3]], "dsa", iters=100, n_delays=3, rank=6)
    assert d.shape == (3, 3) and np.allclose(d, d.T) and (np.diag(d) == 0).all() and (d > 0)[~np.eye(3, dtype=bool)].all()
    with pytest.raises(ValueError, match="needs \\[trials, time, units\\] of at least 3 steps"):
        compare.pairwise_distances([data[0][:, :2], data[3]], "dsa")
