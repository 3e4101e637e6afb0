"""The two ops on one device against the baselines people would use there: equivalence first, then time.

    python bench/gpu/kernels.py [--device cuda] [--configs S M L] [--out kernels.json] [--no-compile]

- meta_rnn_sequence (bench/problems.py configurations S, M, L; tanh and GRU; forward and
  forward+backward): the fused op against torch.nn.GRU/RNN fed [x; theta] (cuDNN on a GPU), the eager
  reference loop and torch.compile of it (S and M; compiling L's unrolled loop takes minutes);
- newton_fixed_points (K = 1024 candidates, D in {64, 128, 256}, float64): the op against the
  reference Newton loop (torch.func Jacobians, torch.linalg.solve);
- hidden_map_loss (a fit step's hidden-state term, 128 rows x 50 steps, D = 64, 16 and 128 models
  of 64 units or of widths 8-256; forward+backward): the op against the per-model autograd loop
  (bench/bench_hidden_map_loss.py's problems).

Each implementation's output is compared with the reference before it is timed (max relative
error); times are medians of repeats, synchronised (CUDA events' worth: torch.cuda.synchronize
around each repeat). Writes JSON rows {op, cell, config, pass, impl, median_s, max_rel_err}.

Quoted in docs/performance.md.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/problems.py
from bench_hidden_map_loss import forward_backward, problem  # noqa: E402
from problems import CELLS, CONFIGS, Problem  # noqa: E402

from dynamo_ext import ops, reference  # noqa: E402


def timed(fn, device, repeats):
    fn()
    times = []
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sequence_rows(device, configs, compile_):
    rows = []
    for cell in CELLS:
        for config in configs:
            impls = ["fused", "reference", "torch_nn"] + (["compiled"] if compile_ and config != "L" else [])
            for backward in (False, True):
                prob = Problem(cell, config, requires_grad=backward, device=device)
                with torch.no_grad():
                    ref = prob.run("reference")
                for impl in impls:
                    with torch.no_grad():
                        out = prob.run(impl)
                    err = float((out - ref).abs().max() / ref.abs().max())
                    t = timed(lambda: prob.step(impl, backward), device, 3 if config == "L" else 7)
                    rows.append({"op": "meta_rnn_sequence", "cell": cell, "config": config,
                                 "pass": "forward_backward" if backward else "forward", "impl": impl,
                                 "median_s": t, "max_rel_err": err})
                    print(json.dumps(rows[-1]), flush=True)
    return rows


def newton_rows(device, dims, K=1024):
    rows = []
    for cell in ("tanh", "gru"):
        for D in dims:
            g = torch.Generator().manual_seed(0)
            G = reference.gate_count(cell)
            dt = torch.float64
            args = [torch.rand(K, D, generator=g, dtype=dt) * 2 - 1, torch.zeros(K, 1, dtype=dt),
                    (torch.randn(1, G * D, generator=g, dtype=dt) * 0.2).expand(K, -1).contiguous(),
                    torch.zeros(G * D, 1, dtype=dt), torch.randn(G * D, D, generator=g, dtype=dt) * 1.2 / D ** 0.5,
                    torch.randn(G * D, generator=g, dtype=dt) * 0.1, torch.randn(G * D, generator=g, dtype=dt) * 0.1]
            args = [a.to(device) for a in args]
            kw = dict(cell=cell, tol=1e-10, max_iter=100)
            z_r, _, _, conv_r, _ = reference.newton_fixed_points(*args, **kw)
            z_f, _, _, conv_f, _ = ops.newton_fixed_points(*args, **kw)
            both = conv_r & conv_f
            err = float((z_f[both] - z_r[both]).abs().max()) if bool(both.any()) else float("nan")
            for impl, fn in (("fused", ops.newton_fixed_points), ("python_newton", reference.newton_fixed_points)):
                t = timed(lambda: fn(*args, **kw), device, 3)
                rows.append({"op": "newton_fixed_points", "cell": cell, "D": D, "K": K, "impl": impl, "median_s": t,
                             "converged": float((conv_f if impl == "fused" else conv_r).double().mean()),
                             "max_abs_diff_both_converged": err})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def hidden_map_rows(device):
    rows = []
    for widths_kind in ("w64", "w8-256"):
        for n_models in (16, 128):
            args = [t.to(device) for t in problem(n_models, widths_kind)[:7]]
            args[0].requires_grad_(True)
            args[1].requires_grad_(True)
            want = forward_backward("per_model", *args)
            for impl in ("op", "per_model"):
                got = forward_backward(impl, *args)
                err = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(got, want))
                t = timed(lambda: forward_backward(impl, *args), device, 10)
                rows.append({"op": "hidden_map_loss", "widths": widths_kind, "models": n_models,
                             "pass": "forward_backward", "impl": impl, "median_s": t, "max_rel_err": err})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS))
    p.add_argument("--dims", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--out", default="kernels.json")
    a = p.parse_args()
    rows = (sequence_rows(a.device, a.configs, not a.no_compile) + newton_rows(a.device, a.dims)
            + hidden_map_rows(a.device))
    name = torch.cuda.get_device_name() if a.device != "cpu" else "cpu"
    Path(a.out).write_text(json.dumps({"device": name, "torch": torch.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
