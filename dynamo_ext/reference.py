"""Plain-PyTorch reference of every compiled op: the numerical ground truth.

Each function here computes exactly what the op of the same name in
dynamo_ext.ops computes, with eager PyTorch ops and autograd, and no compiled
code. Tests compare the ops against these on fresh random inputs, and the
meta-model's ``backend="reference"`` runs through them (it is also the only
implementation of the GRU cell until the fused GRU kernel lands).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

CELLS = ("tanh", "gru")  # the meta-model's cells (meta_rnn_sequence)
FIXED_POINT_CELLS = ("tanh", "gru", "lstm")  # every base model's cell (newton_fixed_points)


def gate_count(cell: str) -> int:
    """Number of gate blocks G in the weights of a cell: 1 for tanh, 3 for GRU, 4 for LSTM."""
    counts = {"tanh": 1, "gru": 3, "lstm": 4}
    if cell not in counts:
        raise ValueError(f"argument 'cell' must be one of {FIXED_POINT_CELLS}, got {cell!r}")
    return counts[cell]


def state_size(cell: str, hidden_size: int) -> int:
    """State size D of a cell with ``hidden_size`` units: H, or 2H for the LSTM ([h; c])."""
    return 2 * hidden_size if gate_count(cell) == 4 else hidden_size


def tanh_cell(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor, h_extra: Optional[Tensor] = None) -> Tensor:
    """One tanh-cell step: tanh(x_proj + W_h h + b_hh) (+ ``h_extra``, a per-row term of the
    recurrent side: the low-rank recurrence's P (s * Q^T h), see ``low_rank_term``).

    x_proj already holds W_x x_t + b_ih + U theta (docs/method.md, "The meta-model").
    """
    gh = h @ w_hh.T + b_hh
    return torch.tanh(x_proj + (gh if h_extra is None else gh + h_extra))


def low_rank_term(h: Tensor, low_rank: Tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """P (s * (Q^T h)) per row: the recurrent side of W_h(theta) = W_h + P diag(s(theta)) Q^T beyond W_h.

    h [B, D]; low_rank = (P [G*D, r], Q [D, r], s [B, r]: s(theta_b) of each row). Returns [B, G*D]."""
    p, q, s = low_rank
    return ((h @ q) * s) @ p.T


def gru_cell(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor, h_extra: Optional[Tensor] = None) -> Tensor:
    """One GRU step in PyTorch's gate convention (r, z, n blocks).

    x_proj [B, 3D] holds the input-side pre-activations W_x x_t + b_ih + U theta:
    theta enters every gate's input side additively.
        r = sigmoid(xr + W_hr h + b_hr), u = sigmoid(xz + W_hz h + b_hz)
        n = tanh(xn + r * (W_hn h + b_hn)),  h' = (1 - u) * n + u * h
    ``h_extra`` [B, 3D] (optional) is added to the recurrent side W_h h + b_hh of every gate.
    """
    gh = h @ w_hh.T + b_hh
    if h_extra is not None:
        gh = gh + h_extra
    xr, xz, xn = x_proj.chunk(3, dim=-1)
    hr, hz, hn = gh.chunk(3, dim=-1)
    r = torch.sigmoid(xr + hr)
    u = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return (1 - u) * n + u * h


def lstm_cell(x_proj: Tensor, z: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """One LSTM step in PyTorch's gate convention (i, f, g, o blocks) on the state z = [h; c].

    x_proj [B, 4H] holds W_x x_t + b_ih + cond; z [B, 2H]; w_hh [4H, H]. Returns [h'; c'] with
        i, f, o = sigmoid(.), g = tanh(.) of x_proj + W_hh h + b_hh,
        c' = f * c + i * g,  h' = o * tanh(c')
    (the base models' LSTM; torch.nn.LSTMCell computes the same).
    """
    H = w_hh.shape[1]
    h, c = z[..., :H], z[..., H:]
    pi, pf, pg, po = (x_proj + h @ w_hh.T + b_hh).chunk(4, dim=-1)
    c_new = torch.sigmoid(pf) * c + torch.sigmoid(pi) * torch.tanh(pg)
    return torch.cat([torch.sigmoid(po) * torch.tanh(c_new), c_new], dim=-1)


def meta_rnn_sequence(
    x: Tensor,
    h0: Tensor,
    cond: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    cell: str = "tanh",
    low_rank: Optional[Tuple[Tensor, Tensor, Tensor]] = None,
) -> Tensor:
    """Reference of ``ops.meta_rnn_sequence``: an eager loop over time steps.

    Args:
        x: [T, B, I] time-major inputs.
        h0: [B, D] initial meta state z_0.
        cond: [B, G*D] per-row conditioning bias U theta_n.
        w_ih: [G*D, I]; w_hh: [G*D, D]; b_ih, b_hh: [G*D].
        cell: "tanh" or "gru".
        low_rank: optional (P [G*D, r], Q [D, r], s [B, r]): each row's recurrent weights are
            W_h + P diag(s_b) Q^T (``low_rank_term``; no compiled op provides it yet).

    Returns:
        [T, B, D] meta states z_1..z_T, same dtype and device as x.
    """
    step = {"tanh": tanh_cell, "gru": gru_cell}.get(cell)
    if step is None:
        raise ValueError(f"argument 'cell' must be one of {CELLS}, got {cell!r}")
    T, B, I = x.shape
    x_proj = (x.reshape(T * B, I) @ w_ih.T + b_ih).reshape(T, B, w_ih.shape[0]) + cond.unsqueeze(0)
    h = h0
    out = []
    for t in range(T):
        h = step(x_proj[t], h, w_hh, b_hh, None if low_rank is None else low_rank_term(h, low_rank))
        out.append(h)
    return torch.stack(out, dim=0)


def cell_step(z: Tensor, x_proj: Tensor, w_hh: Tensor, b_hh: Tensor, cell: str) -> Tensor:
    """One step of the cell ("tanh", "gru" or "lstm", z = [h; c] for the LSTM) with a fixed
    input side x_proj = W_ih x + b_ih + cond."""
    step = {"tanh": tanh_cell, "gru": gru_cell, "lstm": lstm_cell}.get(cell)
    if step is None:
        raise ValueError(f"argument 'cell' must be one of {FIXED_POINT_CELLS}, got {cell!r}")
    return step(x_proj, z, w_hh, b_hh)


# A candidate whose ||F||_2 fell by less than this fraction over its last
# PROGRESS_WINDOW iterations stops as a slow point (csrc/ops/newton_rule.h).
MIN_PROGRESS = 0.01
PROGRESS_WINDOW = 5


def newton_fixed_points(z0, x, cond, w_ih, w_hh, b_ih, b_hh, cell="tanh", tol=1e-10, max_iter=100,
                        return_jacobian=True, min_progress=MIN_PROGRESS, max_damping_tries=12, max_backtracks=3):
    """Reference of ``ops.newton_fixed_points``: the same rule in batched PyTorch.

    Residual F(z) = cell(z) - z of the cell at x_proj = W_ih x + b_ih + cond;
    Jacobians by ``torch.func.jacrev`` under ``vmap``; the iteration is
    ``newton_solve``. Returns the same five tensors as the op.
    """
    gate_count(cell)
    x_proj = x @ w_ih.T + b_ih + cond

    def F(zk, xk):
        return cell_step(zk.unsqueeze(0), xk.unsqueeze(0), w_hh, b_hh, cell)[0] - zk

    return newton_solve(torch.func.vmap(F), torch.func.vmap(torch.func.jacrev(F)), z0, x_proj, tol, max_iter,
                        return_jacobian, min_progress, max_damping_tries, max_backtracks)


def newton_solve(F, jac, z0, x, tol=1e-10, max_iter=100, return_jacobian=True, min_progress=MIN_PROGRESS,
                 max_damping_tries=12, max_backtracks=3):
    """Solve F(z, x) = 0 for every row by the rule of ``ops.newton_fixed_points`` (csrc/ops/newton_rule.h).

    ``F(z [K, D], x [K, ...]) -> [K, D]`` is a batched residual (rows
    independent) and ``jac(z, x) -> [K, D, D]`` its Jacobian dF/dz. Newton
    steps by ``torch.linalg.solve_ex``, halved up to ``max_backtracks`` times
    until ||F||_2 drops; else Levenberg-Marquardt steps by
    ``torch.linalg.cholesky_ex`` with per-candidate damping. Candidates whose
    Newton and damped steps all fail to lower ||F||_2 stop (slow points), and
    so do those whose ||F||_2 fell by less than the fraction ``min_progress``
    over their last ``PROGRESS_WINDOW`` iterations.

    Returns (z [K, D], residual ||F||_inf [K], iterations [K] long,
    converged [K] bool, the step Jacobian dF/dz + I [K, D, D] or [K, 0, 0]).
    """
    x_proj = x
    eps = torch.finfo(z0.dtype).eps
    K, D = z0.shape
    z = z0.clone()
    f = F(z, x_proj)
    fsq = f.pow(2).sum(-1)
    active = f.abs().amax(-1) > tol
    iters = torch.zeros(K, dtype=torch.long)
    mu = torch.full((K,), -1.0, dtype=z0.dtype)
    eye = torch.eye(D, dtype=z0.dtype)
    past = fsq.new_zeros((PROGRESS_WINDOW, K))  # ||F||_2^2 of the last iterations, a ring
    for it in range(max_iter):  # every active candidate has taken `it` steps
        idx = active.nonzero().squeeze(1)
        slot = it % PROGRESS_WINDOW
        slow = fsq[idx] > (1 - min_progress) ** 2 * past[slot, idx] if it >= PROGRESS_WINDOW else None
        past[slot, idx] = fsq[idx]
        if slow is not None:
            active[idx[slow]] = False
            idx = idx[~slow]
        if len(idx) == 0:
            break
        iters[idx] += 1
        zi, xi, fi, fsqi = z[idx], x_proj[idx], f[idx], fsq[idx]
        J = jac(zi, xi)
        new = [zi.clone(), fi.clone(), fsqi.clone()]  # z, F and ||F||^2 after the iteration's accepted step
        accepted = _newton_step(F, J, zi, xi, fi, fsqi, new, eps, max_backtracks)
        mui = _damped_step(F, J, zi, xi, fi, fsqi, new, accepted, mu[idx], eye, max_damping_tries)
        new_z, new_f, new_fsq = new
        mu[idx] = mui
        z[idx], f[idx], fsq[idx] = new_z, new_f, new_fsq
        stalled = idx[~accepted]
        iters[stalled] -= 1
        active[idx] = accepted & (new_f.abs().amax(-1) > tol)
    residual = f.abs().amax(-1)
    J = jac(z, x_proj) + torch.eye(D, dtype=z0.dtype) if return_jacobian else z0.new_empty((K, 0, 0))
    return z, residual, iters, residual <= tol, J

def _newton_step(F, J, zi, xi, fi, fsqi, new, eps, max_backtracks):
    """The Newton step of every candidate whose Jacobian is well conditioned, halved up to
    ``max_backtracks`` times until ||F||_2 drops; ``new`` ([z, F, ||F||^2]) takes the accepted steps.
    Returns which candidates accepted one."""
    accepted = torch.zeros(len(zi), dtype=torch.bool)
    dz, info = torch.linalg.solve_ex(J, -fi)
    ok = info == 0
    # the op's conditioning test: smallest over largest |pivot| of the LU factors
    LU, _, _ = torch.linalg.lu_factor_ex(J)
    piv = LU.diagonal(dim1=-2, dim2=-1).abs()
    ok &= piv.amin(-1) > 100 * eps * piv.amax(-1)
    dz = torch.where(ok.unsqueeze(-1), dz, torch.zeros_like(dz))
    for b in range(max_backtracks + 1):  # the Newton step, then halved
        todo = ok & ~accepted
        if not todo.any():
            break
        zt = zi + 0.5 ** b * dz
        ft = F(zt, xi)
        ftsq = ft.pow(2).sum(-1)
        good = todo & torch.isfinite(ftsq) & (ftsq < fsqi)
        new[0][good], new[1][good], new[2][good] = zt[good], ft[good], ftsq[good]
        accepted = accepted | good
    return accepted


def _damped_step(F, J, zi, xi, fi, fsqi, new, accepted, mui, eye, max_damping_tries):
    """Levenberg-Marquardt steps (``cholesky_ex``) for the candidates without an accepted Newton step,
    each with its own damping (set on first use, divided by 10 on success, multiplied on failure);
    ``new`` and ``accepted`` take the successes in place. Returns the dampings."""
    jtj = J.transpose(-1, -2) @ J
    unset = mui < 0
    mui[unset] = 1e-3 * jtj.diagonal(dim1=-2, dim2=-1).amax(-1).clamp(min=1e-12)[unset]
    rhs = -(J.transpose(-1, -2) @ fi.unsqueeze(-1)).squeeze(-1)
    for _ in range(max_damping_tries):
        todo = ~accepted
        if not todo.any():
            break
        L, cinfo = torch.linalg.cholesky_ex(jtj + mui[:, None, None] * eye)
        step = torch.cholesky_solve(rhs.unsqueeze(-1), L).squeeze(-1)
        zt = zi + step
        ft = F(zt, xi)
        ftsq = ft.pow(2).sum(-1)
        good = todo & (cinfo == 0) & torch.isfinite(ftsq) & (ftsq < fsqi)
        new[0][good], new[1][good], new[2][good] = zt[good], ft[good], ftsq[good]
        mui = torch.where(good, (mui / 10).clamp(min=torch.finfo(zi.dtype).tiny), mui)
        mui = torch.where(todo & ~good, mui * 10, mui)
        accepted |= good
    return mui



def row_adam_(param: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, grad: Tensor, rows: Tensor, steps: Tensor,
              lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
    """Reference of ``ops.row_adam_``: torch.optim.Adam's update on the rows ``rows`` of ``param``
    (one step count per row, ``steps``), in place, with gathers and ``index_copy_``."""
    t = steps.to(param.dtype)[:, None]
    m = exp_avg.index_select(0, rows).lerp_(grad, 1 - beta1)
    v = exp_avg_sq.index_select(0, rows).mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = v.sqrt().div_((1 - torch.pow(beta2, t)).sqrt_()).add_(eps)
    param.index_copy_(0, rows, param.index_select(0, rows).sub_(m.div(denom).mul_(lr / (1 - torch.pow(beta1, t)))))
    exp_avg.index_copy_(0, rows, m)
    exp_avg_sq.index_copy_(0, rows, v)


def hidden_map_loss(z: Tensor, table: Tensor, map_row: Tensor, width: Tensor, targets: Tensor,
                    target_start: Tensor) -> Tensor:
    """``ops.hidden_map_loss``'s loss row by row: sum_b ||z_b A_b^T + c_b - y_b||^2 / d_b, where A_b, c_b
    are the table's rows map_row[b] .. map_row[b] + width[b] - 1 (first D columns, last column) and
    y_b = ``targets[target_start[b]:target_start[b] + T * d_b]`` as [T, d_b]."""
    T, D = z.shape[1], z.shape[2]
    loss = z.new_zeros(())
    for b in range(z.shape[0]):
        r0, d, s = int(map_row[b]), int(width[b]), int(target_start[b])
        block = table[r0:r0 + d]
        pred = z[b] @ block[:, :D].t() + block[:, D]
        loss = loss + (pred - targets[s:s + T * d].view(T, d)).pow(2).sum() / d
    return loss
