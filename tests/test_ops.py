"""The compiled meta_rnn_sequence op against dynamo_ext.reference, gradcheck and opcheck."""
import pytest
import torch

import dynamo_ext  # noqa: F401  (loads the ops)
from dynamo_ext import ops, reference
from dynamo_ext._extension import load_extension

SHAPES = [(1, 1, 1, 1), (7, 3, 2, 5), (12, 16, 4, 32), (5, 33, 3, 17)]  # T, B, I, D


def make_inputs(T, B, I, D, dtype, g, device="cpu", requires_grad=False):
    def r(*shape, scale=1.0):
        t = (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype).to(device)
        return t.requires_grad_(requires_grad)
    k = D ** -0.5
    return (r(T, B, I), r(B, D, scale=0.5), r(B, D, scale=0.3), r(D, I, scale=k), r(D, D, scale=k),
            r(D, scale=0.1), r(D, scale=0.1))


def max_rel_err(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_forward_and_backward_match_reference(shape, dtype, tol, rng):
    inputs = make_inputs(*shape, dtype, rng, requires_grad=True)
    out = ops.meta_rnn_sequence(*inputs, "tanh")
    ref_inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    ref = reference.meta_rnn_sequence(*ref_inputs, "tanh")
    assert out.shape == ref.shape == (shape[0], shape[1], shape[3])
    assert out.dtype == dtype
    assert max_rel_err(out, ref) <= tol
    grad_out = torch.randn(out.shape, generator=rng, dtype=torch.float64).to(dtype)
    grads = torch.autograd.grad(out, inputs, grad_out)
    ref_grads = torch.autograd.grad(ref, ref_inputs, grad_out)
    for name, g, rg in zip(["x", "h0", "cond", "w_ih", "w_hh", "b_ih", "b_hh"], grads, ref_grads):
        assert g.shape == rg.shape, name
        assert max_rel_err(g, rg) <= 10 * tol, name


def test_gradcheck_float64(rng):
    inputs = make_inputs(4, 3, 2, 5, torch.float64, rng, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: ops.meta_rnn_sequence(*a, "tanh"), inputs)


def test_opcheck(rng):
    for dtype in (torch.float32, torch.float64):
        inputs = make_inputs(5, 4, 3, 6, dtype, rng, requires_grad=True)
        torch.library.opcheck(torch.ops.dynamo_ext.meta_rnn_sequence.default, (*inputs, "tanh"))
    x, h0, *_ = make_inputs(5, 4, 3, 6, torch.float64, rng)
    h_all, ws = torch.ops.dynamo_ext.meta_rnn_sequence(*make_inputs(5, 4, 3, 6, torch.float64, rng), "tanh")
    _, _, _, w_ih, w_hh, _, _ = make_inputs(5, 4, 3, 6, torch.float64, rng)
    torch.library.opcheck(torch.ops.dynamo_ext.meta_rnn_sequence_backward.default,
                          (torch.randn_like(h_all), x, h0, h_all, ws, w_ih, w_hh, "tanh"))


def test_state_is_carried_across_steps(rng):
    """Changing x at step 0 must change every later state (the recurrence is real)."""
    inputs = list(make_inputs(6, 2, 3, 4, torch.float64, rng))
    a = ops.meta_rnn_sequence(*inputs, "tanh")
    inputs[0] = inputs[0].clone()
    inputs[0][0] += 1.0
    b = ops.meta_rnn_sequence(*inputs, "tanh")
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
    with pytest.raises(NotImplementedError, match="cell"):
        ops.meta_rnn_sequence(*inputs, "lstm")
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
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_cuda_matches_cpu(dtype, tol, rng):
    cpu = make_inputs(9, 17, 3, 24, dtype, rng, requires_grad=True)
    gpu = [t.detach().cuda().requires_grad_(True) for t in cpu]
    out_cpu = ops.meta_rnn_sequence(*cpu, "tanh")
    out_gpu = ops.meta_rnn_sequence(*gpu, "tanh")
    assert max_rel_err(out_gpu.cpu(), out_cpu) <= tol
    grad = torch.randn(out_cpu.shape, generator=rng, dtype=torch.float64).to(dtype)
    for a, b in zip(torch.autograd.grad(out_gpu, gpu, grad.cuda()), torch.autograd.grad(out_cpu, cpu, grad)):
        assert max_rel_err(a.cpu(), b) <= 10 * tol
