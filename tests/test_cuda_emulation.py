"""The CUDA kernels' logic, checked on the host: csrc/ops/cuda/*_device.cuh compiled by the host
compiler over tests/cuda_emulation/emulate_cuda.h (every thread of a block a fiber, __syncthreads
and warp shuffles real barriers, shared memory per block filled with NaN bytes) and the CUDA
drivers run on CPU tensors, compared with the CPU op on fresh random inputs.

It cannot see races, the memory model or the device's math library (see emulate_cuda.h);
tests marked ``cuda`` do that on a real device.
"""
from pathlib import Path

import pytest
import torch

import dynamo_ext  # noqa: F401  (loads the ops)
from dynamo_ext import reference

from test_fixed_points import random_system
from test_ops import max_rel_err

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
OPS = torch.ops.dynamo_ext
# the op tests' tolerances (tests/test_ops.py): relative to the largest entry, 10x for gradients
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


@pytest.fixture(scope="module")
def emulated():
    from torch.utils.cpp_extension import load

    return load(name="dynamo_ext_cuda_emulation",
                sources=[str(ROOT / "tests/cuda_emulation/emulated_ops.cpp"),
                         str(ROOT / "csrc/ops/meta_rnn_sequence.cpp"), str(ROOT / "csrc/ops/newton_fixed_points.cpp"),
                         str(ROOT / "csrc/ops/row_adam.cpp"), str(ROOT / "csrc/ops/hidden_map_loss.cpp")],
                extra_include_paths=[str(ROOT / "csrc")], extra_cflags=["-O2"], verbose=False)


def sequence_inputs(T, B, I, D, cell, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    G = reference.gate_count(cell)

    def r(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype)

    return (r(T, B, I), r(B, D, scale=0.5), r(B, G * D, scale=0.3), r(G * D, I, scale=0.5),
            r(G * D, D, scale=1.0 / D ** 0.5), r(G * D, scale=0.1), r(G * D, scale=0.1))


# D = 37: not a multiple of a warp; B * D = 333: two blocks of 256 threads, the last one partial
@pytest.mark.parametrize("shape", [(5, 9, 3, 37), (4, 1, 2, 37), (1, 3, 2, 8)], ids=["B9-D37", "B1", "T1"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cell", ["tanh", "gru"])
def test_meta_rnn_sequence_kernels_match_the_cpu_op(emulated, cell, dtype, shape):
    T, B, I, D = shape
    args = sequence_inputs(T, B, I, D, cell, dtype, seed=hash(shape) % 1000)
    h, ws = emulated.meta_rnn_sequence(*args, cell, True)
    h_cpu, ws_cpu = OPS.meta_rnn_sequence.default(*args, cell, True)
    assert h.shape == h_cpu.shape and ws.shape == ws_cpu.shape == (T, B, 4 * D if cell == "gru" else 0)
    assert max_rel_err(h, h_cpu) <= TOL[dtype] and (cell == "tanh" or max_rel_err(ws, ws_cpu) <= TOL[dtype])
    assert max_rel_err(h, reference.meta_rnn_sequence(*args, cell)) <= TOL[dtype]
    x, h0, _, w_ih, w_hh, _, _ = args
    grad = torch.randn(h.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64).to(dtype)
    got = emulated.meta_rnn_sequence_backward(grad, x, h0, h, ws, w_ih, w_hh, cell, True)
    want = OPS.meta_rnn_sequence_backward.default(grad, x, h0, h_cpu, ws_cpu, w_ih, w_hh, cell, True)
    assert len(got) == len(want) == 7
    for name, a, b in zip(["x", "h0", "cond", "w_ih", "w_hh", "b_ih", "b_hh"], got, want):
        assert a.shape == b.shape, name
        assert max_rel_err(a, b) <= 10 * TOL[dtype], name
    assert emulated.barriers() == 0  # the pointwise kernels have no barrier


@pytest.mark.parametrize("where", ["shared", "global"])
@pytest.mark.parametrize("cell,D", [("tanh", 12), ("tanh", 40), ("gru", 12), ("gru", 40), ("lstm", 12), ("lstm", 40)])
def test_newton_kernel_matches_the_cpu_op(emulated, cell, D, where):
    args = random_system(cell, K=12, D=D, scale=1.2, seed=D)
    G = reference.gate_count(cell)
    # the shared-memory limit decides where the D x D system lives: with room for the vectors
    # only, the kernel takes the [K, D, D] global workspace
    limit = emulated.shared_bytes(D, G, where == "shared", True)
    assert emulated.shared_bytes(D, G, True, True) > emulated.shared_bytes(D, G, False, True)
    z, res, it, conv, J = emulated.newton_fixed_points(*args, cell, 1e-10, 60, True, 0.01, limit)
    assert emulated.barriers() > 100 * len(z)  # every block ran its barriers (hundreds per candidate)
    cpu = OPS.newton_fixed_points.default(*args, cell, 1e-10, 60, True, 0.01)
    z0, x, cond, w_ih, w_hh, b_ih, b_hh = args
    x_proj = x @ w_ih.T + b_ih + cond
    F = reference.cell_step(z, x_proj, w_hh, b_hh, cell) - z
    # what it calls converged is a fixed point; it converges where the CPU does (rounding
    # differences between the factorisations may send a candidate to another fixed point)
    assert torch.equal(conv, F.abs().amax(-1) <= 1e-10) and torch.equal(conv, res <= 1e-10)
    assert int(cpu[3].sum()) > 0 and int(conv.sum()) >= 0.9 * int(cpu[3].sum())
    same = conv & cpu[3] & ((z - cpu[0]).abs().amax(-1) <= 1e-8)
    assert int(same.sum()) >= 0.75 * int((conv & cpu[3]).sum())
    torch.testing.assert_close(J[same], cpu[4][same], rtol=0, atol=1e-10)
    # started at the CPU's fixed points it stays there, with the CPU's Jacobians
    k = cpu[3]
    again = emulated.newton_fixed_points(cpu[0][k], x[k], cond[k], w_ih, w_hh, b_ih, b_hh, cell, 1e-10, 5, True,
                                         0.01, limit)
    torch.testing.assert_close(again[0], cpu[0][k], rtol=0, atol=1e-9)
    torch.testing.assert_close(again[4], cpu[4][k], rtol=0, atol=1e-10)
    assert bool(again[3].all()) and int(again[2].max()) <= 2


def test_newton_kernel_in_float32_and_with_no_candidates(emulated):
    args = tuple(a.float() for a in random_system("gru", K=8, D=12, scale=1.2, seed=3))
    z, res, _, conv, J = emulated.newton_fixed_points(*args, "gru", 1e-4, 60, False, 0.01, 48 * 1024)
    F = reference.cell_step(z, args[1] @ args[3].T + args[5] + args[2], args[4], args[6], "gru") - z
    assert bool(conv.any()) and float(F[conv].abs().max()) <= 1e-4 and J.shape == (8, 0, 0)
    empty = emulated.newton_fixed_points(*(a[:0] if a.dim() == 2 and a.shape[0] == 8 else a for a in args), "gru",
                                         1e-4, 10, True, 0.01, 48 * 1024)
    assert empty[0].shape == (0, 12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_row_adam_kernel_matches_the_cpu_op(emulated, dtype):
    """One thread per element, 333 rows x 7 columns: nine full blocks of 256 threads and a partial one."""
    from test_row_adam import problem

    cpu = problem(500, 7, 333, dtype, seed=2)
    emu = [t.clone() for t in cpu]
    OPS.row_adam_(*cpu, 2e-2, 0.9, 0.999, 1e-8)
    emulated.row_adam_(*emu, 2e-2, 0.9, 0.999, 1e-8)
    for a, b in zip(emu[:3], cpu[:3]):
        torch.testing.assert_close(a, b, rtol=TOL[dtype], atol=TOL[dtype])
    assert not torch.equal(cpu[0], problem(500, 7, 333, dtype, seed=2)[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hidden_map_loss_kernels_match_the_cpu_op(emulated, dtype):
    """One block per row: rows of 5 x 300 residuals (more than a block's 256 threads) and of 5 x 2, maps
    shared by several rows (their grad_table added atomically), rows out of map order."""
    from test_hidden_map_loss import problem

    args = problem(11, 5, 9, [300, 2, 17], dtype, seed=6, shuffle=True)
    loss, residual = emulated.hidden_map_loss(*args)
    loss_cpu, residual_cpu = OPS.hidden_map_loss(*args)
    assert max_rel_err(loss, loss_cpu) <= TOL[dtype] and max_rel_err(residual, residual_cpu) <= TOL[dtype]
    grad = torch.tensor(0.6, dtype=dtype)
    z, table, map_row, width = args[:4]
    got = emulated.hidden_map_loss_backward(grad, z, table, map_row, width, residual, True)
    want = OPS.hidden_map_loss_backward(grad, z, table, map_row, width, residual_cpu, True)
    for a, b in zip(got, want):
        assert max_rel_err(a, b) <= 10 * TOL[dtype]
    assert emulated.barriers() > 0
