"""Batched Newton fixed-point solves: the op against the reference, known systems, the analysis API."""
import pytest
import torch

import dynamo_ext as de
from dynamo_ext import ops, reference
from dynamo_ext.dynamics.fixed_points import find_fixed_points
from dynamo_ext.population.tasks import flipflop_batch


CELLS = ["tanh", "gru", "lstm"]


def random_system(cell, K=48, I=2, D=12, scale=1.5, seed=0):
    """A random cell with K candidates; D is the state size (the LSTM's [h; c]: H = D // 2 units)."""
    g = torch.Generator().manual_seed(seed)
    G = reference.gate_count(cell)
    H = D // 2 if cell == "lstm" else D
    D = reference.state_size(cell, H)
    dt = torch.float64
    return (torch.rand(K, D, generator=g, dtype=dt) * 2 - 1, torch.randn(K, I, generator=g, dtype=dt) * 0.3,
            (torch.randn(1, G * H, generator=g, dtype=dt) * 0.2).expand(K, -1).contiguous(),
            torch.randn(G * H, I, generator=g, dtype=dt), torch.randn(G * H, H, generator=g, dtype=dt) * scale / H ** 0.5,
            torch.randn(G * H, generator=g, dtype=dt) * 0.1, torch.randn(G * H, generator=g, dtype=dt) * 0.1)


@pytest.mark.parametrize("cell", CELLS)
def test_op_matches_reference_and_solves_the_fixed_point_equation(cell):
    args = random_system(cell)
    z, res, it, conv, J = ops.newton_fixed_points(*args, cell=cell, tol=1e-10, max_iter=60)
    zr, resr, itr, convr, Jr = reference.newton_fixed_points(*args, cell=cell, tol=1e-10, max_iter=60)
    assert conv.float().mean() >= 0.5  # the rest stall in slow regions (q > 0) or hit max_iter
    # at least 99% of the candidates the reference converges also converge in the op
    assert (conv & convr).sum() >= 0.99 * convr.sum()
    # and reaches the same fixed point for at least 90% of them: a candidate on a long damped
    # path (30+ iterations) can be sent elsewhere by the rounding differences between
    # LAPACK's LU and the op's; short, Newton-dominated paths agree
    both = conv & convr
    same = (z - zr).abs().amax(-1) <= 1e-8
    assert int((both & same).sum()) >= 0.9 * int(both.sum())
    assert bool(same[both & (it <= 15)].all())
    # independent check of the equation, and of the Jacobian against autograd
    z0, x, cond, w_ih, w_hh, b_ih, b_hh = args
    x_proj = x @ w_ih.T + b_ih + cond
    F = reference.cell_step(z, x_proj, w_hh, b_hh, cell) - z
    assert float(F[conv].abs().max()) <= 1e-10
    assert torch.equal(conv, res <= 1e-10)
    for k in conv.nonzero().squeeze(1)[:5].tolist():
        auto = torch.autograd.functional.jacobian(
            lambda v: reference.cell_step(v.unsqueeze(0), x_proj[k:k + 1], w_hh, b_hh, cell)[0], z[k])
        torch.testing.assert_close(J[k], auto, rtol=1e-10, atol=1e-12)
    assert int(it.max()) <= 60


@pytest.mark.parametrize("cell", CELLS)
def test_min_progress_stops_candidates_that_creep_towards_slow_points(cell):
    args = random_system(cell, K=64, scale=2.5, seed=1)
    z0, x, cond, w_ih, w_hh, b_ih, b_hh = args
    x_proj = x @ w_ih.T + b_ih + cond

    def norm_F(z, rows):
        return (reference.cell_step(z[rows], x_proj[rows], w_hh, b_hh, cell) - z[rows]).norm(dim=-1)

    full = ops.newton_fixed_points(*args, cell=cell, max_iter=60, return_jacobian=False, min_progress=0.0)
    fast = ops.newton_fixed_points(*args, cell=cell, max_iter=60, return_jacobian=False, min_progress=0.01)
    # Newton converges quadratically: no candidate that converges within 15 iterations is stopped
    quick = full[3] & (full[2] <= 15)
    assert bool(fast[3][quick].all()) and torch.equal(fast[0][quick], full[0][quick])
    stopped = ~fast[3] & (fast[2] < full[2])
    assert int(stopped.sum()) >= 5 and int(fast[2].sum()) < int(full[2].sum())
    # each stopped candidate's ||F||_2 fell by less than 1% over its last 5 iterations
    # (runs are deterministic: max_iter = n gives the state after n iterations)
    for n in fast[2][stopped].unique().tolist():
        rows = stopped & (fast[2] == n)
        before = ops.newton_fixed_points(*args, cell=cell, max_iter=n - 5, return_jacobian=False, min_progress=0.01)[0]
        assert bool((norm_F(fast[0], rows) > 0.99 * norm_F(before, rows)).all())
    # letting them run on only lowers q further
    assert bool((norm_F(full[0], stopped) <= norm_F(fast[0], stopped)).all())
    with pytest.raises(RuntimeError, match="'min_progress' must be in \\[0, 1\\)"):
        ops.newton_fixed_points(*args, cell=cell, min_progress=1.0)
    with pytest.raises(ValueError, match="'min_progress'"):
        find_fixed_points(torch.nn.RNNCell(2, 3), min_progress=-0.1)


@pytest.mark.parametrize("cell", CELLS)
def test_opcheck(cell):
    args = random_system(cell, K=6, D=6)
    torch.library.opcheck(torch.ops.dynamo_ext.newton_fixed_points.default, (*args, cell, 1e-10, 30, True, 0.01))
    f32 = tuple(a.float() for a in args)
    torch.library.opcheck(torch.ops.dynamo_ext.newton_fixed_points.default, (*f32, cell, 1e-5, 30, False, 0.0))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("D", [12, 40, 300])  # D = 300 in float64: the system matrix in global memory
def test_cuda_solves_what_the_cpu_solves(cell, D):
    args = random_system(cell, K=24, D=D, scale=1.2)
    cpu = ops.newton_fixed_points(*args, cell=cell, tol=1e-10, max_iter=60)
    gpu = [t.cpu() for t in ops.newton_fixed_points(*(a.cuda() for a in args), cell=cell, tol=1e-10, max_iter=60)]
    # the device's rounding may send a candidate to a different fixed point, never to a wrong one
    z0, x, cond, w_ih, w_hh, b_ih, b_hh = args
    x_proj = x @ w_ih.T + b_ih + cond
    F = reference.cell_step(gpu[0], x_proj, w_hh, b_hh, cell) - gpu[0]
    assert torch.equal(gpu[3], F.abs().amax(-1) <= 1e-10) and torch.equal(gpu[3], gpu[1] <= 1e-10)
    assert int(gpu[3].sum()) >= 0.9 * int(cpu[3].sum()) and int(cpu[3].sum()) > 0
    # started at the CPU's fixed points, the device stays there and returns the same Jacobians
    conv = cpu[3]
    again = ops.newton_fixed_points(cpu[0][conv].cuda(), *(a[conv].cuda() for a in (x, cond)),
                                    *(a.cuda() for a in (w_ih, w_hh, b_ih, b_hh)), cell=cell, tol=1e-10, max_iter=5)
    torch.testing.assert_close(again[0].cpu(), cpu[0][conv], rtol=0, atol=1e-9)
    torch.testing.assert_close(again[4].cpu(), cpu[4][conv], rtol=0, atol=1e-10)
    assert bool(again[3].all()) and int(again[2].max()) <= 2
    # float32
    f32 = [a.float().cuda() for a in args]
    z32, res32, _, conv32, _ = ops.newton_fixed_points(*f32, cell=cell, tol=1e-4, max_iter=60)
    F32 = reference.cell_step(z32, f32[1] @ f32[3].T + f32[5] + f32[2], f32[4], f32[6], cell) - z32
    assert bool(conv32.any()) and float(F32[conv32].abs().max()) <= 1e-4


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_cuda_opcheck(cell):
    args = [a.cuda() for a in random_system(cell, K=6, D=6)]
    torch.library.opcheck(torch.ops.dynamo_ext.newton_fixed_points.default, (*args, cell, 1e-10, 30, True, 0.01))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_find_fixed_points_on_cuda_matches_cpu():
    torch.manual_seed(0)
    gru = torch.nn.GRU(2, 16).double()
    x_star = torch.tensor([0.3, -0.2], dtype=torch.float64)
    cpu = find_fixed_points(gru, inputs=x_star, n_inits=64)
    gpu = find_fixed_points(gru.cuda(), inputs=x_star, n_inits=64)
    assert gpu.states.device.type == "cpu" and len(gpu) == len(cpu)
    order_c, order_g = cpu.states[:, 0].argsort(), gpu.states[:, 0].argsort()
    torch.testing.assert_close(gpu.states[order_g], cpu.states[order_c], rtol=0, atol=1e-8)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where no CUDA device is present")
def test_find_fixed_points_on_a_missing_cuda_device_is_a_clear_error():
    with pytest.raises(ValueError, match="argument 'device'.*no CUDA device"):
        find_fixed_points(torch.nn.GRU(2, 4), device="cuda")


def test_without_recurrence_the_fixed_point_is_tanh_of_the_bias():
    D = 7
    b = torch.randn(D, dtype=torch.float64)
    zeros = torch.zeros(D, D, dtype=torch.float64)
    z, res, it, conv, J = ops.newton_fixed_points(torch.zeros(3, D, dtype=torch.float64),
                                                  torch.zeros(3, 1, dtype=torch.float64),
                                                  torch.zeros(3, D, dtype=torch.float64),
                                                  torch.zeros(D, 1, dtype=torch.float64), zeros, b,
                                                  torch.zeros(D, dtype=torch.float64), "tanh", 1e-12, 20, True)
    torch.testing.assert_close(z, torch.tanh(b).expand(3, -1), rtol=0, atol=1e-12)
    assert conv.all() and int(it.max()) <= 2 and float(J.abs().max()) == 0.0


def test_stability_of_the_three_fixed_points_of_z_equals_tanh_2z():
    cell = torch.nn.RNNCell(1, 1).double()
    with torch.no_grad():
        cell.weight_hh.fill_(2.0)
        cell.bias_hh.zero_()
        cell.bias_ih.zero_()
    fps = find_fixed_points(cell, initial_states=torch.linspace(-1, 1, 41, dtype=torch.float64).unsqueeze(1))
    assert len(fps) == 3
    order = fps.states[:, 0].argsort()
    states = fps.states[order, 0]
    assert abs(float(states[1])) < 1e-12 and float(states[2]) == pytest.approx(0.957504, abs=1e-6)
    assert fps.is_stable[order].tolist() == [True, False, True]
    assert fps.n_unstable[order].tolist() == [0, 1, 0]
    torch.testing.assert_close(fps.eigenvalues[order][1].real, torch.tensor([2.0], dtype=torch.float64))


def test_gru_fixed_points_satisfy_torch_gru_cell():
    torch.manual_seed(0)
    gru = torch.nn.GRU(2, 8).double()
    x_star = torch.tensor([0.3, -0.2], dtype=torch.float64)
    fps = find_fixed_points(gru, inputs=x_star, n_inits=64)
    assert len(fps) >= 1
    cell = torch.nn.GRUCell(2, 8).double()
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in gru.state_dict().items()})
    with torch.no_grad():
        step = cell(x_star.expand(len(fps), -1), fps.states)
    torch.testing.assert_close(step, fps.states, rtol=0, atol=1e-9)


def test_meta_model_fixed_points_and_base_coordinates(tiny_fit):
    meta = tiny_fit.meta
    fps = find_fixed_points(meta, model_id="gru-h12-s0", n_inits=32)
    assert len(fps) >= 1 and fps.states.shape[1] == meta.state_size
    base = fps.to_base("gru-h12-s0")
    assert base.shape == (len(fps), 12)
    torch.testing.assert_close(base.float(), meta.maps[1].to_base(fps.states.float()), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="'theta'"):
        find_fixed_points(meta)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_analytic_jacobian_matches_autograd_at_random_states(cell, dtype):
    """The op's dcell/dz (csrc/cell_math.h) against autograd of the reference cell, away from fixed points."""
    args = tuple(a.to(dtype) for a in random_system(cell, K=16, D=10, scale=2.0, seed=4))
    z0, x, cond, w_ih, w_hh, b_ih, b_hh = args
    # a tolerance above every residual: no step is taken, the Jacobian is the one at z0
    z, _, it, conv, J = ops.newton_fixed_points(*args, cell=cell, tol=1e3, max_iter=1)
    assert torch.equal(z, z0) and int(it.max()) == 0 and bool(conv.all())
    x_proj = x @ w_ih.T + b_ih + cond
    auto = torch.func.vmap(torch.func.jacrev(
        lambda v, xp: reference.cell_step(v.unsqueeze(0), xp.unsqueeze(0), w_hh, b_hh, cell)[0]))(z0, x_proj)
    tol = {torch.float32: 2e-6, torch.float64: 1e-13}[dtype]
    torch.testing.assert_close(J, auto, rtol=tol, atol=tol)
    assert float(auto.abs().amax()) > 0.1  # not a trivial Jacobian


def test_lstm_cell_reference_is_torch_lstm_cell(rng):
    cell = torch.nn.LSTMCell(3, 5).double()
    x = torch.randn(7, 3, dtype=torch.float64, generator=rng)
    h, c = torch.randn(7, 5, dtype=torch.float64, generator=rng), torch.randn(7, 5, dtype=torch.float64, generator=rng)
    h1, c1 = cell(x, (h, c))
    x_proj = x @ cell.weight_ih.T + cell.bias_ih
    out = reference.cell_step(torch.cat([h, c], -1), x_proj, cell.weight_hh, cell.bias_hh, "lstm")
    torch.testing.assert_close(out, torch.cat([h1, c1], -1).detach())


@pytest.mark.parametrize("make", [lambda: torch.nn.LSTM(2, 8), lambda: torch.nn.LSTMCell(2, 8),
                                  lambda: de.BaseRNN("lstm", 2, 8, 3)])
def test_lstm_fixed_points_satisfy_torch_lstm(make):
    torch.manual_seed(1)
    model = make().double()
    x_star = torch.tensor([0.4, -0.3], dtype=torch.float64)
    fps = find_fixed_points(model, inputs=x_star, n_inits=64, noise=0.0)
    assert len(fps) >= 1 and fps.states.shape[1] == 16
    lstm = model.rnn if isinstance(model, de.BaseRNN) else model
    w = (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0) if isinstance(
        lstm, torch.nn.LSTM) else (lstm.weight_ih, lstm.weight_hh, lstm.bias_ih, lstm.bias_hh)
    cell = torch.nn.LSTMCell(2, 8).double()
    with torch.no_grad():
        for p, q in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), w):
            p.copy_(q)
        h, c = fps.states[:, :8], fps.states[:, 8:]
        h1, c1 = cell(x_star.expand(len(fps), -1), (h, c))
    torch.testing.assert_close(torch.cat([h1, c1], -1), fps.states, rtol=0, atol=1e-9)
    assert fps.jacobians.shape == (len(fps), 16, 16)


def test_fixed_points_of_a_users_network_and_of_an_averaged_model(tiny_fit):
    """A module holding one RNN (a user's GRU with its readout) and the operable network of de.average."""
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.GRU(2, 6, batch_first=True)
            self.readout = torch.nn.Linear(6, 2)

    torch.manual_seed(0)
    net = Net()
    a = find_fixed_points(net, n_inits=32)
    b = find_fixed_points(net.rnn, n_inits=32)
    assert len(a) == len(b) >= 1 and torch.equal(a.states, b.states)
    meta = tiny_fit.meta
    avg = de.average(meta, [0, 1])
    via_avg = find_fixed_points(avg, n_inits=32)
    direct = find_fixed_points(meta, theta=avg.theta, n_inits=32)
    assert len(via_avg) == len(direct) and torch.equal(via_avg.states, direct.states)
    with pytest.raises(ValueError, match="holding 2 recurrent modules"):
        find_fixed_points(torch.nn.Sequential(torch.nn.GRU(2, 3), torch.nn.GRU(3, 3)))


def test_bad_input():
    with pytest.raises(ValueError, match="argument 'model'"):
        find_fixed_points(torch.nn.Linear(2, 4))
    with pytest.raises(ValueError, match="proj_size=0"):
        find_fixed_points(torch.nn.LSTM(2, 4, proj_size=2))
    with pytest.raises(RuntimeError, match="'z0' must be \\[K, 2H\\]"):
        args = random_system("lstm", K=2, D=6)
        ops.newton_fixed_points(args[0][:, :5], *args[1:], cell="lstm")
    with pytest.raises(NotImplementedError, match="'tanh', 'gru' or 'lstm'"):
        ops.newton_fixed_points(*random_system("tanh", K=2, D=3), cell="relu")
    with pytest.raises(ValueError, match="unidirectional"):
        find_fixed_points(torch.nn.GRU(2, 4, bidirectional=True))
    with pytest.raises(ValueError, match="'inputs' and 'contexts' are exclusive"):
        find_fixed_points(torch.nn.GRU(2, 4), inputs=torch.zeros(2), contexts=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="'contexts' must have shape"):
        find_fixed_points(torch.nn.GRU(2, 4), contexts=torch.zeros(3, 5))
    rnn = torch.nn.RNN(2, 4)
    with pytest.raises(ValueError, match="'initial_states' must have shape"):
        find_fixed_points(rnn, initial_states=torch.zeros(3, 5))
    with pytest.raises(ValueError, match="'initial_states' must be finite"):
        find_fixed_points(rnn, initial_states=torch.full((3, 4), float("nan")))
    with pytest.raises(ValueError, match="'inputs' must have shape"):
        find_fixed_points(rnn, inputs=torch.zeros(3))
    args = random_system("tanh", K=2, D=3)
    with pytest.raises(RuntimeError, match="'tol' must be > 0"):
        ops.newton_fixed_points(*args, cell="tanh", tol=0.0)
    with pytest.raises(RuntimeError, match="'w_hh' must have shape"):
        ops.newton_fixed_points(*args[:4], args[4][:, :2], *args[5:], cell="tanh")


@pytest.mark.slow
def test_flip_flop_rnn_has_eight_stable_fixed_points():
    """Sussillo & Barak 2013: a tanh RNN trained on the 3-bit flip-flop has 8 stable fixed points at zero input."""
    torch.manual_seed(0)
    rnn = torch.nn.RNN(3, 64, batch_first=True)
    readout = torch.nn.Linear(64, 3)
    opt = torch.optim.Adam([*rnn.parameters(), *readout.parameters()], lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(3000):
        x, y = flipflop_batch(64, 60, 3, 0.08, g)
        loss = (readout(rnn(x)[0]) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.02
    x, _ = flipflop_batch(128, 60, 3, 0.08, g)
    with torch.no_grad():
        trajectories, _ = rnn(x)
    fps = find_fixed_points(rnn, trajectories=trajectories, n_inits=512, noise=0.01)
    assert int(fps.is_stable.sum()) == 8
    # the 8 stable points are the 8 memories: their readouts have the 8 sign patterns
    with torch.no_grad():
        signs = readout(fps.states[fps.is_stable].float()).sign()
    assert len({tuple(s.tolist()) for s in signs}) == 8


def test_scan_finds_the_saddle_node_bifurcation_of_z_equals_tanh_2z_plus_theta(tmp_path):
    """z = tanh(2 z + theta) has 3 fixed points for |theta| < 0.5328 and 1 beyond (saddle-node)."""
    from dynamo_ext.dynamics.path_scan import scan
    from dynamo_ext.report.figures import plot_bifurcation

    meta = de.MetaRNN(1, input_size=1, n_outputs=1, hidden_sizes=[1], state_size=1, embedding_dim=1,
                      cell="tanh").double()
    with torch.no_grad():
        for p in (meta.w_ih, meta.b_ih, meta.b_hh):
            p.zero_()
        meta.w_hh.fill_(2.0)
        meta.cond_map.weight.fill_(1.0)
    thetas = torch.tensor([[-0.8], [-0.5], [0.0], [0.5], [0.8]], dtype=torch.float64)
    result = scan(meta, thetas, n_inits=64, noise=0.0)
    counts = [row["n_fixed_points"] for row in result.table()]
    assert counts == [1, 3, 3, 3, 1]
    assert [row["n_stable"] for row in result.table()] == [1, 2, 2, 2, 1]
    assert [row["n_saddle_1"] for row in result.table()] == [0, 1, 1, 1, 0]
    fig = plot_bifurcation(result, tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG" and len(fig.axes[0].collections) > 0


def test_embedding_path_and_scan_on_a_fitted_meta_model(tiny_fit, digits_task):
    from dynamo_ext.dynamics.path_scan import embedding_path, scan

    meta = tiny_fit.meta
    path = embedding_path(meta, "rnn-h12-s0", "lstm-h12-s0", steps=3)
    torch.testing.assert_close(path[0], meta.theta[0].detach())
    torch.testing.assert_close(path[-1], meta.theta[2].detach())
    result = scan(meta, path, probe_x=digits_task.x_test[:16], n_inits=32)
    assert len(result.table()) == 3 and all(len(p) >= 1 for p in result.points)
    with pytest.raises(ValueError, match="'thetas' must have shape"):
        scan(meta, torch.zeros(3, 5))


def test_fixed_points_save_and_load_without_pickle_and_plot(tiny_fit, tmp_path):
    from matplotlib.figure import Figure

    from dynamo_ext.dynamics import FixedPoints

    meta = tiny_fit.meta
    fps = find_fixed_points(meta, model_id="gru-h12-s0", n_inits=32, contexts=torch.zeros(2, meta.input_size))
    path = fps.save(tmp_path / "points.safetensors")
    back = FixedPoints.load(path, meta=meta)
    for name in FixedPoints._FIELDS:
        assert torch.equal(getattr(back, name), getattr(fps, name)), name
    assert torch.equal(back.contexts, fps.contexts) and back.cell == fps.cell and repr(back) == repr(fps)
    assert len(back.slow_points) == len(fps.slow_points)
    torch.testing.assert_close(back.to_base("gru-h12-s0"), fps.to_base("gru-h12-s0"))
    with pytest.raises(ValueError, match="loaded without one"):
        FixedPoints.load(path).to_base(0)
    fig = Figure()
    ax = fig.subplots()
    assert back.plot(ax=ax) is fig and ax.collections
    # errors name the file
    (tmp_path / "other.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="other.safetensors.*corrupted"):
        FixedPoints.load(tmp_path / "other.safetensors")
    from dynamo_ext import _io
    _io.write_tensors(tmp_path / "weights.safetensors", {"w": torch.ones(2)})
    with pytest.raises(ValueError, match="not written by FixedPoints.save"):
        FixedPoints.load(tmp_path / "weights.safetensors")
    with pytest.raises(ValueError, match="argument 'path' must be a file path"):
        fps.save(tmp_path)
