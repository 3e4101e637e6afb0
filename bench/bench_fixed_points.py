"""Batched fixed-point search: equivalence first, then time (pytest-benchmark).

Run: pytest bench/bench_fixed_points.py --benchmark-only --benchmark-json=bench-fp.json
     python bench/summarize.py bench-fp.json
K = 1024 candidates, D in {64, 128, 256}, tanh and GRU cells, float64, the same
initial states for every implementation:
- fused:         dynamo_ext.ops.newton_fixed_points (the op)
- python_newton: dynamo_ext.reference.newton_fixed_points (torch.func.jacrev under
                 vmap, torch.linalg.solve / Cholesky, the same damping and stopping rule)
- adam_q:        Adam on q = 0.5 ||F||^2 over all candidates, as FixedPointFinder does it,
                 until every q <= 1e-12 or 5000 iterations
extra_info: fraction converged (||F||_inf <= 1e-10) and the largest residual.

Quoted in docs/performance.md.
"""
import pytest
import torch

from dynamo_ext import ops, reference

K, TOL, MAX_ITER = 1024, 1e-10, 100
DIMS = (64, 128, 256)
_REFERENCE = {}


def system(cell, D, seed=0):
    g = torch.Generator().manual_seed(seed)
    G = reference.gate_count(cell)
    dt = torch.float64
    w_hh = torch.randn(G * D, D, generator=g, dtype=dt) * 1.2 / D ** 0.5
    return (torch.rand(K, D, generator=g, dtype=dt) * 2 - 1, torch.zeros(K, 1, dtype=dt),
            (torch.randn(1, G * D, generator=g, dtype=dt) * 0.2).expand(K, -1).contiguous(),
            torch.zeros(G * D, 1, dtype=dt), w_hh, torch.randn(G * D, generator=g, dtype=dt) * 0.1,
            torch.randn(G * D, generator=g, dtype=dt) * 0.1)


def adam_q(args, cell, lr=1e-2, max_iter=5000, q_tol=1e-12):
    z0, x, cond, w_ih, w_hh, b_ih, b_hh = args
    x_proj = x @ w_ih.T + b_ih + cond
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(max_iter):
        F = reference.cell_step(z, x_proj, w_hh, b_hh, cell) - z
        q = 0.5 * F.pow(2).sum(-1)
        if float(q.detach().max()) <= q_tol:
            break
        opt.zero_grad()
        q.sum().backward()
        opt.step()
    with torch.no_grad():
        F = reference.cell_step(z, x_proj, w_hh, b_hh, cell) - z
    res = F.abs().amax(-1)
    return z.detach(), res, res <= TOL


def reference_result(cell, D, args):
    if (cell, D) not in _REFERENCE:
        _REFERENCE[(cell, D)] = reference.newton_fixed_points(*args, cell=cell, tol=TOL, max_iter=MAX_ITER,
                                                              return_jacobian=False)
    return _REFERENCE[(cell, D)]


@pytest.mark.parametrize("impl", ["fused", "python_newton", "adam_q"])
@pytest.mark.parametrize("D", DIMS)
@pytest.mark.parametrize("cell", ["tanh", "gru"])
def test_fixed_points(benchmark, cell, D, impl):
    args = system(cell, D)
    if impl == "fused":
        def run():
            return ops.newton_fixed_points(*args, cell=cell, tol=TOL, max_iter=MAX_ITER, return_jacobian=False)
    elif impl == "python_newton":
        def run():
            return reference.newton_fixed_points(*args, cell=cell, tol=TOL, max_iter=MAX_ITER, return_jacobian=False)
    else:
        def run():
            return adam_q(args, cell)
    benchmark.group = f"fixed_points-{cell}-D{D}"
    out = benchmark.pedantic(run, rounds=3 if (impl == "fused" and D < 256) else 1, warmup_rounds=0, iterations=1)
    residual, converged = out[1], (out[3] if impl != "adam_q" else out[2])
    benchmark.extra_info.update({"fraction_converged": float(converged.float().mean()),
                                 "max_residual": float(residual.max())})
    if impl == "fused":  # equivalence: >= 99% of what the reference converges, to ||F||_inf <= 1e-10
        ref_conv = reference_result(cell, D, args)[3]
        assert int((converged & ref_conv).sum()) >= 0.99 * int(ref_conv.sum())
