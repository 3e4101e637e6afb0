"""Every common base network: ReLU RNNs, stacked layers, leaky CT-RNNs and modules of the step protocol
in the population, the reparameterizations and the fixed-point finder."""
import math

import pytest
import torch
from scipy.optimize import brentq
from torch import nn

import dynamo_ext as de
from dynamo_ext import find_fixed_points
from dynamo_ext.uses.reparameterization import kinds_for, reparameterize
from dynamo_ext.population.step import run_steps
from dynamo_ext.population.base_rnn import BaseRNN


def independent_search(F, starts, iters=60, tol=1e-10):
    """Plain Newton on F(z) = 0 per start with torch.autograd.functional.jacobian: the converged, distinct,
    isolated points (dF/dz non-singular: saturated gates make continua of fixed points, which no two
    searches need to sample alike)."""
    found = []
    for z in starts.double():
        for _ in range(iters):
            f = F(z)
            if f.abs().max() < tol:
                break
            J = torch.autograd.functional.jacobian(F, z)
            z = z - torch.linalg.lstsq(J, f).solution
        if not (torch.isfinite(z).all() and F(z).abs().max() < tol):
            continue
        isolated = torch.linalg.svdvals(torch.autograd.functional.jacobian(F, z)).min() > 1e-6
        if isolated and all((z - p).norm() > 1e-6 for p in found):
            found.append(z.detach())
    return torch.stack(found) if found else torch.zeros(0, starts.shape[1], dtype=torch.float64)


def assert_contains(points, wanted, atol=1e-7):
    for w in wanted:
        assert (points - w).norm(dim=-1).min() < atol, f"missing fixed point {w.tolist()}"


def test_one_unit_bistable_ctrnn_has_its_three_hand_checked_fixed_points():
    """h <- (1 - a) h + a tanh(w h), w = 2: fixed points 0 and +-h*, tanh(2 h*) = h*; eigenvalue
    (1 - a) + a w (1 - h^2) at each (1.2 at 0 for a = 0.2: unstable)."""
    m = de.CTRNN(1, 1, dt=10.0, tau=50.0)
    with torch.no_grad():
        m.weight_hh.fill_(2.0), m.weight_ih.fill_(1.0), m.bias_ih.zero_(), m.bias_hh.zero_()
    fps = find_fixed_points(m, n_inits=32)
    h = brentq(lambda v: math.tanh(2 * v) - v, 0.5, 1.0)
    torch.testing.assert_close(fps.states.flatten(), torch.tensor([h, 0.0, -h], dtype=torch.float64), atol=1e-9,
                               rtol=0)
    lam = fps.eigenvalues.real.flatten()
    torch.testing.assert_close(lam, torch.tensor([0.8 + 0.4 * (1 - h * h), 1.2, 0.8 + 0.4 * (1 - h * h)],
                                                 dtype=torch.float64), atol=1e-9, rtol=0)
    assert fps.cell == "autograd" and fps.is_stable.tolist() == [True, False, True]


def bistable_gru(layers=2):
    """A GRU whose every unit, alone, is bistable: zero weights except W_hn = 4 (so r = u = 1/2 and
    h = tanh(2 h) at a fixed point); layer 2 ignores its input."""
    g = nn.GRU(2, 1, num_layers=layers, batch_first=True)
    with torch.no_grad():
        for p in g.parameters():
            p.zero_()
        for layer in range(layers):
            getattr(g, f"weight_hh_l{layer}")[2] = 4.0
    return g


def test_two_layer_gru_has_the_nine_hand_checked_fixed_points_and_matches_an_independent_search():
    g = bistable_gru()
    h = brentq(lambda v: math.tanh(2 * v) - v, 0.5, 1.0)
    starts = torch.rand(64, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fps = find_fixed_points(g, initial_states=starts, inputs=torch.tensor([0.3, -0.2]))
    grid = torch.tensor([[a, b] for a in (-h, 0, h) for b in (-h, 0, h)], dtype=torch.float64)
    assert len(fps) == 9
    assert_contains(fps.states, grid)
    assert int(fps.is_stable.sum()) == 4  # both units at +-h*
    # against plain Newton on the module's own forward, from the same starts
    g64 = bistable_gru().double()
    x = torch.tensor([[[0.3, -0.2]]], dtype=torch.float64)
    F = lambda z: g64(x, z.reshape(2, 1, 1))[1].reshape(-1) - z  # noqa: E731
    assert_contains(fps.states, independent_search(F, starts))


@pytest.mark.parametrize("make", [lambda: nn.LSTM(3, 4, batch_first=True), lambda: nn.GRU(3, 3, num_layers=2),
                                  lambda: de.CTRNN(3, 5, alpha=0.5), lambda: nn.RNN(3, 4, nonlinearity="relu")],
                         ids=["lstm", "gru-2-layers", "ctrnn", "relu-rnn"])
def test_fixed_points_equal_an_independent_autograd_newton_search_from_the_same_starts(make):
    torch.manual_seed(3)
    net = make()
    with torch.no_grad():  # strong recurrence, so that there is more than one fixed point
        for name, p in net.named_parameters():
            if "weight_hh" in name:
                p.mul_(6.0)
    x = torch.randn(3)
    D = {nn.LSTM: 8, nn.GRU: 6, de.CTRNN: 5, nn.RNN: 4}[type(net)]
    starts = torch.rand(48, D, generator=torch.Generator().manual_seed(1)) * 2 - 1
    fps = find_fixed_points(net, inputs=x, initial_states=starts, outlier_max_abs=None)
    net64 = net.double()
    if isinstance(net, nn.LSTM):
        F = lambda z: torch.cat(net64(x.double()[None, None], (z[:4].reshape(1, 1, 4),  # noqa: E731
                                                                z[4:].reshape(1, 1, 4)))[1]).reshape(-1) - z
    elif isinstance(net, de.CTRNN):
        F = lambda z: net64.step(x.double()[None], z[None])[0] - z  # noqa: E731
    else:
        L = net.num_layers
        F = lambda z: net64(x.double()[None, None] if net.batch_first else x.double()[None, None],  # noqa: E731
                            z.reshape(L, 1, -1))[1].reshape(-1) - z
    wanted = independent_search(F, starts)
    assert len(wanted) >= 1
    assert_contains(fps.states, wanted)
    for z in fps.states:  # and every point it reports is one
        assert F(z).abs().max() < 1e-9
    assert fps.cell == ("lstm" if isinstance(net, nn.LSTM) else "autograd")


def test_lstm_one_unit_fixed_points_are_the_hand_checked_ones():
    """Zero weights except W_hg = 8: i = f = o = 1/2, so c = tanh(8 h) and h = tanh(c) / 2 at a fixed point."""
    m = nn.LSTM(1, 1)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.weight_hh_l0[2] = 8.0
    fps = find_fixed_points(m, n_inits=64)
    h = brentq(lambda v: 0.5 * math.tanh(math.tanh(8 * v)) - v, 0.1, 0.5)
    want = torch.tensor([[-h, math.tanh(-8 * h)], [0.0, 0.0], [h, math.tanh(8 * h)]], dtype=torch.float64)
    assert len(fps) == 3
    assert_contains(fps.states, want, atol=1e-9)


def test_contexts_are_solved_from_every_start_and_split_per_context():
    m = de.CTRNN(1, 1, alpha=1.0)
    with torch.no_grad():
        m.weight_hh.fill_(2.0), m.weight_ih.fill_(1.0), m.bias_ih.zero_(), m.bias_hh.zero_()
    contexts = torch.tensor([[0.0], [2.0], [-2.0]])  # bistable at 0; one stable point under strong input
    fps = find_fixed_points(m, contexts=contexts, n_inits=16)
    assert fps.contexts.shape == (3, 1)
    per = fps.per_context()
    assert [len(p) for p in per] == [3, 1, 1]
    assert float(per[1].states) > 0.9 and float(per[2].states) < -0.9
    for c, p in zip(contexts, per):
        assert torch.equal(p.inputs, c.double().expand(len(p), 1))
    same_k = find_fixed_points(m, contexts=torch.zeros(16, 1), n_inits=16)  # C = K, by keyword
    assert same_k.contexts.shape == (16, 1) and len(same_k) == 3


class TwoAreaRNN(nn.Module):
    """A user's module of the step protocol (see python/own_network.py): two tanh areas, the second
    driven by the first."""

    def __init__(self, input_size=2, n=3):
        super().__init__()
        self.input_size, self.state_size, self.hidden_size, self.arch = input_size, 2 * n, 2 * n, "two-area"
        self.a = nn.RNNCell(input_size, n)
        self.b = nn.Linear(2 * n, n)
        self.readout = nn.Linear(n, 1)

    def step(self, x, z):
        n = z.shape[1] // 2
        ha = self.a(x, z[:, :n])
        return torch.cat([ha, torch.tanh(self.b(torch.cat([ha, z[:, n:]], -1)))], -1)

    def record(self, x):
        zs = run_steps(self.step, x, self.state_size)
        return zs, self.readout(zs[..., self.state_size // 2:])

    def forward(self, x):
        return self.record(x)[1]


def test_a_module_of_the_step_protocol_joins_a_population_and_has_fixed_points():
    torch.manual_seed(0)
    net = TwoAreaRNN()
    fps = find_fixed_points(net, n_inits=32)
    assert fps.cell == "autograd" and len(fps) >= 1
    z = fps.states[0:1]
    torch.testing.assert_close(net.double().step(torch.zeros(1, 2, dtype=torch.float64), z), z, atol=1e-9, rtol=0)


@pytest.mark.parametrize("arch,kw", [("relu_rnn", {}), ("gru", {"num_layers": 2}), ("lstm", {"num_layers": 2}),
                                     ("ctrnn", {"alpha": 0.25, "nonlinearity": "relu"}),
                                     ("ctrnn", {"nonlinearity": "softplus"})])
def test_new_architectures_record_their_layers_states_and_every_valid_reparameterization_preserves_them(arch, kw):
    torch.manual_seed(2)
    m = BaseRNN(arch, 3, 5, 2, **kw).double()
    x = torch.randn(4, 9, 3, dtype=torch.float64)
    hidden, out = m.record(x)
    assert hidden.shape == (4, 9, m.state_size) and m.state_size == kw.get("num_layers", 1) * 5 * (
        2 if arch == "lstm" else 1)
    torch.testing.assert_close(out, m(x), atol=1e-12, rtol=0)
    z = hidden[:, 3]
    torch.testing.assert_close(m.step(x[:, 4], z), hidden[:, 4], atol=1e-12, rtol=0)
    for kind in kinds_for(m):
        c = reparameterize(m, kind, seed=1)
        torch.testing.assert_close(c(x), out, atol=1e-12, rtol=0)
        assert (c.record(x)[0] - hidden).abs().max() > 1e-3
    if arch == "relu_rnn" or kw.get("nonlinearity") == "relu":
        assert "rescale" in kinds_for(m) and "sign_flip" not in kinds_for(m)
    with pytest.raises(ValueError, match="does not preserve the function"):
        reparameterize(m, "rescale" if "rescale" not in kinds_for(m) else "sign_flip")


def test_rescaled_relu_rnn_states_are_the_original_states_times_positive_scales():
    torch.manual_seed(0)
    m = BaseRNN("relu_rnn", 3, 6, 2).double()
    c = reparameterize(m, "rescale", seed=4)
    x = torch.randn(5, 8, 3, dtype=torch.float64)
    h, h2 = m.record(x)[0].reshape(-1, 6), c.record(x)[0].reshape(-1, 6)
    active = h > 1e-6
    ratio = torch.where(active, h2 / h.clamp(min=1e-12), torch.nan)
    scales = torch.nanmean(ratio, 0)
    assert (scales > 0.25 - 1e-9).all() and (scales < 4 + 1e-9).all() and scales.std() > 0.1
    torch.testing.assert_close(h2, h * scales, atol=1e-10, rtol=0)


def test_wrap_takes_relu_stacked_and_ct_rnns_and_refuses_bidirectional_ones():
    assert BaseRNN.wrap(nn.RNN(3, 4, nonlinearity="relu"), nn.Linear(4, 1)).arch == "relu_rnn"
    stacked = BaseRNN.wrap(nn.LSTM(3, 4, num_layers=2, batch_first=True), nn.Linear(4, 1))
    assert stacked.num_layers == 2 and stacked.state_size == 16
    ct = BaseRNN.wrap(de.CTRNN(3, 4, dt=20, tau=100), nn.Linear(4, 1))
    assert ct.arch == "ctrnn" and ct.spec()["alpha"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="unidirectional"):
        BaseRNN.wrap(nn.GRU(3, 4, bidirectional=True), nn.Linear(8, 1))
    with pytest.raises(ValueError, match="'alpha'"):
        de.CTRNN(3, 4, dt=2.0, tau=1.0)
    with pytest.raises(ValueError, match="'nonlinearity' must be one of"):
        de.CTRNN(3, 4, nonlinearity="sigmoid")


def test_descent_before_newton_finds_the_saddles_of_far_starts_and_only_fixed_points():
    """Three bistable units (tanh(2 h) = h each): 27 fixed points, the centre with 3 unstable directions;
    from starts far outside the cube, Adam on q before Newton must still find exact fixed points only."""
    m = de.CTRNN(1, 3, alpha=1.0)
    with torch.no_grad():
        m.weight_hh.copy_(2.0 * torch.eye(3)), m.weight_ih.zero_(), m.bias_ih.zero_(), m.bias_hh.zero_()
    starts = torch.randn(256, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.6
    plain = find_fixed_points(m, initial_states=starts)
    descended = find_fixed_points(m, initial_states=starts, descent_steps=20)
    for fps in (plain, descended):
        torch.testing.assert_close(fps.states, m.double().step(torch.zeros(len(fps), 1, dtype=torch.float64),
                                                                fps.states), atol=1e-10, rtol=0)
    assert len(descended) == 27 and int((descended.n_unstable == 3).sum()) == 1
    with pytest.raises(ValueError, match="'descent_steps' must be an integer >= 0"):
        find_fixed_points(m, descent_steps=-1)
    with pytest.raises(ValueError, match="'descent_lr'"):
        find_fixed_points(m, descent_steps=2, descent_lr=0.0)


def test_the_default_descends_from_far_noisy_starts_only():
    """descent_steps="auto": the 20 Adam steps of FixedPointFinder-like starts (noise >= FAR_NOISE), none for
    starts jittered a little; the same points as the explicit settings."""
    from dynamo_ext.dynamics.fixed_points import AUTO_DESCENT_STEPS, FAR_NOISE

    m = de.CTRNN(1, 3, alpha=1.0)
    with torch.no_grad():
        m.weight_hh.copy_(2.0 * torch.eye(3)), m.weight_ih.zero_(), m.bias_ih.zero_(), m.bias_hh.zero_()
    for noise, steps in ((0.6, AUTO_DESCENT_STEPS), (FAR_NOISE / 10, 0)):
        auto = find_fixed_points(m, n_inits=128, noise=noise, seed=3)
        explicit = find_fixed_points(m, n_inits=128, noise=noise, seed=3, descent_steps=steps)
        assert torch.equal(auto.states, explicit.states), noise
    assert not torch.equal(find_fixed_points(m, n_inits=128, noise=0.6, seed=3, descent_steps=0).states,
                           find_fixed_points(m, n_inits=128, noise=0.6, seed=3).states)
