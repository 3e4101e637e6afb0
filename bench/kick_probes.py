"""A candidate for the meta-model's time constants, measured: perturbation probes (state kicks).

    python bench/kick_probes.py --run linearisation-run [--weight 10] [--steps 500] [--kick 0.2]
                                [--space base|meta|unseen] [--from-scratch] [--meta meta-d64-s2000]
                                [--kick-at 90] [--after 30] [--sequences 256]
    python bench/kick_probes.py --run linearisation-run --diagnose META [META ...] [--models ID ...]

Uses the population and a fit of ``bench/linearisation.py --out RUN`` (RUN/population, RUN/--meta). The kick
term: for 4 base models x 32 relaxing probes per step, the base model's state at step --kick-at (near an
attractor) and the meta-model's own state there at theta_n are kicked, by delta ~ N(0, kick^2) in the map's
standardised coordinates with the meta-model kicked by a ridge inverse of A_n ("base"; the base's kick is then
the part of delta the map can show), or by eps ~ N(0, kick^2 I_D) in the meta-model's state with the base kicked
by A_n eps ("meta"), or by that eps projected on the directions A_n does not read with the base not kicked
("unseen": noise injected into the unseen directions); both then run --after steps of the same noise input,
and the meta-model's response seen through the map, A_n (z' - z), is asked to match the base's, (h' - h) /
scale, as the hidden term of the DYNAMO loss does (sum over units / d_n). The relaxation from a kick carries
the base's contraction in the directions kicked, not only in those its inputs excite.

The run continues the fit for --steps steps (lr 2e-3) of the DYNAMO loss plus ``weight`` times the kick term,
or with --from-scratch fits anew with FitConfig's settings (--steps steps) and the term added to the loss; it
prints the issue's figures (``bench/unseen_contraction.py``). --diagnose reads fitted meta-models (folders
under RUN) without training: per model the kick term, the term of a meta-model that does not respond at all,
and the mean norms of the base's response / the meta-model's / their difference 0, 2, 5, 10 and 29 steps after
a meta-space kick of --kick. Not a default: a measurement.
"""
import sys
from pathlib import Path

import torch

import dynamo_ext as de
from dynamo_ext import ops
from dynamo_ext.meta.config import FitConfig
from dynamo_ext.meta.probes import relaxing_probes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from unseen_contraction import candidate_parser, figures, train_with_term  # noqa: E402


def ridge_inverse(weight, rel=0.1):
    """W^T (W W^T + lam I)^-1 with lam = (rel * ||W||_2)^2: A_n^+ where A_n is well conditioned, bounded where not."""
    lam = (rel * torch.linalg.matrix_norm(weight, ord=2)) ** 2
    return weight.T @ torch.linalg.inv(weight @ weight.T + lam * torch.eye(weight.shape[0], dtype=weight.dtype))


def kick(base, meta, n, x, K, A, eps, base_states):
    """(base model ``base``'s response [S, A, d_n] standardised, the meta-model's at its row n seen through A_n
    [S, A, d_n], grad-carrying) to the meta-space kick eps [S, D] at step K of probes x [S, >= K + A, I];
    base_states [S, >= K + A, d_n], the base's unkicked states."""
    mp = meta.maps[n]
    weight = mp.linear.weight
    with torch.no_grad():
        z = meta(x[:, :K + A], n)[0]
        state = base_states[:, K - 1] + (eps @ weight.T) * mp.scale
        kicked = []
        for t in range(K, K + A):
            state = base.step(x[:, t], state)
            kicked.append(state)
        target = (torch.stack(kicked, 1) - base_states[:, K:K + A]) / mp.scale
    cond = meta.cond_map(meta.theta[n]).expand(len(x), -1)
    zs = ops.meta_rnn_sequence(x[:, K:K + A].transpose(0, 1), z[:, K - 1] + eps, cond, meta.w_ih, meta.w_hh,
                               meta.b_ih, meta.b_hh, meta.cell).transpose(0, 1)
    return target, (zs - z[:, K:]) @ weight.T


@torch.no_grad()
def diagnose(pop, args) -> int:
    x = relaxing_probes(pop, FitConfig())[:64]
    K, A = args.kick_at, args.after
    ids = [m.id for m in pop.members]
    for name in args.diagnose:
        meta = de.load_meta(Path(args.run) / name)
        for mid in args.models:
            if mid not in meta.model_ids:
                continue
            n, g = meta.model_ids.index(mid), torch.Generator().manual_seed(0)
            base_states = pop.members[ids.index(mid)].model.record(x[:, :K + A])[0]
            eps = args.kick * torch.randn(len(x), meta.state_size, generator=g)
            target, pred = kick(pop.members[ids.index(mid)].model, meta, n, x, K, A, eps, base_states)
            d = target.shape[-1]
            norms = [v.norm(dim=-1).mean(0) for v in (target, pred, pred - target)]
            print(f"{name} {mid}: kick term {(pred - target).pow(2).sum(-1).mean() / d:.4f}, not responding "
                  f"{target.pow(2).sum(-1).mean() / d:.4f}; response base / meta / difference after "
                  + ", ".join(f"{t}: {norms[0][t]:.3f} / {norms[1][t]:.3f} / {norms[2][t]:.3f}"
                              for t in (0, 2, 5, 10, A - 1)))
    return 0


def main(argv=None) -> int:
    ap = candidate_parser(__doc__)
    ap.add_argument("--kick", type=float, default=0.2)
    ap.add_argument("--kick-at", type=int, default=90)
    ap.add_argument("--after", type=int, default=30)
    ap.add_argument("--sequences", type=int, default=256)
    ap.add_argument("--space", choices=("base", "meta", "unseen"), default="base",
                    help="base: delta ~ N(0, kick^2) in the map's standardised coordinates, the meta-model kicked "
                         "by its ridge inverse; meta: eps ~ N(0, kick^2 I_D) in the meta-model's state, the base "
                         "kicked by A_n eps; unseen: that eps projected on the directions A_n does not read "
                         "(I - A_n^+ A_n), the base not kicked (noise injected into the unseen directions)")
    ap.add_argument("--diagnose", nargs="+", default=None, metavar="META",
                    help="print the kick responses of these fits (folders under --run) instead of training")
    ap.add_argument("--models", nargs="+", default=["flipflop-lstm-h32-s0", "flipflop-rnn-h32-s0"],
                    help="with --diagnose: the base models (ids) to read")
    args = ap.parse_args(argv)
    pop = de.Population.load(Path(args.run) / "population")
    if args.diagnose:
        return diagnose(pop, args)
    config = FitConfig(steps=args.steps, lr=1e-2 if args.from_scratch else 2e-3)
    x = relaxing_probes(pop, config)
    K, A = args.kick_at, args.after
    with torch.no_grad():
        base_states = [m.model.record(x[:args.sequences, :K + A])[0] for m in pop.members]

    def kick_loss(meta, gen):
        """The kick term, a mean over 4 models x 32 probes."""
        total = 0.0
        for n in torch.randint(len(pop), (4,), generator=gen).tolist():
            rows = torch.randint(args.sequences, (32,), generator=gen)
            weight = meta.maps[n].linear.weight.detach()
            if args.space == "base":
                eps = args.kick * torch.randn(len(rows), weight.shape[0], generator=gen) @ ridge_inverse(weight).T
            else:
                eps = args.kick * torch.randn(len(rows), weight.shape[1], generator=gen)
                if args.space == "unseen":
                    eps = eps - eps @ (torch.linalg.pinv(weight) @ weight).T
            target, pred = kick(pop.members[n].model, meta, n, x[rows], K, A, eps, base_states[n][rows])
            total = total + (pred - target).pow(2).sum(-1).mean() / weight.shape[0] / 4
        return args.weight * total

    meta = train_with_term(args.run, pop, args.meta, config, kick_loss, args.from_scratch, label="kick term")
    print(f"after {args.steps} steps with weight {args.weight}, kick {args.kick} ({args.space}):", figures(meta, pop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
