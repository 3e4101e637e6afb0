"""meta_rnn_sequence, tanh cell: equivalence first, then time (pytest-benchmark).

Run:  pytest bench/bench_meta_rnn.py --benchmark-only --benchmark-json=bench.json
Groups: meta_rnn-tanh-<config>-<pass>; the implementation name is in the test id.
Configurations (B, T, I, D, m) follow the fused-kernel issue: S, M, L.
"""
import pytest
import torch

from dynamo_ext import ops, reference

CONFIGS = {"S": (256, 40, 1, 64, 2), "M": (512, 50, 8, 128, 4), "L": (1024, 100, 32, 256, 8)}
IMPLS = {"fused": ops.meta_rnn_sequence, "reference": reference.meta_rnn_sequence}


def make(config, requires_grad):
    B, T, I, D, m = CONFIGS[config]
    g = torch.Generator().manual_seed(0)
    k = D ** -0.5
    theta = torch.randn(B, m, generator=g)
    U = torch.randn(D, m, generator=g) * 0.3
    args = [torch.randn(T, B, I, generator=g), torch.rand(B, D, generator=g) - 0.5, theta @ U.T,
            torch.randn(D, I, generator=g) * k, torch.randn(D, D, generator=g) * k,
            torch.randn(D, generator=g) * 0.1, torch.randn(D, generator=g) * 0.1]
    return [a.requires_grad_(requires_grad) for a in args]


@pytest.mark.parametrize("config", ["S", "M"])
@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("pass_", ["forward", "forward_backward"])
def test_meta_rnn_tanh(benchmark, impl, config, pass_):
    train = pass_ == "forward_backward"
    args = make(config, train)
    fn = IMPLS[impl]
    # equivalence first
    out = fn(*args, "tanh")
    ref = reference.meta_rnn_sequence(*args, "tanh")
    err = float((out - ref).abs().max() / ref.abs().max())
    assert err <= 1e-4, f"{impl} differs from the reference: max relative error {err:.2e}"
    benchmark.group = f"meta_rnn-tanh-{config}-{pass_}"

    def run():
        if train:
            y = fn(*args, "tanh")
            y.backward(torch.ones_like(y))
        else:
            with torch.no_grad():
                fn(*args, "tanh")

    benchmark.pedantic(run, rounds=5, warmup_rounds=1, iterations=1)
