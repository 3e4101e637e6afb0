"""The compiled meta_rnn_sequence op against dynamo_ext.reference, gradcheck and opcheck."""
import pytest
import torch

import dynamo_ext  # noqa: F401  (loads the ops)
from dynamo_ext import ops, reference
from dynamo_ext._extension import load_extension

SHAPES = [(1, 1, 1, 1), (7, 3, 2, 5), (12, 16, 4, 32), (5, 33, 3, 17)]  # T, B, I, D


CELLS = ["tanh", "gru"]


def make_inputs(T, B, I, D, dtype, g, device="cpu", requires_grad=False, cell="tanh"):
    def r(*shape, scale=1.0):
        t = (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype).to(device)
        return t.requires_grad_(requires_grad)
    k = D ** -0.5
    GD = reference.gate_count(cell) * D
    return (r(T, B, I), r(B, D, scale=0.5), r(B, GD, scale=0.3), r(GD, I, scale=k), r(GD, D, scale=k),
            r(GD, scale=0.1), r(GD, scale=0.1))


def max_rel_err(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_forward_and_backward_match_reference(cell, shape, dtype, tol, rng):
    inputs = make_inputs(*shape, dtype, rng, requires_grad=True, cell=cell)
    out = ops.meta_rnn_sequence(*inputs, cell)
    ref_inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    ref = reference.meta_rnn_sequence(*ref_inputs, cell)
    assert out.shape == ref.shape == (shape[0], shape[1], shape[3])
    assert out.dtype == dtype
    assert max_rel_err(out, ref) <= tol
    grad_out = torch.randn(out.shape, generator=rng, dtype=torch.float64).to(dtype)
    grads = torch.autograd.grad(out, inputs, grad_out)
    ref_grads = torch.autograd.grad(ref, ref_inputs, grad_out)
    for name, g, rg in zip(["x", "h0", "cond", "w_ih", "w_hh", "b_ih", "b_hh"], grads, ref_grads):
        assert g.shape == rg.shape, name
        assert max_rel_err(g, rg) <= 10 * tol, name


@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_float64(cell, rng):
    inputs = make_inputs(4, 3, 2, 5, torch.float64, rng, requires_grad=True, cell=cell)
    assert torch.autograd.gradcheck(lambda *a: ops.meta_rnn_sequence(*a, cell), inputs)


@pytest.mark.parametrize("cell", CELLS)
def test_opcheck(cell, rng):
    for dtype in (torch.float32, torch.float64):
        inputs = make_inputs(5, 4, 3, 6, dtype, rng, requires_grad=True, cell=cell)
        torch.library.opcheck(torch.ops.dynamo_ext.meta_rnn_sequence.default, (*inputs, cell))
    x, h0, _, w_ih, w_hh, _, _ = inputs = make_inputs(5, 4, 3, 6, torch.float64, rng, cell=cell)
    h_all, ws = torch.ops.dynamo_ext.meta_rnn_sequence(*inputs, cell)
    torch.library.opcheck(torch.ops.dynamo_ext.meta_rnn_sequence_backward.default,
                          (torch.randn_like(h_all), x, h0, h_all, ws, w_ih, w_hh, cell))


@pytest.mark.parametrize("cell", CELLS)
def test_backward_skips_the_input_gradient_when_x_is_data(cell, rng):
    x, *rest = make_inputs(6, 33, 3, 8, torch.float64, rng, requires_grad=True, cell=cell)
    x = x.detach()  # as in a fit: the inputs are data
    out = ops.meta_rnn_sequence(x, *rest, cell)
    ref = reference.meta_rnn_sequence(x, *rest, cell)
    grad_out = torch.randn(out.shape, generator=rng, dtype=torch.float64)
    for g, rg in zip(torch.autograd.grad(out, rest, grad_out), torch.autograd.grad(ref, rest, grad_out)):
        torch.testing.assert_close(g, rg, rtol=1e-10, atol=1e-12)
    h0, _, w_ih, w_hh = rest[0], rest[1], rest[2], rest[3]
    h_all, ws = torch.ops.dynamo_ext.meta_rnn_sequence(x, *[t.detach() for t in rest], cell)
    args = (grad_out, x, h0.detach(), h_all, ws, w_ih.detach(), w_hh.detach(), cell)
    skipped = torch.ops.dynamo_ext.meta_rnn_sequence_backward(*args, False)
    full = torch.ops.dynamo_ext.meta_rnn_sequence_backward(*args, True)
    assert skipped[0].numel() == 0 and full[0].shape == x.shape
    for a, b in zip(skipped[1:], full[1:]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.library.opcheck(torch.ops.dynamo_ext.meta_rnn_sequence_backward.default, (*args, False))


def test_workspace_takes_no_gradient(rng):
    # the GRU's saved gates are not a result: autograd must not build (and fill) a zero gradient
    # of their size for the backward
    inputs = make_inputs(4, 3, 2, 5, torch.float64, rng, requires_grad=True, cell="gru")
    h_all, ws = torch.ops.dynamo_ext.meta_rnn_sequence(*inputs, "gru")
    assert h_all.requires_grad and not ws.requires_grad and ws.shape == (4, 3, 20)
    grads = torch.autograd.grad(h_all.sum(), inputs)
    ref = torch.autograd.grad(reference.meta_rnn_sequence(*inputs, "gru").sum(), inputs)
    for g, rg in zip(grads, ref):
        torch.testing.assert_close(g, rg, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_inference_skips_the_workspace(cell, rng):
    inputs = make_inputs(5, 3, 2, 4, torch.float64, rng, cell=cell)
    h_saved, ws_saved = torch.ops.dynamo_ext.meta_rnn_sequence(*inputs, cell, True)
    h_free, ws_free = torch.ops.dynamo_ext.meta_rnn_sequence(*inputs, cell, False)
    torch.testing.assert_close(h_free, h_saved, rtol=0, atol=0)
    assert ws_free.numel() == 0
    assert ws_saved.shape == ((5, 3, 16) if cell == "gru" else (5, 3, 0))
    torch.library.opcheck(torch.ops.dynamo_ext.meta_rnn_sequence.default, (*inputs, cell, False))
    if cell == "gru":  # a backward without the saved gates is refused, not wrong
        x, h0, _, w_ih, w_hh, _, _ = inputs
        with pytest.raises(RuntimeError, match="'workspace' must have size 16"):
            torch.ops.dynamo_ext.meta_rnn_sequence_backward(torch.ones_like(h_free), x, h0, h_free, ws_free, w_ih,
                                                            w_hh, cell)


@pytest.mark.parametrize("cell", CELLS)
def test_torch_compile_of_a_model_calling_the_op(cell, rng):
    inputs = make_inputs(6, 3, 2, 4, torch.float32, rng, requires_grad=True, cell=cell)

    def model(x, h0, cond, w_ih, w_hh, b_ih, b_hh):
        return ops.meta_rnn_sequence(x, h0, cond, w_ih, w_hh, b_ih, b_hh, cell).square().mean()

    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    loss = compiled(*inputs)
    grads = torch.autograd.grad(loss, inputs)
    ref_inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    ref_loss = reference.meta_rnn_sequence(*ref_inputs, cell).square().mean()
    torch.testing.assert_close(loss, ref_loss)
    for g, rg in zip(grads, torch.autograd.grad(ref_loss, ref_inputs)):
        torch.testing.assert_close(g, rg, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_state_is_carried_across_steps(cell, rng):
    """Changing x at step 0 must change every later state (the recurrence is real)."""
    inputs = list(make_inputs(6, 2, 3, 4, torch.float64, rng, cell=cell))
    a = ops.meta_rnn_sequence(*inputs, cell)
    inputs[0] = inputs[0].clone()
    inputs[0][0] += 1.0
    b = ops.meta_rnn_sequence(*inputs, cell)
    assert bool(((a - b).abs().amax(dim=(1, 2)) > 1e-6).all())


@pytest.mark.parametrize("index,bad,match", [
    (1, lambda t: t[:, :-1], "h0"),
    (2, lambda t: t[:-1], "cond"),
    (4, lambda t: t[:-1], "w_hh"),
    (3, lambda t: t.float(), "w_ih.*dtype"),
    (5, lambda t: t[:-1], "b_ih"),
])
def test_bad_input_names_the_argument(index, bad, match, rng):
    inputs = list(make_inputs(3, 2, 2, 4, torch.float64, rng))
    inputs[index] = bad(inputs[index])
    with pytest.raises(RuntimeError, match=match):
        ops.meta_rnn_sequence(*inputs, "tanh")


def test_bad_cell_and_rank(rng):
    inputs = list(make_inputs(3, 2, 2, 4, torch.float64, rng))
    with pytest.raises(NotImplementedError, match="'cell' must be 'tanh' or 'gru'"):
        ops.meta_rnn_sequence(*inputs, "lstm")
    with pytest.raises(RuntimeError, match="'cond' must have size 12"):
        ops.meta_rnn_sequence(*inputs, "gru")  # tanh-sized weights for a GRU
    inputs[0] = inputs[0][0]
    with pytest.raises(RuntimeError, match=r"'x' must be \[T, B, I\]"):
        ops.meta_rnn_sequence(*inputs, "tanh")


def test_integer_inputs_are_rejected(rng):
    inputs = list(make_inputs(3, 2, 2, 4, torch.float64, rng))
    inputs = [t.long() for t in inputs]
    with pytest.raises(RuntimeError, match="float32 or float64"):
        ops.meta_rnn_sequence(*inputs, "tanh")


def test_import_error_names_rebuild_command(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    with pytest.raises(ImportError, match="pip install --no-build-isolation"):
        load_extension()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_cuda_matches_cpu(cell, dtype, tol, rng):
    cpu = make_inputs(9, 17, 3, 24, dtype, rng, requires_grad=True, cell=cell)
    gpu = [t.detach().cuda().requires_grad_(True) for t in cpu]
    out_cpu = ops.meta_rnn_sequence(*cpu, cell)
    out_gpu = ops.meta_rnn_sequence(*gpu, cell)
    assert max_rel_err(out_gpu.cpu(), out_cpu) <= tol
    grad = torch.randn(out_cpu.shape, generator=rng, dtype=torch.float64).to(dtype)
    for a, b in zip(torch.autograd.grad(out_gpu, gpu, grad.cuda()), torch.autograd.grad(out_cpu, cpu, grad)):
        assert max_rel_err(a.cpu(), b) <= 10 * tol
