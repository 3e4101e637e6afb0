"""A candidate for the meta-model's time constants, measured: a spectral prior at the attractors.

    python bench/spectral_prior.py --run linearisation-run [--weight 1.0] [--steps 500] [--margin 0.02]
                                   [--meta meta-d64-s2000] [--from-scratch]

Uses the population and a fit of ``bench/linearisation.py --out RUN``. For each base model n, rho_n is the
largest leading eigenvalue modulus of its Jacobian over its stable fixed points at zero input (found by
``find_fixed_points`` from 128 starts on its trajectories). The term: for 4 models x 16 probes per step, the
meta-model at theta_n is run on the task's inputs and then one probe length of zero input (its state then
sits at or near an attractor), its step Jacobian J at that state and zero input is taken by autograd, and
every eigenvalue of J slower than the base's slowest, |lambda| > rho_n + margin, costs
(|lambda| - rho_n - margin)^2. The base model has no such mode at its attractors, so a meta-model that emulates
it pays nothing; the term asks the modes the data leave free (those the map barely sees, and those the probes
do not excite) to be no slower than the base's. The run continues the fit (--steps steps, lr 2e-3), or with
--from-scratch fits anew with FitConfig's settings and the term added to the loss, and prints the issue's
figures (``bench/unseen_contraction.py``). Not a default: a measurement.
"""
import sys
from pathlib import Path

import torch

import dynamo_ext as de
from dynamo_ext.meta.config import FitConfig
from dynamo_ext.population.step import autograd_jacobian

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gain_modulation import GainMetaRNN  # noqa: E402
from unseen_contraction import candidate_parser, figures, train_with_term, zero_input_step  # noqa: E402


@torch.no_grad()
def base_slowest(pop, n_probe=64):
    """rho_n per base model: the largest leading |lambda| over its stable points at zero input (None: none)."""
    out = []
    for n, m in enumerate(pop.members):
        x = pop.task_of(n).x_test[:n_probe]
        x = torch.cat([x, torch.zeros_like(x)], 1)
        h, _ = m.model.record(x)
        fps = de.find_fixed_points(m.model, inputs=torch.zeros(x.shape[-1]), trajectories=h, n_inits=128)
        jac = fps.jacobians[fps.is_stable]
        out.append(float(torch.linalg.eigvals(jac.double()).abs().max()) if len(jac) else None)
    return out


def make_prior(pop, weight, margin, pointwise):
    """The term (module docstring) as a function of (meta, generator)."""
    rho = base_slowest(pop)
    print("base slowest leading |lambda|:", ", ".join(f"{m.id} {r:.3f}" if r is not None else f"{m.id} -"
                                                     for m, r in zip(pop.members, rho)), flush=True)
    chosen = [n for n, r in enumerate(rho) if r is not None]
    x_task = pop.task.x_train[:256]
    probes = torch.cat([x_task, torch.zeros_like(x_task)], 1)
    if pointwise:  # rho per probe: the base's leading |lambda| at its own state there
        with torch.no_grad():
            ends = [m.model.record(probes)[0][:, -1] for m in pop.members]
        rho = [torch.linalg.eigvals(autograd_jacobian(m.model.step, torch.zeros(len(probes), probes.shape[-1]),
                                                      ends[n])[1].double()).abs().amax(-1).float()
               for n, m in enumerate(pop.members)]
        print("base leading |lambda| at the probes' end, median per model:",
              ", ".join(f"{r.median():.3f}" for r in rho), flush=True)

    def prior(meta, gen):
        total = 0.0
        for n in [chosen[i] for i in torch.randint(len(chosen), (4,), generator=gen).tolist()]:
            rows = torch.randint(len(probes), (16,), generator=gen)
            with torch.no_grad():
                z = meta(probes[rows], n)[0][:, -1]
            jac = torch.func.vmap(torch.func.jacrev(zero_input_step(meta, n)))(z)  # [16, D, D]
            bound = rho[n][rows, None] if pointwise else rho[n]
            excess = torch.relu(torch.linalg.eigvals(jac).abs() - bound - margin)
            total = total + excess.pow(2).sum(-1).mean() / 4
        return weight * total
    return prior


def main(argv=None) -> int:
    ap = candidate_parser(__doc__)
    ap.add_argument("--margin", type=float, default=0.02)
    ap.add_argument("--gain", action="store_true",
                    help="fit anew a meta-model with the embedding-conditioned gain of bench/gain_modulation.py")
    ap.add_argument("--pointwise", action="store_true",
                    help="bound each probe's modes by the base's leading |lambda| at its own state at that probe's "
                         "end (zero input), not by rho_n")
    args = ap.parse_args(argv)
    pop = de.Population.load(Path(args.run) / "population")
    prior = make_prior(pop, args.weight, args.margin, args.pointwise)
    scratch = args.from_scratch or args.gain
    config = FitConfig(steps=args.steps, lr=1e-2 if scratch else 2e-3, backend="reference" if args.gain else "fused")
    meta = train_with_term(args.run, pop, args.meta, config, prior, scratch, GainMetaRNN if args.gain else None,
                           label="prior term")
    print(f"after {args.steps} steps with weight {args.weight}, margin {args.margin}:", figures(meta, pop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
