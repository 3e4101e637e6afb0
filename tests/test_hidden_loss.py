"""The hidden-state term of dynamo_loss (gathered_hidden_loss: one compiled op over the rows) against plain
autograd per model, the targets' row blocks, and the fits' optimizer."""
import pytest
import torch

from dynamo_ext.meta.hidden_loss import has_linear_maps
from dynamo_ext.meta.rnn import HiddenMap


def test_only_linear_maps_qualify():
    maps = [HiddenMap(6, d) for d in (2, 7, 4)]
    assert has_linear_maps(maps)
    assert not has_linear_maps(maps + [torch.nn.Identity()])
    assert has_linear_maps(maps + [torch.nn.Identity()], ids=[0, 2])


@pytest.mark.parametrize("n_models", [5, 40])
def test_gathered_hidden_loss_equals_the_per_model_loss(n_models):
    """dynamo_loss's hidden term for linear maps (one compiled op over the rows, maps read from one table,
    targets in place) against plain autograd row by row, on fresh random models of mixed widths: the
    same loss and the same gradients of every parameter (float64)."""
    from dynamo_ext.meta.hidden_loss import gathered_hidden_loss
    from dynamo_ext.meta.loss import Targets, dynamo_loss
    from dynamo_ext.meta.rnn import MetaRNN
    from dynamo_ext.population.recording import Recording

    g = torch.Generator().manual_seed(n_models)
    S, T = 12, 6
    widths = [int(w) for w in torch.randint(2, 50, (n_models,), generator=g)]
    rec = Recording(torch.randn(S, T, 2, generator=g, dtype=torch.float64),
                    [torch.randn(S, T, d, generator=g, dtype=torch.float64) * 2 + 1 for d in widths],
                    torch.randn(n_models, S, T, 3, generator=g, dtype=torch.float64), "real")
    targets = Targets(rec, torch.float64)
    torch.manual_seed(0)
    meta = MetaRNN(n_models, 2, 3, widths, state_size=7, cell="gru", output_kind="real").double()
    model_idx, seq_idx = torch.randint(n_models, (48,), generator=g), torch.randint(S, (48,), generator=g)
    got = dynamo_loss(meta, targets, model_idx, seq_idx, 1.0, 1.0, 1e-3)["loss_h"]
    grads = [torch.autograd.grad(got, list(meta.parameters()), allow_unused=True)]
    want = got.new_zeros(())  # per model, plain autograd, in the rows' drawn order
    z, _ = meta(targets.x[seq_idx], model_idx)
    for b in range(len(model_idx)):
        n = int(model_idx[b])
        pred = meta.maps[n](z[b])
        want = want + (pred - targets.hidden[n][seq_idx[b]]).pow(2).sum() / widths[n]
    want = want / (len(model_idx) * T)
    grads.append(torch.autograd.grad(want, list(meta.parameters()), allow_unused=True))
    assert float(want) > 0.1
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    for x, y in zip(*grads):
        assert (x is None) == (y is None)
        if x is not None:
            torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-14)
    assert gathered_hidden_loss.__doc__


@pytest.mark.parametrize("storage", [None, torch.float16])
def test_row_targets_read_each_rows_block(storage):
    """Targets.row_targets: row b's [T, d_n] targets at flat[start[b]:] (in place when stored in the
    loss's dtype, gathered otherwise), as Targets.hidden holds them."""
    from dynamo_ext.meta.loss import Targets
    from dynamo_ext.population.recording import Recording

    g = torch.Generator().manual_seed(3)
    S, T, widths = 5, 4, [3, 9, 1]
    rec = Recording(torch.randn(S, T, 2, generator=g), [torch.randn(S, T, d, generator=g) for d in widths],
                    torch.randn(3, S, T, 2, generator=g), "real")
    targets = Targets(rec, torch.float32, storage=storage)
    model_idx, seq_idx = torch.tensor([2, 0, 0, 1, 2]), torch.tensor([4, 1, 3, 0, 0])
    flat, start = targets.row_targets(model_idx, seq_idx, torch.float32, torch.device("cpu"))
    assert flat.dtype == torch.float32
    for b, (n, s) in enumerate(zip(model_idx.tolist(), seq_idx.tolist())):
        d = widths[n]
        want = targets.hidden[n][s].float()
        torch.testing.assert_close(flat[int(start[b]):int(start[b]) + T * d].view(T, d), want, rtol=0, atol=0)


def test_touched_adam_updates_exactly_as_adam():
    """TouchedAdam (every fit's optimizer) visits only parameters with a gradient: the same parameters,
    moments and step counts as torch.optim.Adam, bit for bit, when some parameters get no gradient."""
    from dynamo_ext.meta.optim import TouchedAdam

    g = torch.Generator().manual_seed(5)
    start = [torch.randn(4, 3, generator=g) for _ in range(6)]
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    theirs = [torch.nn.Parameter(t.clone()) for t in start]
    opt_a, opt_b = TouchedAdam(ours, lr=0.05, fused=True), torch.optim.Adam(theirs, lr=0.05, fused=True)
    for step in range(5):
        used = [i for i in range(6) if (i + step) % 3 != 0]
        grads = {i: torch.randn(4, 3, generator=g) for i in used}
        for params, opt in ((ours, opt_a), (theirs, opt_b)):
            opt.zero_grad(set_to_none=True)
            for i in used:
                params[i].grad = grads[i].clone()
            opt.step()
        assert all(p.grad is not None for i, p in enumerate(ours) if i in used)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for k in sb["state"]:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(sa["state"][k][name], sb["state"][k][name])
    opt_a.zero_grad()
    assert all(p.grad is None for p in ours)
