"""hidden_map_loss against the per-model loop it replaced: equivalence first, then time (pytest-benchmark).

    pytest bench/bench_hidden_map_loss.py --benchmark-only [--benchmark-json=bench-hidden-map-loss.json]

The hidden-state term of one fit step (128 rows x 50 steps, meta state D = 64), forward and backward,
as a function of the number M of distinct base models in the batch (1, 16, 128) and their widths
(every model 64 units, or drawn log-uniformly from 8-256 as in ``continuum_population``):
- ``op``: ``ops.hidden_map_loss``, every row's map read from one table;
- ``per_model``: one linear, one squared error and one division per model with plain autograd, the
  maps sliced from the table (what a user would write).
Groups: hidden_map_loss-<widths>-M<M>. Each benchmark's extra_info carries the flops of the forward
GEMMs and the largest relative difference from the per-model loss and gradients.

Quoted in docs/performance.md.
"""
import math

import pytest
import torch

from dynamo_ext import ops

B, T, D = 128, 50, 64


def problem(n_models, widths_kind, seed=0):
    g = torch.Generator().manual_seed(seed)
    if widths_kind == "w64":
        widths = torch.full((n_models,), 64)
    else:
        widths = torch.exp(torch.empty(n_models).uniform_(math.log(8), math.log(256), generator=g)).long()
    model = torch.sort(torch.randint(n_models, (B,), generator=g)).values
    model[:n_models] = torch.arange(n_models)  # every model present
    model = torch.sort(model).values
    w = widths[model]
    table = torch.randn(int(widths.sum()), D + 1, generator=g) / D ** 0.5
    map_row = (torch.cumsum(widths, 0) - widths)[model]
    start = torch.cumsum(T * w, 0) - T * w
    targets = torch.randn(int((T * w).sum()), generator=g)
    z = torch.randn(B, T, D, generator=g)
    return z, table, map_row, w, targets, start, model, widths


def per_model(z, table, map_row, width, targets, start, model):
    loss = z.new_zeros(())
    models, counts = torch.unique_consecutive(model, return_counts=True)
    for z_n, rows in zip(z.split(counts.tolist()), torch.arange(len(model)).split(counts.tolist())):
        b0, d = int(rows[0]), int(width[rows[0]])
        block = table[int(map_row[b0]):int(map_row[b0]) + d]
        y = targets[int(start[b0]):int(start[b0]) + len(rows) * T * d].view(len(rows), T, d)
        pred = torch.nn.functional.linear(z_n, block[:, :D], block[:, D])
        loss = loss + (pred - y).pow(2).sum() / d
    return loss


IMPLS = {"op": lambda z, t, mr, w, y, s, model: ops.hidden_map_loss(z, t, mr, w, y, s), "per_model": per_model}


def forward_backward(impl, z, table, *rest):
    loss = IMPLS[impl](z, table, *rest)
    return torch.autograd.grad(loss, (z, table))


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("n_models", [1, 16, 128])
@pytest.mark.parametrize("widths_kind", ["w64", "w8-256"])
def test_hidden_map_loss(benchmark, widths_kind, n_models, impl):
    z, table, map_row, width, targets, start, model, _ = problem(n_models, widths_kind)
    z.requires_grad_(True)
    table.requires_grad_(True)
    args = (z, table, map_row, width, targets, start, model)
    got = forward_backward(impl, *args)
    want = forward_backward("per_model", *args)
    err = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(got, want))
    assert err <= 1e-4, f"{impl} differs from the per-model loss: max relative error {err:.2e}"
    benchmark.group = f"hidden_map_loss-{widths_kind}-M{n_models}"
    benchmark.extra_info.update({"forward_flops": 2 * T * D * int(width.sum()), "max_rel_err": err})
    benchmark.pedantic(forward_backward, args=(impl, *args), rounds=30, warmup_rounds=3, iterations=1)
