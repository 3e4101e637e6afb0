"""A candidate for the meta-model's time constants, measured: embedding-conditioned gain of the recurrence.

    python bench/gain_modulation.py --run linearisation-run [--steps 2000]

Fits the population of ``bench/linearisation.py --out RUN`` with a meta-model whose recurrent pre-activations
are scaled per unit by the embedding: W_h(theta) = diag(g(theta)) W_h, g(theta) = exp(G theta + g_0) (G, g_0
start at zero, so the fit starts from the default meta-model), for every gate of the GRU cell; theta still
enters additively too (U theta). A gain sets the slope of the recurrence at an attractor, so theta can set
each model's contraction directly (gain modulation; as in motor cortex models, Stroud et al. 2018, Nat.
Neurosci. 21:1774). An eager loop (``reference.gru_cell``'s per-row recurrent term); the fixed points read
W_h(theta) through ``recurrent_weight``. With --prior W, ``bench/spectral_prior.py``'s pointwise term is added
to the loss. Prints the issue's figures (``bench/unseen_contraction.py``). Not a default: a measurement.
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--steps", type=int, default=2000)
    args = ap.parse_args(argv)
    pop = de.Population.load(Path(args.run) / "population")
    res = fit_with_term(pop, FitConfig(steps=args.steps, backend="reference"), lambda meta, gen: 0.0, GainMetaRNN)
    meta = res.meta
    gains = torch.exp(meta.gain_map(meta.theta.detach()))
    print(f"fitted in {res.seconds:.1f} s, last loss {res.history['loss'][-1]:.4f}; gains over models: "
          f"min {gains.min():.3f}, median {gains.median():.3f}, max {gains.max():.3f}")
    print("gain modulation:", figures(meta, pop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
