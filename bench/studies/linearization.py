"""Study (closed): the meta-model's linearization beside its base models', like with like, on a mixed pulse
population. Its tables: docs/studies/linearization.md; its finding: docs/method.md, "What the
meta-model's Jacobian tells and what it does not".

    python bench/studies/linearization.py [--out linearization-run] [--seeds 2] [--epochs 40] [--base-seed 0]
                                  [--state-size 64] [--fit-steps 2000] [--recurrence-rank 0]
                                  [--relax-noise X] [--embedding-dim M] [--cell gru] [--tasks T ...]
                                  [--members ID ...] [--json FILE]

Trains (or reuses, from --out/population) the mixed population: the
flip-flop, integration and first-pulse tasks x tanh RNN, GRU, LSTM x --seeds seeds, 32 units, --epochs
epochs, training seeds from --base-seed; fits a meta-model with the defaults but --state-size,
--fit-steps, --recurrence-rank, --relax-noise, --embedding-dim and --cell (or reuses the folder of that
fit under --out, meta-d<state>-s<steps>[-r<rank>][-noise<x>][-m<dim>][-<cell>][-t<tasks>][-n<ids>]), on
the whole population or on the sub-population of --tasks' models or of --members (a diagnostic: is a base
model's linearization kept when the meta-model emulates fewer, or more alike, models?); then, per base model, the fidelity
rows (``dynamics.attractor_fidelity.fidelity``): stable points base/meta, matched, and at every matched stable
point the leading eigenvalue modulus of the base's Jacobian, of the meta-model's in full, and of the
meta-model's through the map (A_n J A_n^+), with the modes A_n barely sees (``dynamics.linearization``).
Prints one table row per model and the study's figures over the models of task accuracy >= 0.95 whose
stable points are matched.

Quoted in docs/studies/linearization.md.
"""
import argparse
import json
import sys
from pathlib import Path

import dynamo_ext as de
from dynamo_ext.dynamics.attractor_fidelity import fidelity
from dynamo_ext.population.population import Population
from dynamo_ext.population.training import TrainConfig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="linearization-run")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--json", default=None)
    ap.add_argument("--base-seed", type=int, default=0, help="the population's first training seed")
    ap.add_argument("--state-size", type=int, default=64, help="the meta-model's state size (a candidate setting)")
    ap.add_argument("--fit-steps", type=int, default=2000)
    ap.add_argument("--embedding-dim", type=int, default=None,
                    help="FitConfig.embedding_dim (a candidate setting; default: FitConfig's)")
    ap.add_argument("--relax-noise", type=float, default=None,
                    help="FitConfig.relax_noise (a candidate setting; default: FitConfig's)")
    ap.add_argument("--tasks", nargs="+", default=None,
                    help="fit and read the sub-population of these tasks' models only (a diagnostic)")
    ap.add_argument("--members", nargs="+", default=None,
                    help="fit and read these models (ids) only (a diagnostic)")
    ap.add_argument("--cell", default=None, help="FitConfig.cell (a candidate setting; default: FitConfig's)")
    ap.add_argument("--recurrence-rank", type=int, default=0,
                    help="rank of the embedding-conditioned recurrence (a candidate setting; eager backend)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if (out / "population" / "manifest.json").is_file():
        pop = de.Population.load(out / "population")
    else:
        pop = de.train_population(["flipflop", "integrate", "first"], archs=("rnn", "gru", "lstm"), hidden_sizes=(32,),
                                  n_seeds=args.seeds, config=TrainConfig(epochs=args.epochs), out=out / "population",
                                  base_seed=args.base_seed)
    if args.tasks or args.members:
        chosen = [m for m in pop.members if (not args.tasks or m.task in args.tasks)
                  and (not args.members or m.id in args.members)]
        if not chosen:
            raise SystemExit(f"--tasks {args.tasks} --members {args.members}: no member of the population "
                             f"matches (tasks {sorted(pop.tasks)})")
        kept = sorted({m.task for m in chosen})
        pop = Population(pop.tasks[chosen[0].task], chosen, tasks={t: pop.tasks[t] for t in kept})
    rank = args.recurrence_rank
    folder = out / (f"meta-d{args.state_size}-s{args.fit_steps}" + (f"-r{rank}" if rank else "")
                    + (f"-noise{args.relax_noise:g}" if args.relax_noise is not None else "")
                    + (f"-m{args.embedding_dim}" if args.embedding_dim is not None else "")
                    + (f"-{args.cell}" if args.cell is not None else "")
                    + (f"-t{'+'.join(args.tasks)}" if args.tasks else "")
                    + (f"-n{'+'.join(args.members)}" if args.members else ""))
    extra = {"recurrence_rank": rank, "backend": "auto"} if rank else {}
    if args.relax_noise is not None:
        extra["relax_noise"] = args.relax_noise
    if args.embedding_dim is not None:
        extra["embedding_dim"] = args.embedding_dim
    if args.cell is not None:
        extra["cell"] = args.cell
    if (folder / "meta.json").is_file():
        meta = de.load_meta(folder)
    else:
        res = de.fit(pop, state_size=args.state_size, steps=args.fit_steps, out=folder, **extra)
        meta = res.meta
        print(f"fitted in {res.seconds:.1f} s")
    rows = fidelity(meta, pop, progress=True)
    print("| model | accuracy | stable base/meta | matched | leading modulus: base / meta full / through A_n "
          "| unseen modes (max count, max modulus) |")
    print("|---|---|---|---|---|---|")
    good = []
    for r, m in zip(rows, pop.members):
        if "unsupported" in r:
            continue
        lead = "; ".join(f"{p['base'][0]['modulus']:.3f} / {p['full'][0]['modulus']:.3f} / "
                         f"{p['through_map'][0]['modulus']:.3f}" for p in r["linearization"][:3])
        s = r["linearization_summary"]
        unseen = "-" if s.get("max_unseen_modulus") is None else f"{s['max_unseen_count']}, {s['max_unseen_modulus']:.3f}"
        print(f"| {m.id} | {m.test_accuracy:.3f} | {r['base']['n_stable']}/{r['meta']['n_stable']} | {r['n_matched']} "
              f"| {lead} | {unseen} |")
        if m.test_accuracy >= 0.95 and r["n_matched"]:
            good.append((m, r))
    if good:
        full = max(r["linearization_summary"]["max_delta_full"] for _, r in good)
        through = max(r["linearization_summary"]["max_delta_through_map"] for _, r in good)
        dist = [r["max_matched_distance_rel"] for _, r in good if r["max_matched_distance_rel"] is not None]
        wrong = [m.id for m, r in good if r["base"]["n_stable"] != r["meta"]["n_stable"]]
        print(f"{len(good)} models of accuracy >= 0.95 with matched stable points: largest |difference| of the "
              f"leading modulus in full {full:.3f}, through A_n {through:.3f} (target 0.03); largest matched "
              f"distance {max(dist) if dist else float('nan'):.3f} (target 0.15); stable counts that differ: "
              f"{len(wrong)} {wrong}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
