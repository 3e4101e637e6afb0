"""A candidate against the meta-model's unseen slow modes, measured: fine-tune with a contraction term on the
directions no map reads, then read the linearisation again (``dynamics.linearisation``).

    python bench/unseen_contraction.py --run linearisation-run [--weight 1.0] [--steps 500]

Starts from the default fit of ``bench/linearisation.py --out RUN`` (RUN/population, RUN/meta-d64-s2000)
and continues it for --steps steps of the DYNAMO loss (the same probes and settings) plus
``weight * mean ||J_n(z) P_n||_F^2``: J_n the meta-model's step Jacobian at zero input and theta_n, at
meta-model states z from the end of its relaxing probes (near its attractors), and P_n = I - A_n^+ A_n the
projection on the directions model n's map does not read; 4 models and 16 states per step. A Jacobian
with no component along P_n lets an unseen perturbation die in one step. Prints the issue's figures over
the models of accuracy >= 0.95 before and after, and the held-out emulation. Not a default: a measurement.

The other candidate scripts (jacobian_matching, kick_probes, spectral_prior, gain_modulation) read their
figures and train through this module's ``figures``, ``zero_input_step``, ``fine_tune``, ``fit_with_term``,
``candidate_parser`` and ``train_with_term``.
"""
import argparse
import sys
from pathlib import Path

import torch

import dynamo_ext as de
from dynamo_ext import reference
from dynamo_ext.dynamics.fidelity import fidelity
from dynamo_ext.dynamics.linearisation import effective_map
from dynamo_ext.meta.config import FitConfig
from dynamo_ext.meta.evaluate import emulation
from dynamo_ext.meta.loss import Targets, dynamo_loss
from dynamo_ext.meta.probes import relaxing_probes


def figures(meta, pop):
    rows = fidelity(meta, pop)
    good = [(m, r) for m, r in zip(pop.members, rows) if m.test_accuracy >= 0.95 and r.get("n_matched")]
    full, worst_full = max((r["linearisation_summary"]["max_delta_full"], m.id) for m, r in good)
    through, worst_through = max((r["linearisation_summary"]["max_delta_through_map"], m.id) for m, r in good)
    dist = max(r["max_matched_distance_rel"] or 0.0 for _, r in good)
    wrong = sum(r["base"]["n_stable"] != r["meta"]["n_stable"] for _, r in good)
    unseen = max(r["linearisation_summary"]["max_unseen_modulus"] or 0.0 for _, r in good)
    r2 = sorted(row["hidden_r2"] for row in emulation(meta, pop))
    return (f"{len(good)} models: leading |lambda| off by up to {full:.3f} in full ({worst_full}), {through:.3f} "
            f"through A_n ({worst_through}); "
            f"largest matched distance {dist:.3f}; {wrong} stable counts differ; slowest unseen mode {unseen:.3f}; "
            f"held-out hidden R^2 median {r2[len(r2) // 2]:.3f}, min {r2[0]:.3f}; stable points base/meta: "
            + " ".join(f"{r['base']['n_stable']}/{r['meta']['n_stable']}" for _, r in good))


def zero_input_step(meta, n):
    """The meta-model's step at zero input and theta_n, state [D] -> next state [D], differentiable in its
    parameters (W_h(theta_n) through ``recurrent_weight``, for meta-models whose recurrence depends on theta)."""
    x_proj = meta.b_ih + meta.cond_map(meta.theta[n])
    w_hh = meta.recurrent_weight(meta.theta[n])

    def step(state):
        return reference.cell_step(state[None], x_proj[None], w_hh, meta.b_hh, meta.cell)[0]

    return step


def fine_tune(meta, pop, config, extra, extra_params=(), extra_lr=1e-2):
    """``config.steps`` steps of Adam (lr ``config.lr``) on the DYNAMO loss of ``pop``'s relaxing probes plus
    ``extra(generator)`` -> (term, {name: value to print}); ``extra_params`` (e.g. anchors) at ``extra_lr``.
    Prints every 100 steps; leaves ``meta`` in eval mode."""
    targets = Targets(pop.record(x=relaxing_probes(pop, config)), torch.float32)
    groups = [{"params": list(meta.parameters())}] + ([{"params": list(extra_params), "lr": extra_lr}]
                                                      if extra_params else [])
    opt = torch.optim.Adam(groups, lr=config.lr)
    g = torch.Generator().manual_seed(0)
    meta.train()
    for step in range(config.steps):
        model_idx = torch.randint(len(pop), (config.batch_size,), generator=g)
        seq_idx = torch.randint(targets.x.shape[0], (config.batch_size,), generator=g)
        loss = dynamo_loss(meta, targets, model_idx, seq_idx, 1.0, 1.0, 1e-3)["loss"]
        term, shown = extra(g)
        opt.zero_grad()
        (loss + term).backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step}: loss {loss.item():.4f}, "
                  + ", ".join(f"{k} {float(v.detach() if torch.is_tensor(v) else v):.4f}" for k, v in shown.items()),
                  flush=True)
    meta.eval()


def fit_with_term(pop, config, term, meta_class=None):
    """``de.fit(pop, config)`` with ``term(meta, generator)`` added to the DYNAMO loss of every step (the maps
    kept unpacked, as the term may read them), optionally with a MetaRNN subclass; returns the FitResult."""
    from dynamo_ext.meta import fitting, loop
    original, gen = loop.dynamo_loss, torch.Generator().manual_seed(1)

    def with_term(meta, *a, **kw):
        losses = original(meta, *a, **kw)
        losses["loss"] = losses["loss"] + term(meta, gen)
        return losses

    saved = loop.dynamo_loss, fitting.has_linear_maps, fitting.MetaRNN
    loop.dynamo_loss, fitting.has_linear_maps = with_term, (lambda maps: False)
    fitting.MetaRNN = meta_class or fitting.MetaRNN
    try:
        res = de.fit(pop, config)
    finally:
        loop.dynamo_loss, fitting.has_linear_maps, fitting.MetaRNN = saved
    res.meta.eval()
    return res


def candidate_parser(doc):
    """The arguments every candidate term's script takes: --run, --meta, --weight, --steps, --from-scratch."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--run", required=True, help="the folder of bench/linearisation.py --out")
    ap.add_argument("--meta", default="meta-d64-s2000", help="the fit under --run to fine-tune")
    ap.add_argument("--weight", type=float, default=1.0, help="the term's weight")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--from-scratch", action="store_true",
                    help="a whole fit (FitConfig's settings, --steps steps) with the term added to its loss, "
                         "instead of a fine-tuning of --meta")
    return ap


def train_with_term(run, pop, meta_name, config, term, from_scratch, meta_class=None, label="term"):
    """The meta-model of a candidate term ``term(meta, generator)``: a whole fit with it (``fit_with_term``), or
    the fit RUN/``meta_name`` fine-tuned with it (``fine_tune``, figures printed before); prints the term as
    ``label``."""
    if from_scratch:
        res = fit_with_term(pop, config, term, meta_class)
        print(f"fitted with the {label} in {res.seconds:.1f} s, last loss {res.history['loss'][-1]:.4f}")
        return res.meta
    meta = de.load_meta(Path(run) / meta_name)
    print("before:", figures(meta, pop), flush=True)

    def shown(gen):
        value = term(meta, gen)
        return value, {label: value}

    fine_tune(meta, pop, config, shown)
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=500)
    args = ap.parse_args(argv)
    pop = de.Population.load(Path(args.run) / "population")
    meta = de.load_meta(Path(args.run) / "meta-d64-s2000")
    print("before:", figures(meta, pop))
    config = FitConfig(steps=args.steps, lr=2e-3)
    maps = [effective_map(mp).float() for mp in meta.maps]
    unseen = [torch.eye(meta.state_size) - torch.linalg.pinv(a) @ a for a in maps]
    probes = relaxing_probes(pop, config)[:64]

    def contraction(g):
        total = 0.0
        for n in torch.randint(len(pop), (4,), generator=g).tolist():
            with torch.no_grad():
                z = meta(probes[torch.randint(len(probes), (16,), generator=g)], n)[0][:, -1]
            jac = torch.func.vmap(torch.func.jacrev(zero_input_step(meta, n)))(z)  # [16, D, D]
            total = total + (jac @ unseen[n]).pow(2).sum((1, 2)).mean() / 4
        return args.weight * total, {"contraction": total}

    fine_tune(meta, pop, config, contraction)
    print(f"after {args.steps} steps with weight {args.weight}:", figures(meta, pop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
