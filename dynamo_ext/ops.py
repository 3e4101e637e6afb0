"""Python entry points of the compiled ops (torch.ops.dynamo_ext.*).

Each op is defined in C++ (csrc/ops/registration.cpp); this module adds its
fake (meta) implementation for torch.compile / FakeTensor tracing, its autograd
formula, and a documented wrapper. Plain-PyTorch equivalents live in
dynamo_ext.reference.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ._extension import load_extension
from .reference import MIN_PROGRESS

load_extension()

_OPS = torch.ops.dynamo_ext


@torch.library.register_fake("dynamo_ext::meta_rnn_sequence")
def _meta_rnn_sequence_fake(x, h0, cond, w_ih, w_hh, b_ih, b_hh, cell, save_workspace=True):
    torch._check(x.dim() == 3, lambda: f"x must be [T, B, I], got {tuple(x.shape)}")
    T, B, _ = x.shape
    D = h0.shape[1]
    return x.new_empty((T, B, D)), x.new_empty((T, B, 4 * D if cell == "gru" and save_workspace else 0))


@torch.library.register_fake("dynamo_ext::meta_rnn_sequence_backward")
def _meta_rnn_sequence_backward_fake(grad_h, x, h0, h_all, workspace, w_ih, w_hh, cell, need_grad_x=True):
    GD = w_hh.shape[0]
    return (
        torch.empty_like(x) if need_grad_x else x.new_empty((0,)),
        torch.empty_like(h0),
        h0.new_empty((x.shape[1], GD)),
        torch.empty_like(w_ih),
        torch.empty_like(w_hh),
        h0.new_empty((GD,)),
        h0.new_empty((GD,)),
    )


def _setup_context(ctx, inputs, output):
    x, h0, _cond, w_ih, w_hh, _b_ih, _b_hh, cell = inputs[:8]
    h_all, workspace = output
    ctx.save_for_backward(x, h0, h_all, workspace, w_ih, w_hh)
    ctx.cell = cell
    # the workspace is saved state, not a result: no gradient flows into it, and autograd must not
    # build one of zeros for it (for the GRU at L that was a 420 MB fill, 13% of forward+backward)
    ctx.mark_non_differentiable(workspace)
    ctx.set_materialize_grads(False)


def _backward(ctx, grad_h_all, _grad_workspace):
    x, h0, h_all, workspace, w_ih, w_hh = ctx.saved_tensors
    if grad_h_all is None:
        grad_h_all = torch.zeros_like(h_all)
    # x is data in a fit: its gradient (one GEMM per step) is skipped unless autograd needs it
    need_grad_x = ctx.needs_input_grad[0]
    grad_x, *grads = _OPS.meta_rnn_sequence_backward.default(grad_h_all, x, h0, h_all, workspace, w_ih, w_hh,
                                                             ctx.cell, need_grad_x)
    return (grad_x if need_grad_x else None, *grads, None, None)


torch.library.register_autograd("dynamo_ext::meta_rnn_sequence", _backward, setup_context=_setup_context)


def meta_rnn_sequence(
    x: Tensor,
    h0: Tensor,
    cond: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    cell: str = "tanh",
) -> Tensor:
    """Run the embedding-conditioned meta-RNN over a whole sequence in one call.

    Computes, for t = 1..T (docs/method.md, "The meta-model"; arXiv:2302.14078, the
    meta-model's recurrence), with cond = U theta_n the conditioning bias of
    each row's model and gi = W_ih x_t + b_ih + cond, gh = W_hh z_{t-1} + b_hh:
        tanh cell: z_t = tanh(gi + gh)
        GRU cell (PyTorch gate order r, u, n):
            r = sigmoid(gi_r + gh_r), u = sigmoid(gi_u + gh_u),
            n = tanh(gi_n + r * gh_n), z_t = (1 - u) * n + u * z_{t-1}
    Forward and backward each run in one call (on the CPU one row block per
    thread, each running the whole sequence; per step an input-side GEMM, one
    recurrent GEMM and one fused elementwise pass);
    the backward runs through ``torch.library.register_autograd``. Under
    ``torch.no_grad()`` (or with no input requiring grad) the GRU's gates are
    not stored.

    Args:
        x: [T, B, I] float32 or float64, time-major inputs.
        h0: [B, D] initial meta state z_0.
        cond: [B, G*D] per-row conditioning bias (G = 1 for tanh, 3 for GRU).
        w_ih: [G*D, I] input weights; w_hh: [G*D, D] recurrent weights.
        b_ih, b_hh: [G*D] biases.
        cell: "tanh" or "gru".

    Returns:
        [T, B, D] meta states z_1..z_T, dtype and device of x.

    Raises:
        RuntimeError: on shapes, dtypes or devices that do not match (the
            message names the argument, the expected and the received value).
        NotImplementedError: for a cell other than "tanh" and "gru".
    """
    tensors = (x, h0, cond, w_ih, w_hh, b_ih, b_hh)
    # the GRU gates are kept for the backward only when a backward can follow
    save = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    h_all, _ = _OPS.meta_rnn_sequence.default(*tensors, cell, save)
    return h_all


@torch.library.register_fake("dynamo_ext::newton_fixed_points")
def _newton_fixed_points_fake(z0, x, cond, w_ih, w_hh, b_ih, b_hh, cell, tol, max_iter, return_jacobian,
                              min_progress):
    K, D = z0.shape
    J = D if return_jacobian else 0
    return (torch.empty_like(z0), z0.new_empty((K,)), z0.new_empty((K,), dtype=torch.long),
            z0.new_empty((K,), dtype=torch.bool), z0.new_empty((K, J, J)))


def newton_fixed_points(
    z0: Tensor,
    x: Tensor,
    cond: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    cell: str = "tanh",
    tol: float = 1e-10,
    max_iter: int = 100,
    return_jacobian: bool = True,
    min_progress: float = MIN_PROGRESS,
):
    """Solve z = cell(z, x_k; cond_k) for a batch of K candidates by Newton's method.

    For each candidate, F(z) = cell(z) - z with the analytic Jacobian
    J = dcell/dz - I: a Newton step (LU with partial pivoting) where the
    system is well conditioned and the step, or its half, quarter or eighth
    (backtracking), lowers ||F||_2, else
    Levenberg-Marquardt steps (J^T J + mu I) dz = -J^T F (Cholesky) with mu
    adapted per candidate (docs/method.md, "Fixed points"). A candidate that no step can
    improve, or whose ||F||_2 fell by less than the fraction ``min_progress``
    over its last 5 iterations, stops early: it is creeping towards a slow
    point (a local minimum of q = ||F||^2 / 2 above zero), not converging to a
    fixed point, where Newton's convergence is quadratic. Cells as in ``meta_rnn_sequence`` (the fixed
    points of the meta-model at an embedding, Cotler et al. arXiv:2302.14078;
    fixed-point analysis after Sussillo & Barak 2013), and the LSTM of the
    base models (PyTorch gate order i, f, g, o; state z = [h; c]:
    c' = f c + i g, h' = o tanh(c'); ``reference.lstm_cell``).

    Args:
        z0: [K, D] float32/float64 initial states (D = H, or 2H for "lstm").
        x: [K, I] constant inputs; cond: [K, G*H] conditioning biases.
        w_ih, w_hh, b_ih, b_hh: [G*H, I], [G*H, H], [G*H], [G*H] with G = 1
            (tanh), 3 (GRU), 4 (LSTM); cell: "tanh", "gru" or "lstm".
        tol: convergence threshold on ||F||_inf; max_iter: iteration cap.
        return_jacobian: also return dcell/dz at the solutions.
        min_progress: the stall test's fraction in [0, 1); 0 runs every
            candidate that can still lower ||F|| to ``max_iter``.

    On CPU the candidates are spread over threads; on CUDA each is one
    thread block.

    Returns:
        (z [K, D], residual [K] = ||F(z)||_inf, iterations [K] int64,
        converged [K] bool, jacobian [K, D, D] = dcell/dz or [K, 0, 0]).

    Raises:
        RuntimeError: shapes, dtypes or devices that do not match, tol <= 0,
            max_iter < 1, min_progress outside [0, 1) (the message names the
            argument).
        NotImplementedError: a cell other than "tanh", "gru" and "lstm".
    """
    return _OPS.newton_fixed_points.default(z0, x, cond, w_ih, w_hh, b_ih, b_hh, cell, float(tol), int(max_iter),
                                            bool(return_jacobian), float(min_progress))


@torch.library.register_fake("dynamo_ext::row_adam_")
def _row_adam_fake(param, exp_avg, exp_avg_sq, grad, rows, steps, lr, beta1, beta2, eps):
    torch._check(param.dim() == 2, lambda: f"param must be [P, C], got {tuple(param.shape)}")


def row_adam_(param: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, grad: Tensor, rows: Tensor, steps: Tensor,
              lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
    """Adam on the rows ``rows`` of a parameter table, in place; every other row untouched.

    torch.optim.Adam's update (Kingma & Ba 2015, Algorithm 1; no weight decay) with one step count
    per row: for row ``rows[i]``, gradient ``grad[i]`` and step count ``steps[i]``,
        m <- m + (1 - beta1) (g - m),   v <- beta2 v + (1 - beta2) g^2,
        p <- p - lr / (1 - beta1^steps[i]) * m / (sqrt(v) / sqrt(1 - beta2^steps[i]) + eps).
    What a fit uses for the base models' maps A_n, c_n (``meta.packed.PackedMaps``): the rows of
    the models in a minibatch are updated in one call, whatever the number of models.

    Args:
        param, exp_avg, exp_avg_sq: [P, C] float32/float64, contiguous, one device (updated in place).
        grad: [R, C] gradients of the chosen rows (same dtype and device).
        rows: [R] int64, distinct, in [0, P); steps: [R] int64 >= 1, each row's step count
            including this update.
        lr: learning rate >= 0; beta1, beta2 in [0, 1); eps > 0.

    On CPU the rows are spread over threads; on CUDA one thread per element.

    Raises:
        RuntimeError: shapes, dtypes or devices that do not match, values out of range (the
            message names the argument; on CUDA, rows and steps are not range-checked).
    """
    _OPS.row_adam_.default(param, exp_avg, exp_avg_sq, grad, rows, steps, float(lr), float(beta1), float(beta2),
                           float(eps))


@torch.library.register_fake("dynamo_ext::hidden_map_loss")
def _hidden_map_loss_fake(z, table, map_row, width, targets, target_start):
    torch._check(z.dim() == 3, lambda: f"z must be [B, T, D], got {tuple(z.shape)}")
    return z.new_empty(()), z.new_empty((torch.library.get_ctx().new_dynamic_size(),))


@torch.library.register_fake("dynamo_ext::hidden_map_loss_backward")
def _hidden_map_loss_backward_fake(grad, z, table, map_row, width, residual, need_grad_z):
    return torch.empty_like(z) if need_grad_z else z.new_empty((0,)), torch.empty_like(table)


def _hidden_map_setup(ctx, inputs, output):
    z, table, map_row, width = inputs[:4]
    ctx.save_for_backward(z, table, map_row, width, output[1])
    ctx.mark_non_differentiable(output[1])
    ctx.set_materialize_grads(False)


def _hidden_map_backward(ctx, grad_loss, _grad_residual):
    z, table, map_row, width, residual = ctx.saved_tensors
    if grad_loss is None:
        return None, None, None, None, None, None
    grad_z, grad_table = _OPS.hidden_map_loss_backward.default(grad_loss, z, table, map_row, width, residual,
                                                               ctx.needs_input_grad[0])
    return grad_z if ctx.needs_input_grad[0] else None, grad_table, None, None, None, None


torch.library.register_autograd("dynamo_ext::hidden_map_loss", _hidden_map_backward, setup_context=_hidden_map_setup)


def hidden_map_loss(z: Tensor, table: Tensor, map_row: Tensor, width: Tensor, targets: Tensor,
                    target_start: Tensor) -> Tensor:
    """The hidden-state term of the DYNAMO loss, every row's map read from one table, in one op.

    sum_b sum_{t,i} ((A_b z_b[t] + c_b)_i - y_b[t, i])^2 / d_b (docs/method.md, "The loss";
    arXiv:2302.14078, the loss on the meta-model's predicted hidden states), where row b's map
    A_b [d_b, D], c_b [d_b] is rows map_row[b] .. map_row[b] + d_b - 1 of ``table`` (its first D
    columns, and its last) and y_b = targets[target_start[b] + t d_b + i]. Forward and backward are
    one call each whatever the number of distinct maps (on the CPU register-blocked panels spread over
    threads; on CUDA one block per row); what ``meta.hidden_loss.gathered_hidden_loss`` runs.

    Args:
        z: [B, T, D] float32/float64 meta states.
        table: [K, D + 1] maps (A's rows with c beside them), same dtype and device.
        map_row, width: [B] int64: each row's first table row and map height d_b >= 1. Rows with
            equal map_row share one map (and width); the maps of different map_row do not overlap.
        targets: [L] standardised base hidden states (1-D, contiguous); target_start: [B] int64.

    Returns:
        0-dim tensor, differentiable in z and table (not in targets).

    Raises:
        RuntimeError: shapes, dtypes or devices that do not match, maps outside the table or
            overlapping, targets out of range (the message names the argument; on CUDA the index
            values are not checked).
    """
    return _OPS.hidden_map_loss.default(z.contiguous(), table.contiguous(), map_row, width, targets,
                                        target_start)[0]
