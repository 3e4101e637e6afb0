"""The compiled row_adam_ op (Adam on chosen rows of a table) against dynamo_ext.reference and
torch.optim.Adam, opcheck, bad input named; the CUDA kernel where a GPU is present."""
import pytest
import torch

from dynamo_ext import ops, reference


def problem(P, C, R, dtype, seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    param = torch.randn(P, C, generator=g, dtype=torch.float64).to(dtype)
    m = torch.randn(P, C, generator=g, dtype=torch.float64).to(dtype) * 0.1
    v = torch.rand(P, C, generator=g, dtype=torch.float64).to(dtype) * 0.01
    rows = torch.randperm(P, generator=g)[:R]
    grad = torch.randn(R, C, generator=g, dtype=torch.float64).to(dtype)
    steps = torch.randint(1, 50, (R,), generator=g)
    return [t.to(device) for t in (param, m, v, grad, rows, steps)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(50, 7, 13), (300, 65, 120), (4, 1, 4), (5, 3, 0)],
                         ids=["small", "wide", "C1", "R0"])
def test_op_matches_the_reference(dtype, shape):
    P, C, R = shape
    param, m, v, grad, rows, steps = problem(P, C, R, dtype, seed=P + C + R)
    want = [t.clone() for t in (param, m, v)]
    reference.row_adam_(*want, grad, rows, steps, 3e-2, 0.8, 0.99, 1e-6)
    ops.row_adam_(param, m, v, grad, rows, steps, 3e-2, 0.8, 0.99, 1e-6)
    tol = {torch.float32: 1e-5, torch.float64: 1e-12}[dtype]
    for got, ref in zip((param, m, v), want):
        torch.testing.assert_close(got, ref, rtol=tol, atol=tol)
    untouched = torch.ones(P, dtype=torch.bool)
    untouched[rows] = False
    fresh = problem(P, C, R, dtype, seed=P + C + R)[0]
    assert torch.equal(param[untouched], fresh[untouched])


def test_op_equals_torch_adam_with_per_row_step_counts():
    """Two rows updated on different steps, as two torch.optim.Adam parameters that get a gradient only
    when drawn: the same values (float64)."""
    g = torch.Generator().manual_seed(0)
    table = torch.randn(2, 4, generator=g, dtype=torch.float64)
    rows_as_params = [torch.nn.Parameter(table[i].clone()) for i in range(2)]
    adam = torch.optim.Adam(rows_as_params, lr=0.05)
    m, v, steps = torch.zeros_like(table), torch.zeros_like(table), torch.zeros(2, dtype=torch.long)
    for drawn in ([0], [0, 1], [1], [0, 1], [0]):
        grads = torch.randn(len(drawn), 4, generator=g, dtype=torch.float64)
        adam.zero_grad(set_to_none=True)
        for i, row in enumerate(drawn):
            rows_as_params[row].grad = grads[i].clone()
        adam.step()
        rows = torch.tensor(drawn)
        steps[rows] += 1
        ops.row_adam_(table, m, v, grads, rows, steps[rows], 0.05)
    for i in range(2):
        torch.testing.assert_close(table[i], rows_as_params[i].detach(), rtol=1e-12, atol=1e-14)


def test_opcheck():
    args = (*problem(20, 6, 9, torch.float64, 3), 0.01, 0.9, 0.999, 1e-8)
    torch.library.opcheck(torch.ops.dynamo_ext.row_adam_.default, args)


def test_bad_input_is_named():
    param, m, v, grad, rows, steps = problem(10, 4, 3, torch.float32, 1)
    cases = [
        ((param, m[:5], v, grad, rows, steps), "'exp_avg' must have shape"),
        ((param, m, v.double(), grad, rows, steps), "'exp_avg_sq' must have dtype"),
        ((param, m, v, grad[:, :2], rows, steps), "'grad' must have shape \\[3, 4\\]"),
        ((param, m, v, grad, rows.int(), steps), "'rows' must be int64"),
        ((param, m, v, grad, rows, steps[:2]), "'steps' must be int64 \\[3\\]"),
        ((param, m, v, grad, torch.tensor([0, 10, 2]), steps), "'rows' must lie in \\[0, 10\\), got 10"),
        ((param, m, v, grad, rows, torch.tensor([1, 0, 2])), "'steps' must be >= 1, got 0"),
        ((param.int(), m, v, grad, rows, steps), "'param' must be float32 or float64"),
    ]
    for args, match in cases:
        with pytest.raises(RuntimeError, match=match):
            ops.row_adam_(*args, 0.01)
    with pytest.raises(RuntimeError, match="'eps' must be > 0"):
        ops.row_adam_(param, m, v, grad, rows, steps, 0.01, eps=0.0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_the_cpu_op(dtype):
    cpu = problem(700, 65, 333, dtype, seed=5)
    gpu = [t.cuda() for t in cpu]
    ops.row_adam_(*cpu, 1e-2)
    ops.row_adam_(*gpu, 1e-2)
    tol = {torch.float32: 1e-5, torch.float64: 1e-12}[dtype]
    for a, b in zip(gpu[:3], cpu[:3]):
        torch.testing.assert_close(a.cpu(), b, rtol=tol, atol=tol)
