"""The dynamo-ext command line; each command mirrors a public API call.

    dynamo-ext zoo      -> dynamo_ext.train_population
    dynamo-ext fit      -> dynamo_ext.fit
    dynamo-ext analyze  -> dynamo_ext.report.analysis.analyze + dynamo_ext.report.write_report
    dynamo-ext demo     -> dynamo_ext.demo.run_demo
    dynamo-ext fixed-points -> dynamo_ext.find_fixed_points + report.plot_fixed_points
    dynamo-ext adapt    -> dynamo_ext.uses.adaptation.compare_few_labels (adapt against training from scratch)
    dynamo-ext reparam-check -> dynamo_ext.uses.reparameterization.reparameterization_check
    dynamo-ext explore  -> dynamo_ext.explore (dynamo_ext.explorer; the [explore] extra)

Modules: ``parser`` (the commands' options; fit's from FitConfig's fields), ``commands`` (the longer
commands, and the check of every output folder before any work).
"""
from __future__ import annotations

import json
import sys
from typing import List, Optional

from .commands import check_outputs, fit_command, fit_folders, fixed_points_command
from .parser import build_parser

def _run(args) -> int:
    progress = not getattr(args, "no_progress", False)
    check_outputs(args)  # every output folder, before any work
    if args.command == "zoo":
        from ..population.training import TrainConfig
        from ..population.zoo import train_population
        sizes = args.hidden_sizes or ([32, 48, 64, 64] if args.family == "rnn" else [32, 48])
        pop = train_population(args.task[0] if len(args.task) == 1 else args.task, archs=args.archs,
                               hidden_sizes=sizes, family=args.family, n_seeds=args.seeds,
                               config=TrainConfig(epochs=args.epochs, lr=args.lr), out=args.out,
                               base_seed=args.base_seed, progress=progress, resume=args.resume,
                               overwrite=args.overwrite)
        print(json.dumps([m.info() for m in pop.members], indent=1))
    elif args.command == "fit":
        fit_command(args, progress)
    elif args.command == "analyze":
        from ..report.analysis import analyze
        from ..meta.checkpoint import load_history, load_meta
        from ..report.markdown import write_report
        from ..population.population import Population
        import torch

        x_star = None if args.input is None else torch.tensor(args.input, dtype=torch.float32)
        folders = fit_folders(args.meta)  # `fit --n-fits k` writes fit-<i>
        fits = [load_meta(f) for f in folders] if len(folders) > 1 else None
        meta_dir = folders[0] if folders else args.meta
        metrics = analyze(load_meta(meta_dir), Population.load(args.population), seed=args.seed, fits=fits,
                          baselines=not args.no_baselines, labels_per_class=args.labels_per_class or None,
                          fixed_point_inputs=x_star, measures=args.measures,
                          time_budget_s=args.time_budget if args.time_budget > 0 else None,
                          n_permutations=args.permutations)
        write_report(metrics, args.out, history=load_history(meta_dir))
        print(f"report written to {args.out}/report.md")
    elif args.command == "explore":
        from ..explorer import check_port, explore
        from ..meta.checkpoint import load_meta
        from ..population.population import Population

        folders = fit_folders(args.meta)  # `fit --n-fits k` writes fit-<i>: the first, with every fit's spread
        metas = [load_meta(f) for f in folders] if folders else [load_meta(args.meta)]
        pop = Population.load(args.population)  # both before the server starts
        check_port(args.host, args.port)
        explore(metas[0], pop, port=args.port, host=args.host, mode="server", n_inits=args.n_inits,
                n_probes=args.n_probes, fits=metas if len(metas) > 1 else None)
    elif args.command == "fixed-points":
        fixed_points_command(args)
    elif args.command == "demo":
        from ..demo import run_demo
        metrics = run_demo(args.out, quick=args.quick, seed=args.seed, progress=progress,
                           population=args.population, overwrite=args.overwrite)
        print(f"demo finished in {metrics['timing_s']['total']:.0f} s; report: {args.out}/report.md")
    elif args.command == "adapt":
        from .. import _io
        from ..uses.adaptation import compare_few_labels
        from ..meta.checkpoint import load_meta
        from ..population.population import Population
        meta, pop = load_meta(args.meta), Population.load(args.population)
        rows = [{"task": name, **r} for name, task in pop.tasks.items()
                for r in compare_few_labels(meta, task, args.labels_per_class, seed=args.seed)]
        _io.write_json(f"{args.out}/adapt.json", rows)
        for r in rows:
            print(f"{r['task']}: {r['labels_per_class']} per class: adapt {r['adapt_accuracy']:.3f}, "
                  f"scratch {r['scratch_accuracy']:.3f}")
    elif args.command == "reparam-check":
        from .. import _io
        from ..uses.reparameterization import reparameterization_check
        from ..population.population import Population
        res = reparameterization_check(Population.load(args.population), {"steps": args.steps}, seed=args.seed,
                                       progress=progress)
        _io.write_json(f"{args.out}/reparameterization.json", res)
        for r in res["rows"]:
            print(f"{r['measure']}: {r['nearest_is_original']:.3f} of {r['copies']} copies next to their original")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, ImportError, RuntimeError, NotImplementedError) as exc:
        print(f"dynamo-ext {args.command}: error: {exc}", file=sys.stderr)
        return 2

