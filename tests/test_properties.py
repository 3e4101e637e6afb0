"""Property-based checks of the public API (hypothesis): every call on generated shapes, dtypes and
values either works and returns finite numbers, or raises a clear ValueError / RuntimeError."""
import math

import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dynamo_ext import compare as bl  # noqa: E402
from dynamo_ext import ops, reference  # noqa: E402
from dynamo_ext.uses.clustering import cluster_distances  # noqa: E402
from dynamo_ext.meta.rnn import MetaRNN  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
CLEAR = (ValueError, RuntimeError)
SPECIAL = st.sampled_from([None, math.nan, math.inf, -math.inf])


def _tensor(shape, dtype, seed, special=None):
    t = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)
    if special is not None and t.numel():
        t.view(-1)[seed % t.numel()] = special
    return t


@SETTINGS
@given(T=st.integers(0, 4), B=st.integers(0, 4), I=st.integers(0, 3), D=st.integers(0, 5),
       cell=st.sampled_from(["tanh", "gru", "lstm"]), dtype=st.sampled_from([torch.float32, torch.float64,
                                                                             torch.float16]),
       bad=st.sampled_from([None, "h0", "cond", "w_hh", "b_ih", "dtype"]), seed=st.integers(0, 10 ** 6))
def test_meta_rnn_sequence_works_or_raises_clearly(T, B, I, D, cell, dtype, bad, seed):
    G = {"tanh": 1, "gru": 3}.get(cell, 4)
    shapes = {"x": (T, B, I), "h0": (B, D), "cond": (B, G * D), "w_ih": (G * D, I), "w_hh": (G * D, D),
              "b_ih": (G * D,), "b_hh": (G * D,)}
    if bad in shapes:
        shapes[bad] = tuple(s + 1 for s in shapes[bad])
    args = {k: _tensor(s, dtype, seed + i) for i, (k, s) in enumerate(shapes.items())}
    if bad == "dtype":
        args["w_hh"] = args["w_hh"].to(torch.float64 if dtype != torch.float64 else torch.float32)
    try:
        out = ops.meta_rnn_sequence(*args.values(), cell)
    except CLEAR:
        return
    assert cell in ("tanh", "gru") and bad is None and dtype != torch.float16
    assert out.shape == (T, B, D) and bool(torch.isfinite(out).all())
    expected = reference.meta_rnn_sequence(*args.values(), cell)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


@SETTINGS
@given(B=st.integers(0, 3), T=st.integers(0, 5), I=st.integers(1, 3), dtype=st.sampled_from(
    [torch.float32, torch.float64, torch.int64]), special=SPECIAL, seed=st.integers(0, 10 ** 6))
def test_meta_model_forward_works_or_raises_clearly(B, T, I, dtype, special, seed):
    torch.manual_seed(0)
    meta = MetaRNN(3, 2, 4, [5, 6, 7], state_size=6)
    x = _tensor((B, T, I), dtype, seed, special) if dtype.is_floating_point else torch.ones(B, T, I, dtype=dtype)
    try:
        z, y = meta(x, seed % 4)
    except CLEAR:
        return
    assert I == 2 and dtype == torch.float32 and seed % 4 < 3
    assert z.shape == (B, T, 6) and y.shape == (B, T, 4)
    assert bool(torch.isfinite(y).all()) or (special is not None and B * T > 0)


@SETTINGS
@given(n=st.integers(0, 30), da=st.integers(1, 6), db=st.integers(1, 6), extra=st.integers(0, 2),
       special=SPECIAL, seed=st.integers(0, 10 ** 6))
def test_representation_measures_are_finite_or_refused(n, da, db, extra, special, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, da))
    b = rng.normal(size=(n + extra, db))
    if special is not None and a.size:
        a.flat[seed % a.size] = special
    for fn in (bl.linear_cka, bl.svcca, bl.procrustes_distance):
        try:
            v = fn(a, b)
        except ValueError:
            continue
        assert extra == 0 and n >= 4 and special is None
        assert math.isfinite(v)
        assert -1.0 <= v <= math.sqrt(2) + 1e-9


@SETTINGS
@given(n=st.integers(1, 12), k=st.integers(0, 14), method=st.sampled_from(["kmeans", "agglomerative", "ward"]),
       nan_pair=st.booleans(), seed=st.integers(0, 10 ** 6))
def test_cluster_distances_works_or_raises_clearly(n, k, method, nan_pair, seed):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n, 2))
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    if nan_pair and n > 1:
        d[0, 1] = d[1, 0] = np.nan
    try:
        res = cluster_distances(d, k, labels_true=list(range(n)), method=method)
    except ValueError:
        assert k < 1 or k > n or method == "ward"
        return
    assert len(res.assignments) == n and res.ari is not None and math.isfinite(res.ari)


@SETTINGS
@given(K=st.integers(0, 4), I=st.integers(0, 3), D=st.integers(0, 6), cell=st.sampled_from(["tanh", "gru", "lstm"]),
       dtype=st.sampled_from([torch.float32, torch.float64]), bad=st.sampled_from([None, "x", "cond", "w_hh"]),
       tol=st.sampled_from([1e-10, 0.0, -1.0]), max_iter=st.sampled_from([50, 0]), special=SPECIAL,
       seed=st.integers(0, 10 ** 6))
def test_newton_fixed_points_works_or_raises_clearly(K, I, D, cell, dtype, bad, tol, max_iter, special, seed):
    G = {"tanh": 1, "gru": 3}.get(cell, 4)
    shapes = {"z0": (K, D), "x": (K, I), "cond": (K, G * D), "w_ih": (G * D, I), "w_hh": (G * D, D),
              "b_ih": (G * D,), "b_hh": (G * D,)}
    if bad is not None:
        shapes[bad] = tuple(s + 1 for s in shapes[bad])
    args = {k: 0.5 * _tensor(s, dtype, seed + i) for i, (k, s) in enumerate(shapes.items())}
    if special is not None and K * D:
        args["z0"].view(-1)[0] = special
    try:
        z, res, iters, conv, jac = ops.newton_fixed_points(*args.values(), cell, tol, max_iter)
    except (*CLEAR, NotImplementedError):
        return
    assert cell in ("tanh", "gru") and bad is None and tol > 0 and max_iter >= 1
    assert z.shape == (K, D) and jac.shape == (K, D, D) and iters.shape == conv.shape == (K,)
    # converged candidates are finite and solve the fixed-point equation; none is reported
    # converged with a NaN state
    assert bool(torch.isfinite(z[conv]).all()) and bool((res[conv] <= tol).all())
    if special is not None and K * D:
        assert not bool(conv[0])  # a candidate started at NaN/Inf is not reported as a fixed point


@SETTINGS
@given(n=st.integers(0, 4), T=st.integers(1, 4), I=st.integers(1, 3), y_kind=st.sampled_from(
    ["int", "float", "short", "out_of_range"]), special=SPECIAL, theta_dim=st.integers(0, 3),
    seed=st.integers(0, 10 ** 6))
def test_adapt_and_embedding_arguments_work_or_raise_clearly(n, T, I, y_kind, special, theta_dim, seed):
    from dynamo_ext.uses.adaptation import adapt

    torch.manual_seed(0)
    meta = MetaRNN(3, 2, 4, [5, 6, 7], state_size=6)
    x = _tensor((n, T, I), torch.float32, seed, special)
    y = {"int": torch.arange(n) % 4, "float": torch.zeros(n), "short": torch.arange(max(n - 1, 0)) % 4,
         "out_of_range": torch.arange(n) + 4}[y_kind]
    try:
        net = adapt(meta, x, y, steps=2, restarts=2)
    except CLEAR:
        pass
    else:
        assert n >= 1 and I == 2 and y_kind == "int" and special is None
        assert net.theta.shape == (2,) and bool(torch.isfinite(net.theta).all())
    try:
        _, out = meta(torch.zeros(1, T, 2), theta=torch.zeros(theta_dim))
    except CLEAR:
        assert theta_dim != 2
    else:
        assert theta_dim == 2 and out.shape == (1, T, 4)
