"""The plain-PyTorch reference cells follow PyTorch's own RNN and GRU with zero conditioning."""
import pytest
import torch

from dynamo_ext import reference


@pytest.mark.parametrize("cell,cls", [("tanh", torch.nn.RNN), ("gru", torch.nn.GRU)])
def test_reference_matches_torch_nn_with_zero_conditioning(cell, cls, rng):
    torch.manual_seed(0)
    net = cls(3, 8).double()
    x = torch.randn(6, 4, 3, generator=rng, dtype=torch.float64)
    h0 = torch.randn(4, 8, generator=rng, dtype=torch.float64)
    expected, _ = net(x, h0.unsqueeze(0))
    G = reference.gate_count(cell)
    cond = torch.zeros(4, G * 8, dtype=torch.float64)
    got = reference.meta_rnn_sequence(x, h0, cond, net.weight_ih_l0, net.weight_hh_l0, net.bias_ih_l0,
                                      net.bias_hh_l0, cell)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_gru_conditioning_enters_input_side_bias(rng):
    """cond is an input-side bias: adding it equals shifting b_ih by the same vector."""
    x = torch.randn(5, 2, 3, generator=rng, dtype=torch.float64)
    h0 = torch.randn(2, 4, generator=rng, dtype=torch.float64)
    w_ih, w_hh = torch.randn(12, 3, generator=rng, dtype=torch.float64), torch.randn(12, 4, generator=rng,
                                                                                   dtype=torch.float64)
    b = torch.randn(12, generator=rng, dtype=torch.float64)
    shift = torch.randn(12, generator=rng, dtype=torch.float64)
    a = reference.meta_rnn_sequence(x, h0, shift.expand(2, 12), w_ih, w_hh, b, b, "gru")
    c = reference.meta_rnn_sequence(x, h0, torch.zeros(2, 12, dtype=torch.float64), w_ih, w_hh, b + shift, b, "gru")
    torch.testing.assert_close(a, c)


def test_unknown_cell():
    with pytest.raises(ValueError, match="cell"):
        reference.gate_count("relu")
    # the LSTM is a base models' cell (fixed points), not one of the meta-model's
    assert reference.gate_count("lstm") == 4 and reference.state_size("lstm", 5) == 10
    x, h0 = torch.zeros(2, 1, 3), torch.zeros(1, 4)
    with pytest.raises(ValueError, match="'cell' must be one of \\('tanh', 'gru'\\)"):
        reference.meta_rnn_sequence(x, h0, torch.zeros(1, 16), torch.zeros(16, 3), torch.zeros(16, 4),
                                    torch.zeros(16), torch.zeros(16), "lstm")
