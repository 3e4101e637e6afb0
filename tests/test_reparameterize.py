import numpy as np
import pytest
import torch

from dynamo_ext.uses.reparameterization import (KINDS, copy_check, nearest_neighbours, reparameterize, with_reparameterized_copies)
from dynamo_ext.population.base_rnn import BaseRNN


@pytest.mark.parametrize("arch", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("kind", KINDS)
def test_reparameterized_copy_computes_the_same_function(arch, kind):
    torch.manual_seed(1)
    model = BaseRNN(arch, 3, 10, 4).double()
    copy = reparameterize(model, kind, seed=2)
    x = torch.randn(6, 15, 3, dtype=torch.float64)
    h, y = model.record(x)
    h2, y2 = copy.record(x)
    torch.testing.assert_close(y2, y, rtol=1e-12, atol=1e-12)
    assert (h2 - h).abs().max() > 1e-2  # the coordinates did change
    # h2 = M h for a signed permutation M (per state block for the LSTM's [h; c])
    H = model.hidden_size
    for blk in range(h.shape[-1] // H):
        a, b = h[..., blk * H:(blk + 1) * H].reshape(-1, H), h2[..., blk * H:(blk + 1) * H].reshape(-1, H)
        m = torch.linalg.lstsq(a, b).solution.T  # b = a m^T
        assert torch.allclose(m.abs().sum(1), torch.ones(H, dtype=torch.float64), atol=1e-8)
        assert torch.allclose(m.abs().max(1).values, torch.ones(H, dtype=torch.float64), atol=1e-8)
    assert (model.rnn.weight_hh_l0 != reparameterize(model, kind, seed=2).rnn.weight_hh_l0).any()


def test_reparameterize_bad_input():
    with pytest.raises(ValueError, match="rescaling"):
        reparameterize(BaseRNN("rnn", 2, 4, 2), "rescale")
    with pytest.raises(ValueError, match="'kind' must be one of"):
        reparameterize(BaseRNN("rnn", 2, 4, 2), "shuffle")
    with pytest.raises(ValueError, match="BaseRNN"):
        reparameterize(torch.nn.Linear(2, 2))


def test_copies_join_the_population(tiny_population):
    both = with_reparameterized_copies(tiny_population)
    assert len(both) == 6 and both.ids[3] == f"{tiny_population.ids[0]}~permute"
    x = tiny_population.task.x_test[:20]
    torch.testing.assert_close(both.members[4].model(x), both.members[1].model(x), rtol=1e-5, atol=1e-5)


def test_nearest_neighbour_check():
    pts = np.array([[0.0, 0], [5, 5], [0.1, 0], [5, 5.2], [9, 0]])
    dist = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    assert nearest_neighbours(dist).tolist() == [2, 3, 0, 1, 1]
    ids = ["a", "b", "a~permute", "b~sign_flip", "c"]
    bad = dist.copy()
    bad[2, 4] = bad[4, 2] = 0.01  # the copy of "a" now sits next to "c"
    rows = {r["measure"]: r for r in copy_check(ids, {"good": dist, "bad": bad})}
    assert rows["good"]["nearest_is_original"] == 1.0 and rows["good"]["copies"] == 2
    assert rows["bad"]["nearest_is_original"] == 0.5 and rows["bad"]["misses"] == ["a~permute"]
    with pytest.raises(ValueError, match="no reparameterized copies"):
        copy_check(["a", "b"], {"d": dist[:2, :2]})


@pytest.mark.parametrize("family", ["cnn1d", "cnn2d"])
@pytest.mark.parametrize("act", ["relu", "tanh", "gelu"])
def test_cnn_reparameterizations_compute_the_same_function(family, act):
    from dynamo_ext.population.base_cnn import BaseCNN
    from dynamo_ext.uses.reparameterization import kinds_for

    torch.manual_seed(0)
    model = BaseCNN(family, act, 8, 16, 6, 4).double()
    x = torch.randn(5, 16, 8, dtype=torch.float64)
    h, y = model.record(x)
    kinds = kinds_for(model)
    assert ("rescale" in kinds) == (act == "relu") and ("sign_flip" in kinds) == (act == "tanh")
    for kind in kinds:
        copy = reparameterize(model, kind, seed=3)
        torch.testing.assert_close(copy(x), model(x), atol=1e-12, rtol=0)
        assert (copy.record(x)[0] - h).abs().max() > 1e-3
    if act == "relu":  # pooled channels scale by positive factors, one per channel and layer
        h2 = reparameterize(model, "rescale", seed=3).record(x)[0][:, 0]
        ratio = h2 / h[:, 0].clamp(min=1e-9)
        live = h[:, 0] > 1e-6
        per_channel = torch.where(live, ratio, torch.nan).nanmean(0)
        torch.testing.assert_close(h2, h[:, 0] * torch.nan_to_num(per_channel), atol=1e-9, rtol=0)


def test_copy_check_reports_the_copy_to_original_distance_relative_to_the_originals():
    ids = ["a", "b", "c", "a~permute", "b~permute", "c~permute"]
    d = np.full((6, 6), 4.0)
    np.fill_diagonal(d, 0)
    d[0, 1] = d[1, 0] = 2.0  # originals: median distance 4
    for c, o, v in ((3, 0, 0.4), (4, 1, 0.8), (5, 2, 6.0)):
        d[c, o] = d[o, c] = v
    row = copy_check(ids, {"m": d})[0]
    assert row["nearest_is_original"] == pytest.approx(2 / 3) and row["misses"] == ["c~permute"]
    assert row["copy_to_original_rel"] == pytest.approx((0.1 + 0.2 + 1.5) / 3)
    assert row["copy_to_original_rel_max"] == pytest.approx(1.5)
