import pytest
import torch

from dynamo_ext import MetaRNN


def make_meta(cell="tanh", backend="auto", dtype=torch.float64):
    torch.manual_seed(0)
    return MetaRNN(3, input_size=2, n_outputs=4, hidden_sizes=[5, 6, 7], state_size=8, embedding_dim=2,
                   cell=cell, backend=backend).to(dtype)


@pytest.mark.parametrize("cell", ["tanh", "gru"])
def test_fused_and_reference_backends_agree(cell, rng):
    fused, ref = make_meta(cell, backend="fused"), make_meta(cell, backend="reference")
    ref.load_state_dict(fused.state_dict())
    x = torch.randn(4, 9, 2, generator=rng, dtype=torch.float64)
    ids = torch.tensor([0, 2, 1, 2])
    zf, yf = fused(x, ids)
    zr, yr = ref(x, ids)
    torch.testing.assert_close(zf, zr, rtol=1e-10, atol=1e-12)
    yf.sum().backward()
    yr.sum().backward()
    for (name, pf), pr in zip(fused.named_parameters(), ref.parameters()):
        if pf.grad is not None or pr.grad is not None:
            torch.testing.assert_close(pf.grad, pr.grad, rtol=1e-9, atol=1e-12, msg=name)


@pytest.mark.parametrize("cell", ["tanh", "gru"])
def test_embedding_selects_the_dynamics(cell, rng):
    meta = make_meta(cell)
    with torch.no_grad():
        meta.theta.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64))
    x = torch.randn(2, 5, 2, generator=rng, dtype=torch.float64)
    z0, y0 = meta(x, 0)
    z1, _ = meta(x, 1)
    z2, y2 = meta(x, 2)
    assert z0.shape == (2, 5, 8) and y0.shape == (2, 5, 4)
    assert not torch.allclose(z0, z1)
    torch.testing.assert_close(z0, z2)  # same theta, same dynamics
    torch.testing.assert_close(meta(x, theta=meta.theta[0].detach())[1], y0)


def test_add_model_and_hidden_map(rng):
    meta = make_meta()
    idx = meta.add_model(11, model_id="new")
    assert idx == 3 and meta.n_models == 4 and meta.hidden_sizes[-1] == 11 and meta.model_ids[-1] == "new"
    torch.testing.assert_close(meta.theta[3], meta.theta[:3].mean(0))
    z, _ = meta(torch.randn(2, 3, 2, generator=rng, dtype=torch.float64), 3)
    meta.maps[3].scale.fill_(2.0)
    meta.maps[3].mean.fill_(1.0)
    torch.testing.assert_close(meta.maps[3].to_base(z), meta.maps[3](z) * 2 + 1)


def test_bad_input(rng):
    meta = make_meta()
    x = torch.randn(2, 3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"'x' must have shape \[B, T, 2\]"):
        meta(torch.randn(2, 3, 5, dtype=torch.float64), 0)
    with pytest.raises(ValueError, match="'x' must have dtype torch.float64"):
        meta(x.float(), 0)
    with pytest.raises(ValueError, match=r"'model_index' must lie in \[0, 3\)"):
        meta(x, torch.tensor([0, 3]))
    # positions are model_index; model_ids are the string ids: the old keyword warns, once per call
    with pytest.warns(DeprecationWarning, match="'model_index'"):
        old = meta(x, model_ids=1)
    torch.testing.assert_close(old[1], meta(x, model_index=1)[1], rtol=0, atol=0)
    with pytest.raises(ValueError, match="exactly one"):
        meta(x)
    with pytest.raises(ValueError, match="'theta' must have shape"):
        meta(x, theta=torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="'backend'"):
        make_meta("gru", backend="cudnn")
    with pytest.raises(ValueError, match="'cell'"):
        make_meta("lstm")
    with pytest.raises(ValueError, match="'hidden_sizes' must have 3"):
        MetaRNN(3, 2, 4, hidden_sizes=[5])
