"""A candidate for the meta-model's time constants, measured: embedding-conditioned gain of the recurrence.

    python bench/gain_modulation.py --run linearisation-run [--steps 2000] [--units [--sparsity S]]

Fits the population of ``bench/linearisation.py --out RUN`` with a meta-model whose recurrent pre-activations
are scaled per unit by the embedding: W_h(theta) = diag(g(theta)) W_h, g(theta) = exp(G theta + g_0) (G, g_0
start at zero, so the fit starts from the default meta-model), for every gate of the GRU cell; theta still
enters additively too (U theta). A gain sets the slope of the recurrence at an attractor, so theta can set
each model's contraction directly (gain modulation; as in motor cortex models, Stroud et al. 2018, Nat.
Neurosci. 21:1774). An eager loop (``reference.gru_cell``'s per-row recurrent term); the fixed points read
W_h(theta) through ``recurrent_weight``.

With --units, the gain is per unit on its way into the recurrence instead (``UnitGainMetaRNN``,
W_h(theta) = W_h diag(g(theta)), g in (0, 2)), and --sparsity S adds S times the batch's mean gain to the loss,
so that each model may switch out the units it does not need (a unit at g = 0 only leaks). Prints the units
each model switches out (gain < 0.1) and the issue's figures (``bench/unseen_contraction.py``). Not a default:
a measurement.
"""
import argparse
import sys
from pathlib import Path

import torch
from torch import nn

import dynamo_ext as de
from dynamo_ext import reference
from dynamo_ext.meta.config import FitConfig
from dynamo_ext.meta.rnn import MetaRNN

sys.path.insert(0, str(Path(__file__).resolve().parent))
from unseen_contraction import figures, fit_with_term  # noqa: E402


class GainMetaRNN(MetaRNN):
    """MetaRNN with W_h(theta) = diag(exp(G theta + g_0)) W_h (eager)."""

    def __init__(self, *args, **kwargs):
        kwargs["backend"] = "reference"
        super().__init__(*args, **kwargs)
        self.gain_map = nn.Linear(self.embedding_dim, self.w_hh.shape[0])
        nn.init.zeros_(self.gain_map.weight)
        nn.init.zeros_(self.gain_map.bias)

    def recurrent_weight(self, theta):
        return torch.exp(self.gain_map(theta.reshape(1, -1).to(self.w_hh.dtype)))[0, :, None] * self.w_hh

    def forward(self, x, model_ids=None, theta=None):
        th = self.resolve_theta(model_ids, theta, batch=x.shape[0])
        h = torch.tanh(self.init_map(th))
        gain = torch.exp(self.gain_map(th)) - 1  # [B, G*D]
        step = {"tanh": reference.tanh_cell, "gru": reference.gru_cell}[self.cell]
        x_proj = x @ self.w_ih.T + self.b_ih + self.cond_map(th).unsqueeze(1)
        out = []
        for t in range(x.shape[1]):
            h = step(x_proj[:, t], h, self.w_hh, self.b_hh, gain * (h @ self.w_hh.T))
            out.append(h)
        z = torch.stack(out, 1)
        return z, self.head(z) + self.head_theta(th).unsqueeze(1)


class UnitGainMetaRNN(MetaRNN):
    """MetaRNN whose units enter the recurrence through an embedding-conditioned gain:
    W_h(theta) = W_h diag(g(theta)), g(theta) = 2 sigmoid(K theta + k_0) in (0, 2) (1 at the start). A unit
    with g_i(theta_n) near 0 takes no part in model n's recurrence and only leaks (its own update gate), so its
    mode is fast; ``sparsity`` in ``main`` asks each model to use few units (eager)."""

    def __init__(self, *args, **kwargs):
        kwargs["backend"] = "reference"
        super().__init__(*args, **kwargs)
        self.unit_gain = nn.Linear(self.embedding_dim, self.state_size)
        nn.init.zeros_(self.unit_gain.weight)
        nn.init.zeros_(self.unit_gain.bias)

    def gains(self, theta):
        return 2 * torch.sigmoid(self.unit_gain(theta.to(self.w_hh.dtype)))

    def recurrent_weight(self, theta):
        return self.w_hh * self.gains(theta.reshape(1, -1))[0]

    def forward(self, x, model_ids=None, theta=None):
        th = self.resolve_theta(model_ids, theta, batch=x.shape[0])
        h = torch.tanh(self.init_map(th))
        gain = self.gains(th) - 1  # [B, D]
        step = {"tanh": reference.tanh_cell, "gru": reference.gru_cell}[self.cell]
        x_proj = x @ self.w_ih.T + self.b_ih + self.cond_map(th).unsqueeze(1)
        out = []
        for t in range(x.shape[1]):
            h = step(x_proj[:, t], h, self.w_hh, self.b_hh, (gain * h) @ self.w_hh.T)
            out.append(h)
        z = torch.stack(out, 1)
        return z, self.head(z) + self.head_theta(th).unsqueeze(1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--units", action="store_true",
                    help="UnitGainMetaRNN: a gain per unit on its way into the recurrence (columns of W_h) instead")
    ap.add_argument("--sparsity", type=float, default=0.0,
                    help="with --units: this times the mean gain of the batch's models, added to the loss")
    args = ap.parse_args(argv)
    pop = de.Population.load(Path(args.run) / "population")
    config = FitConfig(steps=args.steps, backend="reference")
    if args.units:
        def sparsity(meta, gen):
            return args.sparsity * meta.gains(meta.theta).mean()

        res = fit_with_term(pop, config, sparsity, UnitGainMetaRNN)
        gains = res.meta.gains(res.meta.theta.detach())
        print("units with gain < 0.1 per model:", (gains < 0.1).sum(1).tolist())
    else:
        res = fit_with_term(pop, config, lambda meta, gen: 0.0, GainMetaRNN)
        gains = torch.exp(res.meta.gain_map(res.meta.theta.detach()))
    meta = res.meta
    print(f"fitted in {res.seconds:.1f} s, last loss {res.history['loss'][-1]:.4f}; gains over models: "
          f"min {gains.min():.3f}, median {gains.median():.3f}, max {gains.max():.3f}")
    print("gain modulation:", figures(meta, pop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
