"""grouped_hidden_loss (one autograd node for the per-model hidden-state term) against plain autograd."""
import pytest
import torch

from dynamo_ext.meta.hidden_loss import _GroupedHiddenLoss, grouped_hidden_loss, has_linear_maps
from dynamo_ext.meta.rnn import HiddenMap


def plain_loss(z, counts, maps, targets):
    total = z.new_zeros(())
    for z_n, m, t in zip(z.split(counts), maps, targets):
        pred = m(z_n)
        total = total + (pred - t).pow(2).sum() / pred.shape[-1]
    return total


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(3)
    counts, T, D, sizes = [3, 1, 4], 5, 6, [2, 7, 4]
    z = torch.randn(sum(counts), T, D, generator=g, dtype=torch.float64, requires_grad=True)
    maps = [HiddenMap(D, d).double() for d in sizes]
    for m in maps:
        with torch.no_grad():
            m.linear.weight.copy_(torch.randn(m.linear.weight.shape, generator=g))
            m.linear.bias.copy_(torch.randn(m.linear.bias.shape, generator=g))
    targets = [torch.randn(c, T, d, generator=g, dtype=torch.float64) for c, d in zip(counts, sizes)]
    return z, counts, maps, targets


def test_value_and_gradients_match_plain_autograd(problem):
    z, counts, maps, targets = problem
    params = [z] + [p for m in maps for p in m.parameters()]
    fused = grouped_hidden_loss(z, counts, maps, targets)
    want = plain_loss(z, counts, maps, targets)
    assert torch.allclose(fused, want, rtol=1e-12)
    g_fused = torch.autograd.grad(fused * 1.7, params)
    g_want = torch.autograd.grad(want * 1.7, params)
    for a, b in zip(g_fused, g_want):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_gradcheck_float64(problem):
    z, counts, maps, targets = problem
    wb = [m.linear.weight.detach().clone().requires_grad_(True) for m in maps] + \
         [m.linear.bias.detach().clone().requires_grad_(True) for m in maps]
    assert torch.autograd.gradcheck(lambda z, *wb: _GroupedHiddenLoss.apply(z, counts, *wb, *targets), [z] + wb)


def test_bad_groups_are_named(problem):
    z, counts, maps, targets = problem
    with pytest.raises(ValueError, match="counts"):
        grouped_hidden_loss(z, [1, 1, 1], maps, targets)
    with pytest.raises(ValueError, match="same length"):
        grouped_hidden_loss(z, counts, maps[:2], targets)


def test_only_linear_maps_qualify(problem):
    _, _, maps, _ = problem
    assert has_linear_maps(maps)
    assert not has_linear_maps(maps + [torch.nn.Identity()])
    assert has_linear_maps(maps + [torch.nn.Identity()], ids=[0, 2])
