"""find_fixed_points at its defaults on families of systems whose fixed points are known in closed form.

Each family must give every fixed point, and only fixed points, whatever the noise of the starts
(hypothesis draws the system, the noise and the seed):

- linear contractions of any rate up to 0.999: a tanh RNN h' = tanh(a Q h) and a GRU whose candidate
  is tanh(r * (a Q h)) with random update- and reset-gate weights; both have the single fixed point 0,
  with the step Jacobian a Q (tanh) or u0 I + (1 - u0) r0 a Q (GRU) there. The GRU's gates saturate far
  from 0, where q = 0.5 ||f(h) - h||^2 falls towards zero without a fixed point;
- bistable wells: h' = tanh(w_i h_i) per unit with w_i > 1, whose 3^D fixed points are the products of
  {-s_i, 0, s_i} (s_i = tanh(w_i s_i)), with as many unstable directions as zero coordinates;
- a line attractor: the built network of ``population.attractors`` with f(x) = x, whose fixed points
  at zero input are the line U [x, 0] (eigenvalues 1 and 0).
"""
import math

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import dynamo_ext as de  # noqa: E402
from dynamo_ext.population.attractors import LatentAttractorRNN  # noqa: E402

FAMILY = settings(max_examples=25, deadline=None, derandomize=True)
NOISE = st.sampled_from([0.0, 0.05, 0.5, 1.0, 2.0])


def _orthogonal(D: int, g: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def _check_single_point(fps, expected_jacobian: torch.Tensor, label: str):
    assert len(fps) == 1, f"{label}: {len(fps)} fixed points, expected 1 ({fps})"
    assert float(fps.states.abs().max()) < 1e-8, label
    expected = torch.linalg.eigvals(expected_jacobian).abs().max()
    torch.testing.assert_close(fps.eigenvalues.abs()[0, 0], expected, atol=1e-6, rtol=0)
    assert bool(fps.is_stable.all()), label


@FAMILY
@given(rate=st.floats(0.05, 0.999), D=st.integers(2, 32), noise=NOISE, seed=st.integers(0, 10 ** 6))
def test_tanh_contraction_has_its_one_fixed_point(rate, D, noise, seed):
    g = torch.Generator().manual_seed(seed)
    rnn = torch.nn.RNN(2, D, batch_first=True).double()
    Q = _orthogonal(D, g)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(rate * Q), rnn.bias_hh_l0.zero_(), rnn.bias_ih_l0.zero_()
    fps = de.find_fixed_points(rnn, inputs=torch.zeros(1, 2), n_inits=64, noise=noise, seed=seed)
    _check_single_point(fps, rate * Q, f"tanh rate {rate} D {D} noise {noise}")


@FAMILY
@given(rate=st.floats(0.05, 0.999), D=st.integers(2, 32), gate_scale=st.floats(0.0, 3.0),
       update_bias=st.floats(-2.0, 4.0), noise=NOISE, seed=st.integers(0, 10 ** 6))
def test_gru_contraction_has_its_one_fixed_point(rate, D, gate_scale, update_bias, noise, seed):
    g = torch.Generator().manual_seed(seed)
    gru = torch.nn.GRU(2, D, batch_first=True).double()
    Q = _orthogonal(D, g)
    with torch.no_grad():  # PyTorch's gate order: reset, update, candidate
        w = gate_scale * torch.randn(3 * D, D, generator=g, dtype=torch.float64) / math.sqrt(D)
        w[2 * D:] = rate * Q
        b = torch.randn(3 * D, generator=g, dtype=torch.float64)
        b[D:2 * D] += update_bias
        b[2 * D:] = 0.0  # the candidate is 0 at h = 0, so h = 0 is the fixed point
        gru.weight_hh_l0.copy_(w), gru.bias_hh_l0.copy_(b), gru.bias_ih_l0.zero_()
    r0, u0 = torch.sigmoid(b[:D]), torch.sigmoid(b[D:2 * D])
    jacobian = torch.diag(u0) + torch.diag(1 - u0) @ torch.diag(r0) @ (rate * Q)
    fps = de.find_fixed_points(gru, inputs=torch.zeros(1, 2), n_inits=64, noise=noise, seed=seed)
    _check_single_point(fps, jacobian, f"GRU rate {rate} D {D} gates {gate_scale} noise {noise}")


def _well(w: float) -> float:
    s = 1.0
    for _ in range(100):  # Newton on s - tanh(w s), from s = 1 (the root lies in (0, 1))
        t = math.tanh(w * s)
        s -= (s - t) / (1 - w * (1 - t * t))
    return s


@FAMILY
@given(wells=st.lists(st.floats(1.5, 4.0), min_size=1, max_size=3), noise=NOISE, seed=st.integers(0, 10 ** 6))
def test_bistable_wells_have_every_fixed_point(wells, noise, seed):
    D = len(wells)
    rnn = torch.nn.RNN(1, D, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(torch.diag(torch.tensor(wells, dtype=torch.float64)))
        rnn.bias_hh_l0.zero_(), rnn.bias_ih_l0.zero_()
    roots = [(-_well(w), 0.0, _well(w)) for w in wells]
    expected = torch.cartesian_prod(*[torch.tensor(r, dtype=torch.float64) for r in roots]).reshape(-1, D)
    fps = de.find_fixed_points(rnn, inputs=torch.zeros(1, 1), noise=noise, seed=seed)
    assert len(fps) == 3 ** D, f"wells {wells} noise {noise}: {fps}"
    dist = torch.cdist(expected, fps.states, compute_mode="donot_use_mm_for_euclid_dist")
    assert float(dist.min(1).values.max()) < 1e-8
    match = dist.argmin(1)
    zeros = (expected.abs() < 1e-12).sum(-1)
    assert torch.equal(fps.n_unstable[match], zeros)


@FAMILY
@given(beta=st.floats(0.5, 10.0), D=st.integers(2, 24), noise=NOISE, seed=st.integers(0, 10 ** 6))
def test_line_attractor_points_all_lie_on_the_line(beta, D, noise, seed):
    net = LatentAttractorRNN("line", beta, state_size=D, seed=seed).double()
    with torch.no_grad():  # orthonormal in float64, so that the line's eigenvalue is 1 to rounding
        net.embedding.copy_(torch.linalg.qr(net.embedding)[0])
    U = net.embedding
    fps = de.find_fixed_points(net, inputs=torch.zeros(1, 1), n_inits=64, noise=noise, seed=seed)
    assert len(fps) >= 32, f"beta {beta} D {D} noise {noise}: {fps}"
    on_line = U[:, :1] @ (U[:, :1].T @ fps.states.T)
    torch.testing.assert_close(on_line.T, fps.states, atol=1e-8, rtol=0)
    moduli = fps.eigenvalues.abs()
    torch.testing.assert_close(moduli[:, 0], torch.ones(len(fps), dtype=torch.float64), atol=1e-6, rtol=0)
    assert float(moduli[:, 1:].max()) < 1e-6


def test_meta_model_of_leaky_integrators_has_each_ones_point_at_defaults():
    """A meta-model (GRU cell, state 64) fitted to six built leaky integrators (leaks 0.80-0.995): from
    uniform starts with noise 0.5 the 20 descent steps carried every start into the region where the GRU's
    update gates saturate, and no fixed point was found; each model has exactly one, stable, with the
    leading modulus of its own leak to within the fit's error."""
    import numpy as np

    from dynamo_ext.population.attractors import evidence_task
    from dynamo_ext.population.population import Population

    task = evidence_task(n_train=100, n_test=50, seed=0)
    leaks = np.linspace(0.80, 0.995, 6)
    models = [LatentAttractorRNN("point", beta=1.0 if i % 2 else 5.0, state_size=8, seq_len=task.seq_len,
                                 leak=float(a), seed=i) for i, a in enumerate(leaks)]
    meta = de.fit(Population.from_modules(models, task), steps=300, progress=False).meta
    for n, leak in enumerate(leaks):
        fps = de.find_fixed_points(meta, model_id=n, inputs=torch.zeros(1, 1), n_inits=64, noise=0.5)
        assert len(fps) == 1 and bool(fps.is_stable.all()), (n, fps)
        assert abs(float(fps.eigenvalues.abs()[0, 0]) - leak) < 0.1, (n, leak, fps.eigenvalues.abs()[0, :3])


def test_given_initial_states_are_solved_where_they_are():
    """Reflection into [-1, 1] applies to drawn starts only: a start the user gives outside the cube is
    solved from there (a saturated tanh unit: Newton's first step takes it to the stable state)."""
    rnn = torch.nn.RNN(1, 1, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_hh_l0.fill_(2.0), rnn.bias_hh_l0.zero_(), rnn.bias_ih_l0.zero_()
    far = torch.tensor([[3.0], [-3.0]], dtype=torch.float64)
    fps = de.find_fixed_points(rnn, inputs=torch.zeros(1, 1), initial_states=far, noise=0.0)
    torch.testing.assert_close(fps.states.sort(0).values.reshape(-1),
                               torch.tensor([-_well(2.0), _well(2.0)], dtype=torch.float64))
    assert torch.equal(far, torch.tensor([[3.0], [-3.0]], dtype=torch.float64))
