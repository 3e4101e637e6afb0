"""The compiled hidden_map_loss op (the hidden-state term with every row's map gathered from one table)
against dynamo_ext.reference: values, gradients, gradcheck, opcheck, any thread count, bad input named;
the CUDA kernel where a GPU is present."""
import pytest
import torch

from dynamo_ext import ops, reference

OPS = torch.ops.dynamo_ext


def problem(B, T, D, widths, dtype, seed, shuffle=False, device="cpu"):
    """Rows drawn over maps of the given widths (laid out in the table with gaps and a spare row), targets
    at scattered offsets of a longer buffer; fresh random values."""
    g = torch.Generator().manual_seed(seed)
    widths = torch.as_tensor(widths)
    model = torch.sort(torch.randint(len(widths), (B,), generator=g)).values
    if shuffle:
        model = model[torch.randperm(B, generator=g)]
    gaps = torch.randint(0, 3, (len(widths),), generator=g)
    starts = torch.cumsum(widths + gaps, 0) - widths
    table = torch.randn(int(starts[-1] + widths[-1]) + 1, D + 1, generator=g, dtype=torch.float64).to(dtype)
    w = widths[model]
    sizes = T * w + torch.randint(0, 4, (B,), generator=g)
    target_start = torch.cumsum(sizes, 0) - sizes
    targets = torch.randn(int(sizes.sum()), generator=g, dtype=torch.float64).to(dtype)
    z = torch.randn(B, T, D, generator=g, dtype=torch.float64).to(dtype)
    return [t.to(device) for t in (z, table, starts[model], w, targets, target_start)]


CASES = {"mixed": (23, 7, 19, [3, 17, 33, 1, 16], False), "shuffled": (30, 5, 64, [8, 40, 64], True),
         "T1": (9, 1, 5, [2, 7], False), "one_map": (6, 4, 3, [20], False)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_op_and_its_gradients_match_the_reference(case, dtype):
    B, T, D, widths, shuffle = CASES[case]
    z, table, map_row, width, targets, target_start = problem(B, T, D, widths, dtype, seed=B + D, shuffle=shuffle)
    grads = []
    for fn in (ops.hidden_map_loss, reference.hidden_map_loss):
        zz, tt = z.clone().requires_grad_(True), table.clone().requires_grad_(True)
        loss = fn(zz, tt, map_row, width, targets, target_start)
        (loss * 0.7).backward()
        grads.append((loss.detach(), zz.grad, tt.grad))
    tol = {torch.float32: 2e-5, torch.float64: 1e-12}[dtype]
    assert float(grads[1][0]) > 1.0
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, rtol=tol, atol=tol * float(want.abs().max()))
    used = torch.zeros(table.shape[0], dtype=torch.bool)
    for r, d in zip(map_row.tolist(), width.tolist()):
        used[r:r + d] = True
    assert bool((grads[0][2][~used] == 0).all()) and bool((grads[0][2][used] != 0).any())


def test_index_tensors_may_be_strided():
    """map_row, width and target_start as strided views (every other entry of a longer tensor): the same
    loss and gradients as contiguous copies."""
    z, table, map_row, width, targets, target_start = problem(10, 4, 7, [3, 20, 9], torch.float64, seed=9)
    strided = [torch.stack([t, torch.full_like(t, -1)], 1)[:, 0] for t in (map_row, width, target_start)]
    assert not any(t.is_contiguous() for t in strided)
    results = []
    for idx in ((map_row, width, target_start), strided):
        zz, tt = z.clone().requires_grad_(True), table.clone().requires_grad_(True)
        loss = ops.hidden_map_loss(zz, tt, idx[0], idx[1], targets, idx[2])
        loss.backward()
        results.append((loss.detach(), zz.grad, tt.grad))
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_gradcheck():
    z, table, map_row, width, targets, target_start = problem(7, 3, 5, [2, 17, 4], torch.float64, seed=2)
    z.requires_grad_(True)
    table.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: ops.hidden_map_loss(a, b, map_row, width, targets, target_start),
                                    (z, table))


def test_opcheck():
    z, table, map_row, width, targets, target_start = problem(8, 3, 6, [5, 18], torch.float64, seed=4)
    torch.library.opcheck(OPS.hidden_map_loss.default,
                          (z.requires_grad_(True), table.requires_grad_(True), map_row, width, targets, target_start))
    loss, residual = OPS.hidden_map_loss(z.detach(), table.detach(), map_row, width, targets, target_start)
    torch.library.opcheck(OPS.hidden_map_loss_backward.default,
                          (torch.tensor(1.5, dtype=torch.float64), z.detach(), table.detach(), map_row, width,
                           residual, True))


def test_the_same_on_one_thread_and_on_several():
    """The loss is summed in a fixed order: bitwise the same whatever the thread count."""
    args = problem(64, 9, 33, [8, 100, 31, 256, 17], torch.float32, seed=7)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [t.clone() for t in OPS.hidden_map_loss(*args)]
        torch.set_num_threads(max(threads, 2))
        several = OPS.hidden_map_loss(*args)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(one, several))


def test_bad_input_is_named():
    z, table, map_row, width, targets, target_start = problem(6, 4, 3, [5, 2], torch.float32, seed=1)
    K = table.shape[0]
    cases = [
        ((z[0], table, map_row, width, targets, target_start), "'z' must be \\[B, T, D\\]"),
        ((z, table[:, :3], map_row, width, targets, target_start), "'table' must be \\[K, 4\\]"),
        ((z, table.double(), map_row, width, targets, target_start), "'table' must have dtype Float"),
        ((z, table, map_row.int(), width, targets, target_start), "'map_row' must be int64 \\[6\\]"),
        ((z, table, map_row, width[:3], targets, target_start), "'width' must be int64 \\[6\\]"),
        ((z, table, map_row, width, targets[:, None], target_start), "'targets' must be 1-D"),
        ((z, table, map_row, width * 0, targets, target_start), "'width' must be >= 1"),
        ((z, table, map_row + K, width, targets, target_start), "inside the table's"),
        ((z, table, torch.zeros_like(map_row), width, targets, target_start), "must share one width"),
        ((z, table, map_row, width, targets, target_start + targets.numel()), "'target_start' must keep row"),
    ]
    for args, match in cases:
        with pytest.raises(RuntimeError, match=match):
            ops.hidden_map_loss(*args)
    overlap = map_row.clone()
    overlap[width == 2] = int(map_row[width == 5][0]) + 1
    with pytest.raises(RuntimeError, match="overlap"):
        ops.hidden_map_loss(z, table, overlap, width, targets, target_start)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_the_cpu_op(dtype):
    cpu = problem(40, 9, 64, [8, 100, 31, 256, 17], dtype, seed=5, shuffle=True)
    results = []
    for args in (cpu, [t.cuda() for t in cpu]):
        z, table = args[0].clone().requires_grad_(True), args[1].clone().requires_grad_(True)
        loss = ops.hidden_map_loss(z, table, *args[2:])
        loss.backward()
        results.append([loss.detach().cpu(), z.grad.cpu(), table.grad.cpu()])
    tol = {torch.float32: 1e-4, torch.float64: 1e-11}[dtype]
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want, rtol=tol, atol=tol * float(want.abs().max()))
