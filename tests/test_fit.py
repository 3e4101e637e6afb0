import json

import pytest
import torch

import dynamo_ext as de
from dynamo_ext.meta.checkpoint import load_history


def test_fit_reduces_the_loss(tiny_fit, tiny_population):
    h = tiny_fit.history
    assert len(h["loss"]) == 60
    first, last = sum(h["loss"][:5]) / 5, sum(h["loss"][-5:]) / 5
    assert last < 0.7 * first
    assert tiny_fit.meta.model_ids == tiny_population.ids
    assert tiny_fit.meta.theta.shape == (3, 2)


def test_fit_is_deterministic(tiny_population):
    kw = dict(steps=5, batch_size=16, state_size=8, max_sequences=50, progress=False)
    a, b = de.fit(tiny_population, **kw), de.fit(tiny_population, **kw)
    assert a.history["loss"] == b.history["loss"]
    torch.testing.assert_close(a.meta.theta, b.meta.theta, rtol=0, atol=0)


def test_fit_with_the_fused_tanh_cell_in_float64(tiny_population):
    res = de.fit(tiny_population, cell="tanh", backend="fused", dtype="float64", steps=20, batch_size=16,
                 state_size=8, max_sequences=50, progress=False)
    assert res.meta.backend == "fused" and res.meta.theta.dtype == torch.float64
    assert res.history["loss"][-1] < res.history["loss"][0]


def test_checkpoint_roundtrip_is_atomic_and_exact(tiny_fit, tmp_path):
    de.save_meta(tiny_fit.meta, tmp_path, history=tiny_fit.history)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json", "meta.safetensors"]
    loaded = de.load_meta(tmp_path)
    x = torch.rand(3, 8, 8)
    torch.testing.assert_close(loaded(x, 1)[1], tiny_fit.meta(x, 1)[1], rtol=0, atol=0)
    assert load_history(tmp_path)["loss"] == tiny_fit.history["loss"]


def test_corrupted_checkpoints_are_reported(tiny_fit, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        de.load_meta(tmp_path / "missing")
    de.save_meta(tiny_fit.meta, tmp_path)
    (tmp_path / "meta.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ValueError, match="meta.safetensors.*corrupted"):
        de.load_meta(tmp_path)
    de.save_meta(tiny_fit.meta, tmp_path)
    cfg = json.loads((tmp_path / "meta.json").read_text())
    cfg["config"]["state_size"] = 99
    (tmp_path / "meta.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not match"):
        de.load_meta(tmp_path)


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    from dynamo_ext import _io

    def boom(tmp):
        open(tmp, "w").write("partial")
        raise OSError("disk full")
    with pytest.raises(OSError):
        _io.atomic_write(tmp_path / "metrics.json", boom)
    assert list(tmp_path.iterdir()) == []


def test_bad_fit_settings(tiny_population):
    with pytest.raises(ValueError, match="'steps'"):
        de.fit(tiny_population, steps=0, progress=False)
    with pytest.raises(ValueError, match="unknown fit settings"):
        de.fit(tiny_population, stepz=3, progress=False)
    with pytest.raises(ValueError, match="'population'"):
        de.fit([1, 2], progress=False)
    with pytest.raises(ValueError, match="empty population"):
        de.Population(tiny_population.task, [])


def test_refine_moves_only_the_embeddings_and_maps(tiny_population):
    kw = dict(steps=20, batch_size=16, state_size=8, max_sequences=50, progress=False)
    plain = de.fit(tiny_population, **kw)
    refined = de.fit(tiny_population, refine_steps=40, refine_sequences=16, **kw)
    losses = refined.history["refine_loss"]
    assert len(losses) == 40 and losses[-1] < losses[0]
    a, b = plain.meta.state_dict(), refined.meta.state_dict()
    for k in a:
        if k == "theta" or (k.startswith("maps.") and k.split(".")[2] == "linear"):
            assert not torch.equal(a[k], b[k]), k
        else:  # phi (and the maps' standardisation buffers) frozen
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    assert all(p.requires_grad for p in refined.meta.parameters())


def test_refine_puts_a_reparameterized_copy_on_its_original(tiny_population):
    from dynamo_ext.uses.reparameterization import with_reparameterized_copies

    both = with_reparameterized_copies(de.Population(tiny_population.task, tiny_population.members[1:2]))
    res = de.fit(both, steps=30, batch_size=16, state_size=8, max_sequences=50, refine_steps=300,
                 refine_sequences=16, progress=False)
    before = de.fit(both, steps=30, batch_size=16, state_size=8, max_sequences=50, progress=False)
    gap = lambda m: float((m.theta[0] - m.theta[1]).detach().norm())  # noqa: E731
    assert gap(res.meta) < 0.5 * gap(before.meta)
