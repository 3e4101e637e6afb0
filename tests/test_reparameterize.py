import numpy as np
import pytest
import torch

from dynamo_ext.reparameterize import (KINDS, copy_check, nearest_neighbours, reparameterize,
                                       with_reparameterized_copies)
from dynamo_ext.zoo import BaseRNN


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
