"""Comparing networks: DYNAMO's functional reading of the embedding and
DSA, the dynamics-aware peer, on the same recordings as every baseline."""
import numpy as np
import pytest
import torch

import dynamo_ext as de
from dynamo_ext.compare.distances import distance_matrices
from dynamo_ext.uses.clustering import embedding_distances, functional_distances


def test_functional_distance_sees_what_theta_does_not():
    """Embeddings differing only along a direction the meta-model ignores are functionally identical
    (distance 0) though far apart in theta; ones the meta-model reads are not."""
    torch.manual_seed(0)
    meta = de.MetaRNN(4, 3, 2, [5, 5, 5, 5], state_size=6, embedding_dim=2)
    with torch.no_grad():
        for lin in (meta.init_map, meta.cond_map, meta.head_theta):
            lin.weight[:, 1] = 0.0  # theta's second coordinate does nothing
        meta.theta.copy_(torch.tensor([[0.0, 0.0], [0.0, 3.0], [1.0, 0.0], [1.0, -3.0]]))
    x = torch.randn(16, 7, 3)
    d = functional_distances(meta, x)
    assert d.shape == (4, 4) and np.allclose(d, d.T) and np.allclose(np.diag(d), 0)
    assert d[0, 1] < 1e-6 and d[2, 3] < 1e-6 and d[0, 2] > 0.1
    theta_d = embedding_distances(meta)
    assert theta_d[0, 1] > theta_d[0, 2]  # theta says the opposite


@pytest.mark.parametrize("chunk_bytes", [1, 20_000, 2 ** 28])
def test_functional_distances_in_chunks_of_sequences_equal_the_whole_features(chunk_bytes):
    """Streaming the probe sequences through Gram matrices gives the distances of all features held at once
    (computed here from every embedding's states and outputs), whatever the chunk (one sequence, a few, all)."""
    from dynamo_ext.uses.clustering import functional_features

    def distances_from_features(zs, ys):  # d^2 = sum over (z, y) of E ||a - b||^2 / V, all features held at once
        out = np.zeros((zs.shape[0], zs.shape[0]))
        for stack in (zs, ys):  # [K, S, F]
            spread = stack.var(0, unbiased=False).sum(-1).mean()
            flat = stack.flatten(1) / (spread * stack.shape[1]) ** 0.5
            out += (torch.cdist(flat, flat) ** 2).numpy()
        return np.sqrt(np.maximum(out, 0.0))

    torch.manual_seed(1)
    meta = de.MetaRNN(7, 3, 2, [4, 6, 5, 8, 3, 4, 9], state_size=6, embedding_dim=3)
    with torch.no_grad():
        meta.theta.normal_()
    x = torch.randn(13, 5, 3)
    want = distances_from_features(*functional_features(meta, x, meta.theta.detach()))
    got = functional_distances(meta, x, chunk_bytes=chunk_bytes, batch_size=4)
    assert want.shape == got.shape == (7, 7) and want[0, 1] > 0.1
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(functional_distances(meta, x, n=4, chunk_bytes=chunk_bytes),
                               distances_from_features(*functional_features(meta, x, meta.theta.detach()[:4])),
                               rtol=1e-5, atol=1e-6)


dsa_metric = pytest.importorskip("DSA", reason="dsa-metric is not installed (pip install 'dynamo_ext[peers]')")


def test_dsa_tells_reparameterized_copies_from_other_dynamics_and_is_a_measure_of_distance_matrices(
        tiny_population):
    from dynamo_ext.compare.dsa import dsa_distances
    from dynamo_ext.uses.reparameterization import with_reparameterized_copies

    both = with_reparameterized_copies(tiny_population)
    rec = both.record(max_sequences=20)
    d = dsa_distances(rec, iters=300)
    n = len(tiny_population)
    assert d.shape == (2 * n, 2 * n) and np.allclose(d, d.T) and (d >= 0).all()
    for i in range(n):  # a permuted / sign-flipped copy has the same DMD matrix up to a similarity transform
        others = [d[i + n, j] for j in range(n) if j != i]
        assert d[i + n, i] < min(others)
    pair = de.Population(tiny_population.task, tiny_population.members[:2])
    via = distance_matrices(pair, recording=pair.record(max_sequences=10), measures=("dsa",))
    assert set(via) == {"dsa"} and via["dsa"].shape == (2, 2) and via["dsa"][0, 1] > 0


def test_dsa_settings_are_checked():
    from dynamo_ext.compare.dsa import dsa_distances
    from dynamo_ext.population.recording import Recording

    rec = Recording(torch.zeros(2, 5, 1), [torch.randn(2, 5, 3)] * 2, torch.zeros(2, 2, 5, 1), "real")
    with pytest.raises(ValueError, match="'n_delays' must be below the sequence length 5"):
        dsa_distances(rec, n_delays=10)
    with pytest.raises(ValueError, match="'score_method' must be one of"):
        dsa_distances(rec, n_delays=2, score_method="cosine")


def test_dsa_refuses_a_cnn_populations_one_step_recording_before_any_work(tiny_population):
    from dynamo_ext.compare import distance_matrices
    from dynamo_ext.compare.dsa import dsa_distances
    from dynamo_ext.population.recording import Recording

    rec = tiny_population.record(max_sequences=6)
    one_step = Recording(rec.x[:, -1:], [h[:, -1:] for h in rec.hidden], rec.outputs[:, :, -1:],
                         rec.output_kind)
    with pytest.raises(ValueError, match="'dsa' compares trajectories over time .* got a recording of 1"):
        dsa_distances(one_step)
    with pytest.raises(ValueError, match="'dsa' compares trajectories over time"):
        distance_matrices(tiny_population, recording=one_step, measures=("cka", "dsa"))
