"""meta_rnn_sequence: equivalence first, then time (pytest-benchmark).

Run (the table in docs/performance.md):
    pytest bench/bench_meta_rnn.py --benchmark-only --benchmark-json=bench-meta-rnn.json
    python bench/summarize.py bench-meta-rnn.json
Groups: meta_rnn-<cell>-<config>-<pass>; the implementation name is in the test id.
Each benchmark's extra_info carries the recurrent-GEMM flops and torch.mm's rate
at the recurrent GEMM's shape, measured in the same run.

Quoted in docs/performance.md.
"""
import time

import pytest
import torch

from problems import CELLS, CONFIGS, IMPLS, Problem

PASSES = ("forward", "forward_backward")
# torch.compile unrolls the time loop: compiling T = 100 steps of L takes minutes
# on 2 cores, so the compiled baseline is timed on S and M only.
COMPILED_CONFIGS = ("S", "M")
_MM_RATE = {}


def mm_gflops(B, D, GD, repeats=20):
    """torch.mm's rate (GFLOP/s) for [B, D] x [D, GD] in float32, median of repeats."""
    key = (B, D, GD)
    if key not in _MM_RATE:
        a, b = torch.randn(B, D), torch.randn(D, GD)
        out = torch.empty(B, GD)
        for _ in range(3):
            torch.mm(a, b, out=out)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b, out=out)
            times.append(time.perf_counter() - t0)
        times.sort()
        _MM_RATE[key] = 2.0 * B * D * GD / times[len(times) // 2] / 1e9
    return _MM_RATE[key]


CASES = [(cell, config, impl) for cell in CELLS for config in CONFIGS for impl in IMPLS
         if impl != "compiled" or config in COMPILED_CONFIGS]


@pytest.mark.parametrize("pass_", PASSES)
@pytest.mark.parametrize("cell,config,impl", CASES)
def test_meta_rnn(benchmark, cell, config, impl, pass_):
    backward = pass_ == "forward_backward"
    prob = Problem(cell, config, requires_grad=backward)
    # equivalence first: forward and (for fwd+bwd) parameter gradients against the reference
    with torch.no_grad():
        ref = prob.run("reference")
        out = prob.run(impl)
    err = float((out - ref).abs().max() / ref.abs().max())
    assert err <= 1e-4, f"{impl} differs from the reference: max relative error {err:.2e}"
    prob.step(impl, backward)  # warm-up (and compilation)
    B, T, I, D, m = CONFIGS[config]
    GD = D * (3 if cell == "gru" else 1)
    benchmark.group = f"meta_rnn-{cell}-{config}-{pass_}"
    benchmark.extra_info.update({"recurrent_flops": prob.recurrent_flops(), "mm_gflops": mm_gflops(B, D, GD),
                                 "max_rel_err": err})
    rounds = 3 if config == "L" else 7
    benchmark.pedantic(prob.step, args=(impl, backward), rounds=rounds, warmup_rounds=1, iterations=1)
