"""The packed maps of a fit (meta.packed.PackedMaps): views of one table, and the same Adam as per-map tensors."""
import copy

import pytest
import torch

from dynamo_ext.meta.config import FitConfig
from dynamo_ext.meta.loop import train_loop
from dynamo_ext.meta.loss import Targets
from dynamo_ext.meta.packed import PackedMaps
from dynamo_ext.meta.rnn import MetaRNN
from dynamo_ext.population.recording import Recording


def problem(n_models, seed=0):
    g = torch.Generator().manual_seed(seed)
    S, T = 10, 5
    widths = [int(w) for w in torch.randint(2, 40, (n_models,), generator=g)]
    rec = Recording(torch.randn(S, T, 2, generator=g, dtype=torch.float64),
                    [torch.randn(S, T, d, generator=g, dtype=torch.float64) * 2 + 1 for d in widths],
                    torch.randn(n_models, S, T, 3, generator=g, dtype=torch.float64), "real")
    torch.manual_seed(seed)
    meta = MetaRNN(n_models, 2, 3, widths, state_size=6, cell="gru", output_kind="real").double()
    return meta, Targets(rec, torch.float64)


def test_maps_are_views_of_the_table_until_released():
    meta, _ = problem(4)
    before = [(mp.linear.weight.clone(), mp.linear.bias.clone()) for mp in meta.maps]
    packed = PackedMaps(meta.maps)
    for (w, b), mp in zip(before, meta.maps):
        assert torch.equal(mp.linear.weight, w) and torch.equal(mp.linear.bias, b)
    packed.table.add_(1.0)  # every map sees its rows of the table
    assert torch.equal(meta.maps[2].linear.weight, before[2][0] + 1)
    assert torch.equal(meta.maps[2].linear.bias, before[2][1] + 1)
    assert bool((packed.table[-1] == 1).all())  # the zero row (changed here only to show it is shared)
    leaf = packed.gather_table([2, 0])
    w, c = leaf[:, :-1], leaf[:, -1]
    d2, d0 = meta.maps[2].out_features, meta.maps[0].out_features
    assert leaf.is_leaf and leaf.requires_grad and w.shape == (d2 + d0 + 1, 6) and c.shape == (d2 + d0 + 1,)
    assert torch.equal(w[:d2], meta.maps[2].linear.weight) and torch.equal(c[d2:d2 + d0], meta.maps[0].linear.bias)
    packed.release()
    packed.table.zero_()
    assert torch.equal(meta.maps[2].linear.weight, before[2][0] + 1)
    assert all(mp.linear.weight.is_contiguous() and mp.linear.bias.is_contiguous() for mp in meta.maps)


@pytest.mark.parametrize("n_models", [5, 40])
def test_packed_fit_equals_per_map_adam(n_models):
    """A few steps of train_loop with and without packing, float64: the same loss history and the
    same parameters (maps included), on fresh random models of mixed widths."""
    meta, targets = problem(n_models, seed=n_models)
    config = FitConfig(steps=6, batch_size=24, lr=1e-2)
    results = []
    for pack in (False, True):
        m = copy.deepcopy(meta)
        out = train_loop(m, list(m.parameters()), targets, config, progress=False, desc="test", pack_maps=pack,
                         sample_models=lambda g, b: torch.randint(n_models, (b,), generator=g))
        results.append((out["history"]["loss"], m))
    (h0, m0), (h1, m1) = results
    torch.testing.assert_close(torch.tensor(h1), torch.tensor(h0), rtol=1e-10, atol=0)
    moved = 0
    for (name, p0), p1 in zip(m0.named_parameters(), m1.parameters()):
        torch.testing.assert_close(p1, p0, rtol=1e-9, atol=1e-12, msg=name)
        assert p1.is_contiguous()
    for mp0, mp in zip(meta.maps, m1.maps):
        moved += int(not torch.equal(mp0.linear.weight, mp.linear.weight))
    assert moved == n_models or n_models > 24  # every drawn model's map was updated


@pytest.mark.parametrize("cut_packed", [True, False])
def test_checkpoints_resume_across_packing(tmp_path, monkeypatch, cut_packed):
    """A checkpoint written with packed maps resumes a fit without them, and the other way round
    (what a distributed fit, which does not pack, needs): the resumed history equals an uninterrupted one."""
    import dynamo_ext.meta.loop as loop

    meta, targets = problem(40, seed=1)
    config = FitConfig(steps=8, batch_size=24, lr=1e-2, checkpoint_every=3)

    def run(m, pack, path, resume=False):
        return loop.train_loop(m, list(m.parameters()), targets, config, progress=False, desc="test",
                               pack_maps=pack, checkpoint=path, resume=resume,
                               sample_models=lambda g, b: torch.randint(40, (b,), generator=g))["history"]["loss"]

    whole = run(copy.deepcopy(meta), False, tmp_path / "whole.safetensors")
    real, calls = loop.dynamo_loss, {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # during step 5, after the checkpoint of step 3
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "dynamo_loss", failing)
    with pytest.raises(KeyboardInterrupt):
        run(copy.deepcopy(meta), cut_packed, tmp_path / "cut.safetensors")
    monkeypatch.setattr(loop, "dynamo_loss", real)
    resumed_meta = copy.deepcopy(meta)
    resumed = run(resumed_meta, not cut_packed, tmp_path / "cut.safetensors", resume=True)
    torch.testing.assert_close(torch.tensor(resumed), torch.tensor(whole), rtol=1e-10, atol=0)
