"""The dynamo-ext command line; each command mirrors a public API call.

    dynamo-ext zoo      -> dynamo_ext.train_population
    dynamo-ext fit      -> dynamo_ext.fit
    dynamo-ext analyze  -> dynamo_ext.analysis.analyze + dynamo_ext.report.write_report
    dynamo-ext demo     -> dynamo_ext.demo.run_demo
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dynamo-ext", description="DYNAMO: dynamical model embedding of "
                                "populations of neural networks (arXiv:2302.14078)")
    sub = p.add_subparsers(dest="command", required=True)

    z = sub.add_parser("zoo", help="train a population of base models and save it")
    z.add_argument("--task", default="mnist1d", choices=["mnist1d", "digits", "flipflop"])
    z.add_argument("--archs", nargs="+", default=["rnn", "gru", "lstm"], choices=["rnn", "gru", "lstm"])
    z.add_argument("--seeds", type=int, default=4, help="models per architecture")
    z.add_argument("--hidden-sizes", type=int, nargs="+", default=[32, 48, 64, 64])
    z.add_argument("--epochs", type=int, default=40)
    z.add_argument("--lr", type=float, default=None, help="default: per architecture")
    z.add_argument("--base-seed", type=int, default=0)
    z.add_argument("--out", required=True, help="population folder to write")

    f = sub.add_parser("fit", help="fit a meta-model to a saved population")
    f.add_argument("population", help="population folder (from `dynamo-ext zoo`)")
    f.add_argument("--out", required=True, help="meta-model folder to write")
    f.add_argument("--cell", default="gru", choices=["gru", "tanh"])
    f.add_argument("--backend", default="fused", choices=["fused", "reference", "auto"])
    f.add_argument("--state-size", type=int, default=64)
    f.add_argument("--embedding-dim", type=int, default=2)
    f.add_argument("--steps", type=int, default=2000)
    f.add_argument("--batch-size", type=int, default=128)
    f.add_argument("--lr", type=float, default=1e-2)
    f.add_argument("--max-sequences", type=int, default=2000)
    f.add_argument("--seed", type=int, default=0)

    a = sub.add_parser("analyze", help="emulation, averaging and clustering report of a fitted meta-model")
    a.add_argument("population", help="population folder")
    a.add_argument("meta", help="meta-model folder (from `dynamo-ext fit`)")
    a.add_argument("--out", required=True, help="report folder to write")
    a.add_argument("--seed", type=int, default=0)

    d = sub.add_parser("demo", help="train, fit and analyse the default MNIST-1D population")
    d.add_argument("--out", default="dynamo-demo")
    d.add_argument("--quick", action="store_true", help="smaller population and fit (<= 3 minutes)")
    d.add_argument("--seed", type=int, default=0)

    for s in (z, f, a, d):
        s.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def _run(args) -> int:
    progress = not args.no_progress
    if args.command == "zoo":
        from .zoo import TrainConfig, train_population
        pop = train_population(args.task, archs=args.archs, hidden_sizes=args.hidden_sizes, n_seeds=args.seeds,
                               config=TrainConfig(epochs=args.epochs, lr=args.lr), out=args.out,
                               base_seed=args.base_seed, progress=progress)
        print(json.dumps([m.info() for m in pop.members], indent=1))
    elif args.command == "fit":
        from .fit import fit
        from .zoo import Population
        res = fit(Population.load(args.population), cell=args.cell, backend=args.backend,
                  state_size=args.state_size, embedding_dim=args.embedding_dim, steps=args.steps,
                  batch_size=args.batch_size, lr=args.lr, max_sequences=args.max_sequences, seed=args.seed,
                  out=args.out, progress=progress)
        print(f"fitted in {res.seconds:.1f} s, final loss {res.history['loss'][-1]:.4f}; saved to {args.out}")
    elif args.command == "analyze":
        from .analysis import analyze
        from .fit import load_history, load_meta
        from .report import write_report
        from .zoo import Population
        metrics = analyze(load_meta(args.meta), Population.load(args.population), seed=args.seed)
        write_report(metrics, args.out, history=load_history(args.meta))
        print(f"report written to {args.out}/report.md")
    elif args.command == "demo":
        from .demo import run_demo
        metrics = run_demo(args.out, quick=args.quick, seed=args.seed, progress=progress)
        print(f"demo finished in {metrics['timing_s']['total']:.0f} s; report: {args.out}/report.md")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, RuntimeError, NotImplementedError) as exc:
        print(f"dynamo-ext {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
