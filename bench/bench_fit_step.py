"""One meta-model fitting step (loss, backward, Adam) at configuration S, fused vs reference backend.

Run: pytest bench/bench_fit_step.py --benchmark-only

Quoted in docs/performance.md.
"""
import pytest
import torch

from dynamo_ext.meta.config import FitConfig
from dynamo_ext.meta.loss import Targets, dynamo_loss
from dynamo_ext.meta.fitting import make_optimizer
from dynamo_ext.meta.rnn import MetaRNN
from dynamo_ext.population.recording import Recording

B, T, I, D, M = 256, 40, 1, 64, 2  # configuration S
N_MODELS, HIDDEN, S = 6, 48, 512


def make_targets():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(S, T, I, generator=g)
    hidden = [torch.randn(S, T, HIDDEN, generator=g) for _ in range(N_MODELS)]
    outputs = torch.randn(N_MODELS, S, T, 10, generator=g)
    return Targets(Recording(x, hidden, outputs, "classes"), torch.float32)


@pytest.mark.parametrize("cell", ["gru", "tanh"])
@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_fit_step(benchmark, cell, backend):
    targets = make_targets()
    torch.manual_seed(0)
    meta = MetaRNN(N_MODELS, I, 10, [HIDDEN] * N_MODELS, state_size=D, embedding_dim=M, cell=cell,
                   backend=backend)
    opt = make_optimizer(meta.parameters(), 1e-3)  # the optimizer fit uses
    g = torch.Generator().manual_seed(0)
    cfg = FitConfig()
    model_idx = torch.randint(N_MODELS, (B,), generator=g)
    seq_idx = torch.randint(S, (B,), generator=g)

    def step():
        losses = dynamo_loss(meta, targets, model_idx, seq_idx, cfg.lambda_h, cfg.lambda_y, cfg.lambda_theta)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        opt.step()

    # equivalence first: the fused and reference backends give the same loss
    ref = MetaRNN(N_MODELS, I, 10, [HIDDEN] * N_MODELS, state_size=D, embedding_dim=M, cell=cell,
                  backend="reference")
    ref.load_state_dict(meta.state_dict())
    with torch.no_grad():
        a = dynamo_loss(meta, targets, model_idx, seq_idx, 1.0, 1.0, 1e-3)["loss"]
        b = dynamo_loss(ref, targets, model_idx, seq_idx, 1.0, 1.0, 1e-3)["loss"]
    assert abs(float(a - b)) <= 1e-4 * abs(float(b))
    benchmark.group = f"fit_step-{cell}-S"
    benchmark.pedantic(step, rounds=10, warmup_rounds=2, iterations=1)
