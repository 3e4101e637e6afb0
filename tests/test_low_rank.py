"""The low-rank embedding-conditioned recurrence of MetaRNN (recurrence_rank > 0): its rows run the
weights W_h(theta) that the fixed-point analysis reads, it saves and loads, and bad settings are named."""
import pytest
import torch

import dynamo_ext as de
from dynamo_ext import reference
from dynamo_ext.meta.config import FitConfig


def low_rank_meta(cell, rank=3, seed=0):
    torch.manual_seed(seed)
    meta = de.MetaRNN(4, input_size=2, n_outputs=3, hidden_sizes=[5, 6, 7, 8], state_size=6, embedding_dim=2,
                      cell=cell, backend="reference", recurrence_rank=rank).double()
    with torch.no_grad():
        meta.theta.normal_()  # away from 0, where s(theta) would barely vary
    return meta


@pytest.mark.parametrize("cell", ["tanh", "gru"])
def test_each_row_runs_its_own_recurrent_weights(cell):
    """A batch of rows at different embeddings equals, row by row, the plain reference with W_h replaced by
    recurrent_weight(theta_b) (what cell_weights hands the Newton op), on fresh random inputs (float64)."""
    meta = low_rank_meta(cell)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 9, 2, generator=g, dtype=torch.float64)
    ids = torch.tensor([0, 1, 2, 3])
    z, _ = meta(x, ids)
    for b in range(4):
        theta = meta.theta[b].detach()
        w_hh = meta.recurrent_weight(theta).detach()
        assert not torch.allclose(w_hh, meta.w_hh)  # the low-rank term is not zero
        z0 = torch.tanh(meta.init_map(theta))[None]
        want = reference.meta_rnn_sequence(x[b:b + 1].transpose(0, 1), z0, meta.cond_map(theta)[None], meta.w_ih,
                                           w_hh, meta.b_ih, meta.b_hh, cell)[:, 0]
        torch.testing.assert_close(z[b], want, rtol=1e-12, atol=1e-12)


def test_gradients_reach_the_low_rank_factors_and_theta():
    meta = low_rank_meta("gru")
    x = torch.randn(3, 5, 2, dtype=torch.float64)
    z, y = meta(x, torch.tensor([0, 2, 3]))
    (z.pow(2).sum() + y.sum()).backward()
    for p in (meta.rank_p, meta.rank_q, meta.rank_map.weight, meta.theta):
        assert p.grad is not None and float(p.grad.abs().sum()) > 0
    assert torch.autograd.gradcheck(lambda th: meta(x[:1], theta=th)[0], (meta.theta[1].detach().clone()
                                                                          .requires_grad_(True),))


def test_fixed_points_of_the_low_rank_meta_model_are_fixed_under_its_own_step():
    meta = low_rank_meta("tanh")
    fps = de.find_fixed_points(meta, model_id=1, n_inits=64, noise=1.0)
    assert len(fps) >= 1
    theta = meta.theta[1].detach()
    x_proj = meta.b_ih + meta.cond_map(theta)
    z = fps.states
    step = reference.tanh_cell(x_proj[None], z, meta.w_hh, meta.b_hh,
                               reference.low_rank_term(z, (meta.rank_p, meta.rank_q, meta.rank_map(theta)[None])))
    assert float((step - z).abs().max()) < 1e-8


def test_save_and_load_keep_the_rank(tmp_path):
    meta = low_rank_meta("gru", rank=2)
    de.save_meta(meta, tmp_path)
    back = de.load_meta(tmp_path)
    assert back.recurrence_rank == 2 and back.backend == "reference"
    for (k, v), w in zip(meta.state_dict().items(), back.state_dict().values()):
        torch.testing.assert_close(w, v, msg=k)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="'backend' must be 'reference' or 'auto' with recurrence_rank=2"):
        de.MetaRNN(2, 1, 1, [3, 3], recurrence_rank=2, backend="fused")
    with pytest.raises(ValueError, match="'recurrence_rank' must be an int >= 0, got -1"):
        de.MetaRNN(2, 1, 1, [3, 3], recurrence_rank=-1, backend="reference")
    with pytest.raises(ValueError, match="'backend' must be 'reference' or 'auto'"):
        FitConfig(recurrence_rank=4).validate()
    assert de.MetaRNN(2, 1, 1, [3, 3], recurrence_rank=2, backend="auto").backend == "reference"
    assert FitConfig(recurrence_rank=4, backend="auto").validate().recurrence_rank == 4
