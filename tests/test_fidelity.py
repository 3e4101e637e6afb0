"""Dynamical fidelity (dynamo_ext.dynamics.attractor_fidelity): a meta-model that is its base model scores perfectly,
one with the wrong attractors is caught, and the matching recovers known correspondences."""
import pytest
import torch

import dynamo_ext as de
from dynamo_ext.dynamics.attractor_fidelity import fidelity, fidelity_table, match_stable_points, memory_sequences
from dynamo_ext.meta.rnn import MetaRNN
from dynamo_ext.population.base_rnn import BaseRNN


@pytest.fixture(scope="module")
def flipflop_task():
    return de.load_task("flipflop", n_train=50, n_test=40, seq_len=30)


def three_bit_latch(self_excitation=2.0, seed=0):
    """A tanh RNN with W_hh = a I (+ small noise): for a > 1 each unit is bistable at zero input, so
    there are 27 fixed points: 8 stable (the 3-bit flip-flop's memories), 12 saddles with one
    unstable direction and 7 with more; pulses of +-1 set the bits, the readout reads them."""
    g = torch.Generator().manual_seed(seed)
    base = BaseRNN("rnn", 3, 3, 3)
    with torch.no_grad():
        base.rnn.weight_ih_l0.copy_(3.0 * torch.eye(3))
        base.rnn.weight_hh_l0.copy_(self_excitation * torch.eye(3) + 0.02 * torch.randn(3, 3, generator=g))
        base.rnn.bias_ih_l0.zero_()
        base.rnn.bias_hh_l0.zero_()
        base.readout.weight.copy_(torch.eye(3))
        base.readout.bias.zero_()
    return base


def exact_meta(base: BaseRNN, task) -> MetaRNN:
    """A tanh MetaRNN (D = H) that is the base model at its theta: same weights, no conditioning,
    z0 = 0, the readout as head, A_n = I."""
    meta = MetaRNN(1, task.input_size, task.n_outputs, [base.hidden_size], state_size=base.hidden_size,
                   cell="tanh", output_kind="real", model_ids=["latch"])
    with torch.no_grad():
        for p in (meta.init_map.weight, meta.init_map.bias, meta.cond_map.weight, meta.head_theta.weight):
            p.zero_()
        meta.w_ih.copy_(base.rnn.weight_ih_l0)
        meta.w_hh.copy_(base.rnn.weight_hh_l0)
        meta.b_ih.copy_(base.rnn.bias_ih_l0)
        meta.b_hh.copy_(base.rnn.bias_hh_l0)
        meta.head.weight.copy_(base.readout.weight)
        meta.head.bias.copy_(base.readout.bias)
        meta.maps[0].linear.weight.copy_(torch.eye(base.hidden_size))
        meta.maps[0].linear.bias.zero_()
    return meta


def test_a_meta_model_that_is_its_base_model_has_its_attractors_and_memory(flipflop_task):
    base = three_bit_latch()
    pop = de.Population.from_modules([base], flipflop_task, ids=["latch"])
    assert pop.members[0].test_accuracy > 0.99
    [row] = fidelity(exact_meta(base, flipflop_task), pop, n_inits=128)
    assert row["base"]["n_stable"] == 8 and row["base"] == row["meta"]
    # starts drawn from trajectories find the saddles the trajectories pass near (not all 12)
    assert 1 <= row["base"]["n_saddle_1"] <= 12 and row["base"]["n_unstable_more"] <= 7
    assert row["n_matched"] == 8 and row["extra_meta_stable"] == 0
    assert row["max_matched_distance_rel"] < 1e-6
    for b, m in row["leading_moduli"]:
        assert abs(b - m) < 1e-6 and b < 1
    mem = row["memory"]
    assert mem["steps"] == {"silence": 30 * 11, "long": 300}
    for part in ("silence", "long"):
        assert mem[part]["base_accuracy"] > 0.99
        assert mem[part]["meta_accuracy"] == pytest.approx(mem[part]["base_accuracy"], abs=1e-6)
        assert mem[part]["agreement"] == pytest.approx(1.0)


def test_a_meta_model_without_the_attractors_is_caught(flipflop_task):
    base = three_bit_latch()
    pop = de.Population.from_modules([base], flipflop_task, ids=["latch"])
    meta = exact_meta(base, flipflop_task)
    with torch.no_grad():  # self-excitation below 1 and a bias: one stable point, every memory is lost
        meta.w_hh.mul_(0.4)
        meta.b_hh.fill_(0.3)
    [row] = fidelity(meta, pop, n_inits=128)
    assert row["base"]["n_stable"] == 8 and row["meta"]["n_stable"] == 1 and row["meta"]["n_fixed_points"] == 1
    assert row["n_matched"] == 1 and row["extra_meta_stable"] == 0
    assert row["memory"]["silence"]["meta_accuracy"] < 0.7 < row["memory"]["silence"]["base_accuracy"]
    table = fidelity_table([row])
    assert table[0]["stable base/meta"] == "8/1"


def test_matching_recovers_a_permutation_and_scales_by_the_median_distance():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 4, generator=g, dtype=torch.float64)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    noise = 1e-3 * torch.randn(6, 4, generator=g, dtype=torch.float64)
    out = match_stable_points(base, base[perm] + noise)
    assert sorted(out["pairs"]) == sorted([[int(perm[j]), j] for j in range(6)])
    expected = float(noise.norm(dim=1).max() / torch.pdist(base).median())
    assert out["max_distance_rel"] == pytest.approx(expected, rel=1e-9)
    # more meta points than base points: every base point is matched once, the rest are extra
    out = match_stable_points(base[:2], base)
    assert sorted(out["pairs"]) == [[0, 0], [1, 1]] and out["max_distance_rel"] == pytest.approx(0.0, abs=1e-12)
    assert match_stable_points(base[:0], base)["max_distance_rel"] is None


def test_memory_sequences_hold_silence_after_the_pulses(flipflop_task):
    held, y_held, long, y_long = memory_sequences(flipflop_task, 20, silence=3, horizon=2, seed=0)
    assert held.shape == (20, 120, 3) and long.shape == (20, 60, 3)
    assert bool((held[:, 30:] == 0).all()) and bool((held[:, :30] != 0).any())
    # flip-flop targets hold the last pulse's sign through the silence
    assert torch.equal(y_held[:, -1], y_held[:, 29])


def test_fidelity_refuses_a_meta_cnn_and_another_population(tiny_fit, tiny_population, flipflop_task):
    pop = de.Population.from_modules([three_bit_latch()], flipflop_task, ids=["latch"])
    with pytest.raises(ValueError, match="argument 'meta' was fitted to models"):
        fidelity(tiny_fit.meta, pop)
    with pytest.raises(ValueError, match="must be a MetaRNN"):
        fidelity(torch.nn.Linear(2, 2), tiny_population)


# the largest matched attractor distance, relative to the median attractor distance: the worst seen across
# population seeds, fit seeds, dtypes and machines was 0.147 (bench/fidelity_spread.py); this bound is ~1.7x that
MATCHED_DISTANCE_BOUND = 0.25


@pytest.mark.slow
def test_flip_flop_meta_model_has_every_base_models_attractors_and_memory(tmp_path):
    """Dynamical fidelity, on a freshly trained flip-flop population (tanh RNN, GRU, LSTM; 3 seeds
    each; hidden 32; default training and fit settings): every base model with 8 stable fixed points gets
    exactly 8 from the meta-model at theta_n, matched one to one; after one probe length of pulses and 10
    of silence, and on sequences 10 probe lengths long, the meta-model is at most 0.01 below every base
    model of accuracy >= 0.98. (The defaults were chosen on seeds 100-101; docs/results.md.)

    The largest matched distance, relative to the median distance between the base's attractors, is
    asserted with a margin, not at its target: its spread across machines, population seeds, fit seeds
    and dtypes (bench/fidelity_spread.py; docs/guide/fixed-points.md, "Spread of the fidelity figures")
    reached 0.147 on one model of 52 (6 runs: population seeds 0, 10 and 20; fit seeds 0 and 1; float32
    and float64), and this test's own population gave 0.1007 on one machine (AMD EPYC, AVX-512) and at
    most 0.10 on the machine where its target was set. The 0.10 target is reported from that run, not
    asserted here; the bound below is about 1.7x the worst value seen."""
    from dynamo_ext.population.training import TrainConfig

    pop = de.train_population("flipflop", archs=("rnn", "gru", "lstm"), n_seeds=3, hidden_sizes=(32,),
                              config=TrainConfig(), progress=False)
    res = de.fit(pop, progress=False)
    rows = fidelity(res.meta, pop, n_inits=512)
    eight = [r for r in rows if r["base"]["n_stable"] == 8]
    assert len(eight) >= 6, [(r["id"], r["base"]["n_stable"]) for r in rows]
    for r in eight:
        assert r["meta"]["n_stable"] == 8 and r["n_matched"] == 8, r
        assert r["max_matched_distance_rel"] <= MATCHED_DISTANCE_BOUND, r
    for r in rows:
        assert r["extra_meta_stable"] == 0, r
        for part in ("silence", "long"):
            mem = r["memory"][part]
            if mem["base_accuracy"] >= 0.98:
                assert mem["meta_accuracy"] >= mem["base_accuracy"] - 0.01, (r["id"], part, mem)
