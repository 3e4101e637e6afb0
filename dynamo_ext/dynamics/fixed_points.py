"""Fixed points of a meta-model at an embedding, or of a plain PyTorch RNN.

For constant input x*, a fixed point solves z* = cell(z*, x*; theta)
(Sussillo & Barak 2013; for DYNAMO's meta-model, Cotler et al.
arXiv:2302.14078, docs/method.md "Fixed points"). Candidates are solved
by batched Newton / Levenberg-Marquardt in the compiled op
``dynamo_ext.ops.newton_fixed_points`` for the cells it fuses (tanh RNN, GRU,
LSTM, one layer, and the meta-model); every other network with a one-step
map z' = f(x, z) (ReLU and CT-RNNs, stacked layers, a user's module with a
``step`` method: ``dynamo_ext.population.step``) is solved by the same rule in PyTorch
(``reference.newton_solve``) on Jacobians from autograd. This module picks
initial states, de-duplicates, excludes outliers, and classifies points by
the eigenvalues of the step Jacobian dcell/dz (discrete time: stable iff
max |lambda| < 1).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, fields, replace
from functools import partial
from typing import Optional, Union

import torch
from torch import Tensor, nn

from .. import ops, reference
from .._checks import check_positive_float, check_positive_int, check_tensor
from ..meta.rnn import EmbeddedModel, MetaRNN
from ..population.base_rnn import BaseRNN
from ..population.step import autograd_jacobian, has_step_protocol, step_function
from ..uses.averaging import resolve_ids
from .cells import SUPPORTED, TORCH_CELLS, TORCH_LAYERS, CellWeights, NoFusedCell, cell_weights
from .points import FixedPoints


AUTO_DESCENT_STEPS = 20  # chosen on the flip-flop tanh RNN of training seed 0 (bench/compare_fixed_point_finder.py)
FAR_NOISE = 0.1  # starts drawn with at least this noise are "far" (docs/coming-from.md)


def _initial_states(D: int, initial_states, trajectories, n_inits, noise, generator) -> Tensor:
    if initial_states is not None:
        check_tensor(initial_states, "initial_states", shape=[None, D])
        z0 = initial_states.detach().to(torch.float64)
    elif trajectories is not None:
        check_tensor(trajectories, "trajectories", ndim=3)
        if trajectories.shape[-1] != D:
            raise ValueError(f"argument 'trajectories' must have state size {D}, got shape {tuple(trajectories.shape)}")
        flat = trajectories.detach().reshape(-1, D).to(torch.float64)
        z0 = flat[torch.randint(len(flat), (n_inits,), generator=generator)]
    else:
        z0 = torch.rand(n_inits, D, generator=generator, dtype=torch.float64) * 2 - 1
    if noise > 0:
        z0 = z0 + noise * torch.randn(z0.shape, generator=generator, dtype=torch.float64)
    return z0


def _reflect(z: Tensor) -> Tensor:
    """z folded into [-1, 1] by reflection at the faces (the identity inside)."""
    y = torch.remainder(z + 1, 4.0)
    return torch.where(y > 2, 4 - y, y) - 1


@dataclass
class SolverSettings:
    """How ``find_fixed_points`` solves, keeps and sorts candidates (FixedPointFinder's hyperparameters, as
    one object; every field can also be passed to ``find_fixed_points`` as a keyword).

    Attributes:
        tol: convergence on ||F||_inf (float64 throughout).
        max_iter: the Newton / Levenberg-Marquardt iteration cap.
        min_progress: a candidate whose ||F||_2 fell by less than this fraction over its last 5
            iterations stops there (it is creeping towards a slow point, not converging); 0 lets it
            run to ``max_iter``, which brings slow points closer to their minimum of q. In [0, 1).
        descent_steps: before Newton, this many Adam steps (learning rate ``descent_lr``) on
            q = 0.5 ||f(x*, z) - z||^2 from every start, as FixedPointFinder descends: from far starts
            (e.g. FixedPointFinder's trajectory samples with noise 0.5) Newton's basins are narrower than
            descent's, and the saddles with most unstable directions are missed without it. "auto":
            ``AUTO_DESCENT_STEPS`` (20) when the starts are drawn with ``noise`` >= ``FAR_NOISE`` (0.1,
            as FixedPointFinder's usual 0.5), else 0 (Newton at the starts). A start whose descended
            state Newton does not solve (or solves outside [-1, 1]) is solved again from where it was
            drawn: a gated cell's q also falls towards states where its update gates saturate, and the
            descent can follow it away from every fixed point.
        descent_lr: the descent's learning rate.
        dedup_tol: states closer than this are one point.
        outlier_max_abs: drop points with any |h_i| above this; "auto": 1.0 for the fused cells
            (tanh, GRU and LSTM hidden states lie in [-1, 1]; an LSTM's cell state c is unbounded and
            not tested), None for the autograd solver (every coordinate is tested when a number is
            given); None keeps all.
        slow_q: non-converged candidates with q = 0.5 ||F||^2 below this are reported as
            ``slow_points``.
    """

    tol: float = 1e-10
    max_iter: int = 100
    min_progress: float = reference.MIN_PROGRESS
    descent_steps: Union[int, str] = "auto"
    descent_lr: float = 0.05
    dedup_tol: float = 1e-6
    outlier_max_abs: Union[float, str, None] = "auto"
    slow_q: float = 1e-4

    def validate(self) -> "SolverSettings":
        """Check every field; raises ValueError naming the first bad one."""
        check_positive_float(self.tol, "tol")
        check_positive_int(self.max_iter, "max_iter")
        check_positive_float(self.descent_lr, "descent_lr")
        if not check_positive_float(self.min_progress, "min_progress", allow_zero=True) < 1:
            raise ValueError(f"argument 'min_progress' must be in [0, 1), got {self.min_progress!r}")
        if not (isinstance(self.descent_steps, str) and self.descent_steps == "auto"):
            check_positive_int(self.descent_steps, "descent_steps", minimum=0)
        if self.outlier_max_abs not in ("auto", None):
            check_positive_float(self.outlier_max_abs, "outlier_max_abs")
        return self


def find_fixed_points(model: nn.Module, inputs: Optional[Tensor] = None, initial_states: Optional[Tensor] = None,
                      trajectories: Optional[Tensor] = None, n_inits: int = 256, noise: float = 0.0,
                      theta: Optional[Tensor] = None, model_id: Optional[Union[int, str]] = None, seed: int = 0,
                      device: Optional[Union[str, torch.device]] = None, contexts: Optional[Tensor] = None,
                      settings: Optional[SolverSettings] = None, **solver) -> FixedPoints:
    """Find the fixed points z* = f(x*, z*) of a recurrent network at a constant input.

    Args:
        model: a MetaRNN (with ``theta`` [m] or ``model_id``), or a plain
            torch.nn.RNN / GRU / LSTM / RNNCell / GRUCell / LSTMCell (zero
            conditioning), or a module holding one of them (``BaseRNN``, a
            user's network with its readout), or an ``EmbeddedModel`` of a
            MetaRNN (``de.average``; its theta). One-layer tanh RNNs, GRUs and
            LSTMs and the meta-model run in the fused op; ReLU RNNs, stacked
            layers, ``CTRNN`` and any module with ``step(x [B, I], z [B, D])
            -> z' [B, D]`` and ``state_size`` / ``input_size`` attributes (the
            step protocol, like FixedPointFinder's RNN cell) run the same
            Newton / LM rule on autograd Jacobians of a float64 copy
            (``reference.newton_solve``; ``cell`` is then "autograd"). LSTM
            states are z = [h; c], D = 2H; L stacked layers [z_1; ...; z_L].
        inputs: constant input x* ([I] or [1, I]: the same for every start, as
            FixedPointFinder's; [K, I]: one per start; default zeros). One meaning
            only: inputs at which to solve every start are ``contexts``.
        contexts: [C, I]: every start is solved at each of the C inputs (any C);
            exclusive with ``inputs``. The result holds ``contexts``, and
            ``per_context()`` gives one FixedPoints per context.
        initial_states: [K, D] starting states; else ``n_inits`` states drawn
            from ``trajectories`` [B, T, D] (hidden states of the network), else
            uniform in [-1, 1]^D; ``noise`` adds Gaussian jitter. For the fused
            cells, drawn starts (not ``initial_states``) that the jitter takes
            past [-1, 1] in a hidden coordinate are reflected back in: every
            fixed point's hidden state lies there.
        device: where the Newton solves run (default: the model's device;
            "cuda" uses the op's CUDA kernel). Initial states are drawn on the
            CPU, and the returned FixedPoints live on the CPU.
        settings, solver: the solver's settings (``SolverSettings``: tol, max_iter, min_progress,
            descent_steps, descent_lr, dedup_tol, outlier_max_abs, slow_q), as an object and/or as
            keywords that replace its fields.

    Returns:
        FixedPoints of the unique converged points, with ``slow_points``.

    Raises:
        ValueError: unsupported model, a model with NaN/Inf weights, bad shapes
            (``inputs`` of C != 1, K rows: pass ``contexts``), NaN/Inf inputs or
            states, bad settings, a CUDA device where none is available.
    """
    unknown = sorted(set(solver) - {f.name for f in fields(SolverSettings)})
    if unknown:
        raise TypeError(f"find_fixed_points() got unexpected keyword arguments {unknown}; the solver's settings "
                        f"are {[f.name for f in fields(SolverSettings)]}")
    s = replace(settings or SolverSettings(), **solver).validate()
    check_positive_int(n_inits, "n_inits")
    check_positive_float(noise, "noise", allow_zero=True)
    descent_steps = s.descent_steps
    if isinstance(descent_steps, str):  # "auto"
        descent_steps = AUTO_DESCENT_STEPS if noise >= FAR_NOISE else 0
    target = _Target(model, theta, model_id, device)
    outlier_max_abs = s.outlier_max_abs
    if outlier_max_abs == "auto":  # the fused cells' h lies in [-1, 1]; a general step map's state is unbounded
        outlier_max_abs = 1.0 if target.weights is not None else None
    z0 = _starts(target, initial_states, trajectories, n_inits, noise, seed)
    z0, x, contexts = _inputs(inputs, contexts, z0, target.input_size)
    solve = partial(_solve, target, tol=s.tol, max_iter=s.max_iter, min_progress=s.min_progress,
                    outlier_max_abs=outlier_max_abs)
    found, kept = _solve_from(solve, target, z0, x, descent_steps, s.descent_lr)
    return _classify(target, found, kept, x, contexts, s.dedup_tol, s.slow_q)


class _Target:
    """What is solved: the fused cell's weights, or the step function of a module (its float64 copy made
    once for the descent and the Newton phase), and the device the solves run on."""

    def __init__(self, model: nn.Module, theta: Optional[Tensor], model_id, device):
        if isinstance(model, EmbeddedModel) and isinstance(model.meta, MetaRNN):  # e.g. from de.average
            model, theta = model.meta, (model.theta if theta is None and model_id is None else theta)
        for name, p in model.named_parameters():
            if not torch.isfinite(p).all():
                raise ValueError(f"argument 'model' must have finite weights, got "
                                 f"{int((~torch.isfinite(p)).sum())} NaN or Inf values in {name!r}")
        self.meta = model if isinstance(model, MetaRNN) else None
        if self.meta is not None and model_id is not None:
            theta = self.meta.theta.detach()[resolve_ids(self.meta, [model_id], "model_id")[0]]
        try:
            if has_step_protocol(model) and not isinstance(model, (BaseRNN, MetaRNN)):
                raise NoFusedCell("a module's own step function comes before the cells it holds")
            self.weights, stepper = cell_weights(model, theta), None
        except NoFusedCell as exc:
            self.weights, stepper = None, step_function(model)
            if stepper is None:
                inner = sum(isinstance(m, TORCH_LAYERS + TORCH_CELLS) for m in model.children())
                raise ValueError(f"argument 'model' must be one of: {SUPPORTED}; got {type(model).__name__}"
                                 + (f" holding {inner} recurrent modules" if inner else "")) from exc
        first = next(model.parameters(), None)
        self.device = torch.device(device) if device is not None else (first.device if first is not None else None)
        if self.device is not None and self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"argument 'device' must name an available device; got {str(self.device)!r}, "
                             "and torch sees no CUDA device")
        w = self.weights
        self.state_size, self.input_size = (w.state_size, w.input_size) if w is not None else stepper[1:]
        self.hidden_size = w.hidden_size if w is not None else self.state_size
        self.solver = None if w is not None else copy.deepcopy(model).to(torch.float64).requires_grad_(False).eval()
        self.cell = w.cell if w is not None else "autograd"


def _starts(target: _Target, initial_states, trajectories, n_inits: int, noise: float, seed: int) -> Tensor:
    """The starting states [K, D]: given, drawn from trajectories or uniform, jittered, and (drawn starts of
    a fused cell) reflected into [-1, 1] in the hidden coordinates."""
    z0 = _initial_states(target.state_size, initial_states, trajectories, n_inits, noise,
                         torch.Generator().manual_seed(seed))
    if target.weights is not None and initial_states is None and noise > 0:
        # a fused cell's hidden state lies in [-1, 1] (tanh, GRU; an LSTM's h, not its c), and so does every
        # fixed point's: drawn starts that the noise carried past it are reflected back in, where a
        # saturated unit would otherwise be sent straight to a stable state by the first Newton step
        z0[:, :target.hidden_size] = _reflect(z0[:, :target.hidden_size])
    return z0


def _solve(target: _Target, starts: Tensor, xs: Tensor, tol, max_iter, min_progress, outlier_max_abs):
    """Newton / LM from every start: ([z, residual, iterations, converged, Jacobian, q], kept), kept the
    finite points inside ``outlier_max_abs``."""
    if target.weights is not None:
        z, _, res, iters, conv, jac, q = _solve_fused(target.weights.to("cpu"), starts, xs, tol, max_iter,
                                                      min_progress, target.device)
    else:
        z, res, iters, conv, jac, q = _solve_autograd(target.solver, starts, xs, tol, max_iter, min_progress,
                                                      target.device)
    kept = torch.isfinite(z).all(-1)
    if outlier_max_abs is not None:
        kept &= z[:, :target.hidden_size].abs().amax(-1) <= outlier_max_abs + 1e-9
    return [z, res, iters, conv, jac, q], kept


def _solve_from(solve, target: _Target, z0: Tensor, x: Tensor, descent_steps: int, descent_lr: float):
    """Solve from the starts, after ``descent_steps`` of descent on q when asked; a start whose descended
    state is lost is solved again from where it was drawn."""
    if descent_steps == 0:
        return solve(z0, x)
    descended = _descend(target.weights, target.solver, z0, x, descent_steps, descent_lr)
    found, kept = solve(descended, x)
    lost = ~(found[3] & kept)
    if lost.any():
        # a gated cell's q also falls towards states where its update gates saturate (z' = z there),
        # and the descent can follow it away from every fixed point: such starts are solved again from
        # where they were drawn, so the descent never loses a point Newton finds without it
        again, kept_again = solve(z0[lost], x[lost])
        better = again[3] & kept_again
        rows = lost.nonzero().squeeze(1)[better]
        for field, value in zip(found, again):
            field[rows] = value[better]
        kept[rows] = True
    return found, kept


def _classify(target: _Target, found, kept: Tensor, x: Tensor, contexts, dedup_tol: float,
              slow_q: float) -> FixedPoints:
    """The unique converged points, with the unique slow points (not converged, q below ``slow_q``)."""
    z, res, iters, conv, jac, q = found
    everything = FixedPoints(z, x, res, q, iters, conv, jac, target.weights, target.meta, cell=target.cell,
                             contexts=contexts)
    fixed = everything.select(conv & kept).deduplicate(dedup_tol)
    fixed.slow_points = everything.select(~conv & kept & (q < slow_q)).deduplicate(dedup_tol)
    return fixed


def _inputs(inputs: Optional[Tensor], contexts: Optional[Tensor], z0: Tensor, I: int):
    """(starts, their inputs [K', I], contexts [C, I] or None): every start is solved at each context."""
    K = z0.shape[0]
    if inputs is not None and contexts is not None:
        raise ValueError("arguments 'inputs' and 'contexts' are exclusive; got both")
    if inputs is not None:
        check_tensor(inputs, "inputs")
        x = inputs.detach().to(torch.float64)
        if x.dim() == 1 or (x.dim() == 2 and x.shape[0] == 1):  # FixedPointFinder's [1, I]: every start
            x = x.reshape(1, -1).expand(K, -1)
        if x.shape != (K, I):
            raise ValueError(f"argument 'inputs' must have shape [{I}], [1, {I}] (the same for every start) or "
                             f"[{K}, {I}] (one per start), got {tuple(inputs.shape)}; to solve every start at "
                             f"each of C inputs, pass them as contexts=[C, {I}]")
        return z0, x.contiguous(), None
    if contexts is None:
        return z0, torch.zeros(K, I, dtype=torch.float64), None
    check_tensor(contexts, "contexts", shape=[None, I])
    c = contexts.detach().to(torch.float64)
    return z0.repeat(len(c), 1), c.repeat_interleave(K, 0).contiguous(), c.clone()


def _descend(weights: Optional[CellWeights], solver: Optional[nn.Module], z0: Tensor, x: Tensor, steps: int,
             lr: float):
    """Adam on q(z) = 0.5 ||f(x, z) - z||^2 (summed over starts, which do not interact), float64 on the CPU:
    the fused cell's ``weights``, or the step map of ``solver`` (a float64 copy of the model)."""
    if weights is not None:
        w = weights.to("cpu")
        x_proj = x @ w.w_ih.T + w.b_ih + w.cond

        def step(xk, z):
            return reference.cell_step(z, x_proj, w.w_hh, w.b_hh, w.cell)
    else:
        step = step_function(solver)[0]
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            q = 0.5 * (step(x, z) - z).pow(2).sum()
            opt.zero_grad(set_to_none=True)
            q.backward()
            opt.step()
    z = z.detach()
    return torch.where(torch.isfinite(z).all(-1, keepdim=True), z, z0)


def _solve_fused(weights: CellWeights, z0: Tensor, x: Tensor, tol, max_iter, min_progress, device):
    """Newton / LM in ``ops.newton_fixed_points`` on ``device``; results on the CPU."""
    K = z0.shape[0]
    cond = weights.cond.expand(K, -1).contiguous()
    device = device if device is not None else torch.device("cpu")
    on = weights.to(device)
    z, res, iters, conv, jac = (t.cpu() for t in ops.newton_fixed_points(
        z0.to(device), x.to(device), cond.to(device), on.w_ih, on.w_hh, on.b_ih, on.b_hh, weights.cell, tol,
        max_iter, True, min_progress))
    with torch.no_grad():
        x_proj = x @ weights.w_ih.T + weights.b_ih + cond
        F = reference.cell_step(z, x_proj, weights.w_hh, weights.b_hh, weights.cell) - z
    return z, x, res, iters, conv, jac, 0.5 * F.pow(2).sum(-1)


def _solve_autograd(solver: nn.Module, z0: Tensor, x: Tensor, tol, max_iter, min_progress, device):
    """The op's Newton / LM rule (``reference.newton_solve``) on the step map of ``solver`` (a float64
    copy of the model), with Jacobians by autograd (``step.autograd_jacobian``); results on the CPU."""
    if device is not None:
        solver = solver.to(device)
    step, D, _ = step_function(solver)
    eye = torch.eye(D, dtype=torch.float64, device=device)
    z0, x = z0.to(device), x.to(device)

    def F(z, xk):
        with torch.no_grad():
            out = step(xk, z)
        if out.shape != z.shape:
            raise ValueError(f"the step function must return states of shape {tuple(z.shape)} (the input "
                             f"states'), got {tuple(out.shape)}")
        return out - z

    def jac(z, xk):
        return autograd_jacobian(step, xk, z)[1] - eye

    z, res, iters, conv, J = reference.newton_solve(F, jac, z0, x, tol, max_iter, True, min_progress)
    q = 0.5 * F(z, x).pow(2).sum(-1)
    return tuple(t.cpu() for t in (z, res, iters, conv, J, q))
