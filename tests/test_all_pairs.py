"""All-pairs baselines (dynamo_ext.compare.all_pairs, weight_distance_matrix, output_disagreement_matrix):
the blocked matrix products give every pair the value of the per-pair reference functions."""
import numpy as np
import pytest
import torch

from dynamo_ext.compare import (
    Representation,
    linear_cka,
    output_disagreement,
    procrustes_distance,
    svcca,
    weight_distance,
)
from dynamo_ext.compare.all_pairs import all_pairs
from dynamo_ext.compare.distances import distance_matrices
from dynamo_ext.compare.outputs import output_disagreement_matrix
from dynamo_ext.compare.weights import weight_distance_matrix
from dynamo_ext.population.base_rnn import BaseRNN


def random_reps(widths, n=120, seed=0):
    """Correlated random representations of mixed widths (shared latents, so the measures are not all ~0)."""
    g = np.random.default_rng(seed)
    latent = g.standard_normal((n, 6))
    return [Representation(latent @ g.standard_normal((6, d)) + 0.5 * g.standard_normal((n, d))
                           @ g.standard_normal((d, d))) for d in widths]


def per_pair(reps):
    n = len(reps)
    ref = {m: np.zeros((n, n)) for m in ("cka", "svcca", "procrustes")}
    for i in range(n):
        for j in range(n):
            if i != j:
                ref["cka"][i, j] = 1.0 - linear_cka(reps[i], reps[j])
                ref["svcca"][i, j] = 1.0 - svcca(reps[i], reps[j])
                ref["procrustes"][i, j] = procrustes_distance(reps[i], reps[j])
    return ref


@pytest.mark.parametrize("block_columns", [1, 13, 4096])  # one model per block, mixed blocks, one block
def test_blocked_all_pairs_equal_the_per_pair_measures(block_columns):
    reps = random_reps([3, 9, 5, 9, 2, 7, 4])
    ref = per_pair(reps)
    out = all_pairs(reps, block_columns=block_columns)
    assert list(out) == ["cka", "svcca", "procrustes"]
    for name in ref:
        np.testing.assert_allclose(out[name], ref[name], atol=1e-7, rtol=0, err_msg=name)  # eigvalsh of the Gram: ~1e-8
        assert np.all(out[name][~np.eye(len(reps), dtype=bool)] > 1e-3), name  # not a trivial matrix


def test_all_pairs_of_a_subset_and_bad_input():
    reps = random_reps([4, 6, 3], seed=1)
    assert list(all_pairs(reps, ["procrustes"])) == ["procrustes"]
    with pytest.raises(ValueError, match="argument 'measures' must be a subset"):
        all_pairs(reps, ["cca"])
    with pytest.raises(ValueError, match="same number of samples"):
        all_pairs(reps + random_reps([3], n=50), ["cka"])
    with pytest.raises(ValueError, match="at least one"):
        all_pairs([], ["cka"])


def test_weight_and_output_matrices_equal_the_per_pair_measures():
    torch.manual_seed(0)
    models = [BaseRNN("gru", 3, 5, 2), BaseRNN("gru", 3, 5, 2), BaseRNN("rnn", 3, 5, 2), BaseRNN("gru", 3, 4, 2),
              BaseRNN("gru", 3, 5, 2)]
    d = weight_distance_matrix(models)
    for i in range(5):
        for j in range(5):
            expect = 0.0 if i == j else weight_distance(models[i], models[j])
            np.testing.assert_allclose(d[i, j], expect, rtol=1e-12, atol=0, equal_nan=True)
    assert np.isnan(d[0, 2]) and d[0, 1] > 0 and d[0, 0] == 0
    g = torch.Generator().manual_seed(2)
    y = torch.randn(4, 30, 5, 3, generator=g)
    y[1, :, :, 0] = 0.0  # some zero outputs: a sign of its own
    for kind in ("classes", "real"):
        d = output_disagreement_matrix(y, kind)
        for i in range(4):
            for j in range(4):
                expect = 0.0 if i == j else output_disagreement(y[i], y[j], kind)
                assert d[i, j] == pytest.approx(expect, abs=1e-6), (kind, i, j)  # the reference means in float32
    with pytest.raises(ValueError, match="must be \\[N, S, T, C\\]"):
        output_disagreement_matrix(y[0], "real")


def test_distance_matrices_equal_the_per_pair_measures_on_a_population(tiny_population):
    rec = tiny_population.record(max_sequences=40)
    d = distance_matrices(tiny_population, recording=rec)
    reps = [Representation(h) for h in rec.hidden]
    ref = per_pair(reps)
    for name in ref:
        # eigvalsh of the Gram: ~1e-8
        np.testing.assert_allclose(d[name], np.maximum(ref[name], 0.0), atol=1e-7, rtol=0, err_msg=name)


def test_measures_over_the_time_budget_are_skipped_and_named(tiny_population):
    from dynamo_ext.compare.all_pairs import estimate_seconds
    from dynamo_ext.compare.distances import plan_measures

    rec = tiny_population.record(max_sequences=40)
    run, skipped = plan_measures(rec, ("cka", "svcca", "weights", "outputs", "dsa"), None)
    assert run == ["cka", "svcca", "weights", "outputs", "dsa"] and skipped == []
    run, skipped = plan_measures(rec, ("cka", "procrustes", "weights", "outputs", "dsa"), 1e-12)
    assert run == ["weights", "outputs"]  # cheap: always run
    assert [s["measure"] for s in skipped] == ["cka", "procrustes", "dsa"]
    assert all("budget" in s["why"] and s["estimated_s"] >= 0 for s in skipped)
    # the cost model grows as (sum of widths)^2 for the GEMM, and the pairs' eigensolves on top
    small, big = (estimate_seconds("cka", 1000, [10] * n, 1e9) for n in (10, 20))
    assert big == pytest.approx(4 * small)
    assert estimate_seconds("procrustes", 1000, [10] * 10, 1e9) > estimate_seconds("cka", 1000, [10] * 10, 1e9)
    with pytest.raises(ValueError, match="'measure'"):
        estimate_seconds("weights", 10, [3], 1e9)


def _distributed_rank(rank, world, port, data, out):
    import os

    import numpy as np

    from dynamo_ext.compare import pairwise_distances

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        got = {m: pairwise_distances(data, m, distributed=True) for m in ("cka", "svcca", "procrustes")}
        np.save(f"{out}/rank{rank}.npy", np.stack([got[m] for m in ("cka", "svcca", "procrustes")]))
    finally:
        torch.distributed.destroy_process_group()


def test_all_pairs_on_two_gloo_ranks_equal_one_process(tmp_path):
    """pairwise_distances(..., distributed=True) on 2 ranks: every rank holds the one-process matrices."""
    import socket

    import numpy as np
    import torch.multiprocessing as mp

    from dynamo_ext.compare import pairwise_distances
    from dynamo_ext.compare import all_pairs as ap

    g = np.random.default_rng(3)
    data = [g.standard_normal((120, w)) for w in (2, 20, 45, 80, 3, 25, 50, 90)]
    one = np.stack([pairwise_distances(data, m) for m in ("cka", "svcca", "procrustes")])
    assert len(ap._blocks([d.shape[1] for d in data], 4096)) == 4  # 10 pairs of blocks, shared by the ranks
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_distributed_rank, args=(2, port, data, str(tmp_path)), nprocs=2, start_method="spawn")
    for rank in range(2):
        np.testing.assert_allclose(np.load(tmp_path / f"rank{rank}.npy"), one, rtol=1e-8, atol=1e-12)
    with pytest.raises(ValueError, match="initialised torch.distributed process group"):
        pairwise_distances(data, "cka", distributed=True)
    with pytest.raises(ValueError, match="'dsa' has no distributed form"):
        pairwise_distances([np.ones((2, 5, 3))] * 2, "dsa", distributed=True)


def test_representations_read_the_callers_arrays_in_place_and_leave_them_unchanged():
    """A Representation keeps no centred copy (memory is the recording's own), and computing every measure
    from it changes none of the given float64 arrays or tensors."""
    g = np.random.default_rng(3)
    data = [g.standard_normal((40, d)) + 2.0 for d in (3, 5, 4)]
    data[1] = torch.tensor(data[1])
    before = [x.numpy().copy() if isinstance(x, torch.Tensor) else x.copy() for x in data]
    reps = [Representation(x) for x in data]
    assert np.shares_memory(reps[0]._h, data[0]) and reps[1]._h.data_ptr() == data[1].data_ptr()
    out = all_pairs(reps, block_columns=5)
    for x, b in zip(data, before):
        np.testing.assert_array_equal(np.asarray(x), b)
    ref = per_pair(reps)
    for name in ref:
        np.testing.assert_allclose(out[name], ref[name], atol=1e-7, rtol=0, err_msg=name)
