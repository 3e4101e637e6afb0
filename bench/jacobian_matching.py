"""A candidate for the meta-model's linearisation, measured: fine-tune with a Jacobian-matching term at the
base models' attractors, then read the linearisation again (``dynamics.linearisation``).

    python bench/jacobian_matching.py --run linearisation-run [--meta meta-d64-s2000] [--weight 1.0]
                                      [--steps 500] [--unseen 0.0]

Starts from a fit of ``bench/linearisation.py --out RUN`` (RUN/population, RUN/<--meta>). For every base
model n and every stable fixed point h* of it (zero input; its Jacobian J_b), an anchor z* in the
meta-model's state space (a free parameter: the matched stable point of the meta-model at theta_n where
there is one, else the least-norm preimage A_n^+ (htilde* - c_n)). The fine-tuning adds to the DYNAMO loss
``weight`` times, over 32 anchors a step,
    ||f_n(z*) - z*||^2 / D * 10              z* a fixed point of the meta-model at theta_n,
    ||A_n z* + c_n - htilde*||^2 / d_n        that maps onto the base's (standardised coordinates),
    ||A_n J(z*) - J_b A_n||_F^2 / ||J_b A_n||_F^2   its linearisation seen through A_n is the base's
and ``unseen`` times ||J(z*) (I - A_n^+ A_n)||_F^2 / D (the directions no map of model n reads contract):
J the meta-model's step Jacobian (the eager cell, differentiated through). Prints the issue's figures
over the models of accuracy >= 0.95 before and after, and the held-out emulation. A measurement, not a
default.
"""
import argparse
import sys
from pathlib import Path

import torch

import dynamo_ext as de
from dynamo_ext.dynamics.fidelity import match_stable_points
from dynamo_ext.meta.config import FitConfig
from dynamo_ext.population.recording import param_dtype
from unseen_contraction import figures, fine_tune, zero_input_step  # bench/: the shared candidate helpers


def anchors(meta, pop, n_inits=256):
    """Per base model with a fixed-point solver: (n, z* init [P, D], htilde* [P, d], J_b [P, d, d])."""
    out = []
    for n, member in enumerate(pop.members):
        task = pop.task_of(n)
        x = task.x_test[:64]
        x = torch.cat([x, torch.zeros_like(x)], 1)  # the probes, then one probe length of zero input
        with torch.no_grad():
            h = member.model.record(x.to(param_dtype(member.model)))[0].float()
            z = meta(x.to(meta.theta.dtype), n)[0]
        try:
            base = de.find_fixed_points(member.model, trajectories=h, n_inits=n_inits, noise=0.01)
        except ValueError:
            continue
        fps = de.find_fixed_points(meta, trajectories=z, n_inits=n_inits, noise=0.01, model_id=n)
        b_st, m_st = base.select(base.is_stable), fps.select(fps.is_stable)
        if not len(b_st):
            continue
        mp = meta.maps[n]
        target = ((b_st.states.float() - mp.mean) / mp.scale).detach()
        w = mp.linear.weight.detach()
        z0 = (torch.linalg.pinv(w) @ (target - mp.linear.bias.detach()).T).T  # least-norm preimages
        if len(m_st):
            for i, j in match_stable_points(b_st.states, m_st.to_base(n))["pairs"]:
                z0[i] = m_st.states[j].float()
        out.append((n, z0, target, b_st.jacobians.float()))
    return out


def anchor_loss(meta, chosen, unseen_weight):
    """The three anchor terms (and the unseen contraction) over ``chosen`` = [(n, z*, htilde*, J_b)]."""
    fp = pos = jac = unseen = 0.0
    for n, z, target, j_base in chosen:
        step_of = zero_input_step(meta, n)
        a = meta.maps[n].linear.weight
        fp = fp + (step_of(z) - z).pow(2).sum() / z.numel()
        pos = pos + (meta.maps[n](z) - target).pow(2).sum() / target.numel()
        j = torch.func.jacrev(step_of)(z)
        jb_a = j_base @ a
        jac = jac + (a @ j - jb_a).pow(2).sum() / jb_a.pow(2).sum().clamp(min=1e-6)
        if unseen_weight:
            p = torch.eye(a.shape[1]) - torch.linalg.pinv(a.detach()) @ a.detach()
            unseen = unseen + (j @ p).pow(2).sum() / a.shape[1]
    k = len(chosen)
    return (10 * fp + pos + jac) / k, unseen / k


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--meta", default="meta-d64-s2000")
    ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("--unseen", type=float, default=0.0)
    ap.add_argument("--steps", type=int, default=500)
    args = ap.parse_args(argv)
    pop = de.Population.load(Path(args.run) / "population")
    meta = de.load_meta(Path(args.run) / args.meta)
    print("before:", figures(meta, pop), flush=True)
    found = anchors(meta, pop)
    points = [(a, i) for a, (_, z0, _, _) in enumerate(found) for i in range(len(z0))]
    print(f"{len(points)} anchors on {len(found)} base models", flush=True)
    z_star = torch.nn.ParameterList([torch.nn.Parameter(z0.clone()) for _, z0, _, _ in found])
    config = FitConfig(steps=args.steps, lr=2e-3)

    def matching(g):
        pick = torch.randperm(len(points), generator=g)[:32].tolist()
        chosen = [(found[a][0], z_star[a][i], found[a][2][i], found[a][3][i]) for a, i in (points[p] for p in pick)]
        match, unseen = anchor_loss(meta, chosen, args.unseen)
        return args.weight * match + args.unseen * unseen, {"anchors": match, "unseen": unseen}

    fine_tune(meta, pop, config, matching, extra_params=z_star)
    print(f"after {args.steps} steps with weight {args.weight}, unseen {args.unseen}:", figures(meta, pop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
