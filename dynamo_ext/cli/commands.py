"""One function per dynamo-ext command (``COMMANDS``), and the check of every output folder before any work."""
from __future__ import annotations

from .. import _io
from ..meta.checkpoint import META_CONFIG, META_WEIGHTS
from ..population.storage import MANIFEST

# the files that mark each command's results in its --out folder (another run's, unless --resume / --overwrite)
RESULTS = {"zoo": (MANIFEST,), "fit": (META_WEIGHTS, META_CONFIG), "analyze": "report", "demo": "report",
           "fixed-points": ("fixed_points.json",), "adapt": ("adapt.json",),
           "reparam-check": ("reparameterization.json",)}


def check_outputs(args) -> None:
    """Refuse, before any work, an --out that is a file, cannot be written, or holds another run's results
    (without --resume where the command continues one, or --overwrite)."""
    if getattr(args, "out", None) is None or args.command not in RESULTS:
        return
    results = RESULTS[args.command]
    if results == "report":  # the report's files, named by its writer (which loads the figures' libraries)
        from ..report.markdown import REPORT_FILES as results
    _io.check_output_folder(args.out, "--out", results, resume=getattr(args, "resume", False),
                            overwrite=getattr(args, "overwrite", False))


def fit_folders(meta: str) -> list:
    """The fit-<i> folders of a folder written by ``fit --n-fits k``, in order (empty for one meta-model)."""
    from pathlib import Path

    folders = [p for p in Path(meta).glob("fit-*") if p.is_dir() and p.name[4:].isdigit()]
    return sorted(folders, key=lambda p: int(p.name[4:]))


def fixed_points_command(args, progress: bool = True) -> None:
    from pathlib import Path

    import torch

    from ..meta.checkpoint import load_meta
    from ..dynamics.fixed_points import find_fixed_points
    from ..report.figures import plot_fixed_points
    from ..population.population import Population

    meta = load_meta(args.meta)
    if args.model_id not in meta.model_ids:
        raise ValueError(f"argument '--model-id' must be one of {meta.model_ids}, got {args.model_id!r}")
    n = meta.model_ids.index(args.model_id)
    x_star = torch.tensor(args.input, dtype=torch.float64) if args.input is not None else None
    trajectories = None
    if args.population is not None:
        task = Population.load(args.population).task
        with torch.no_grad():
            trajectories = meta(task.x_test[:256].to(meta.theta.dtype), n)[0]
    progress = {} if args.min_progress is None else {"min_progress": args.min_progress}
    fps = find_fixed_points(meta, inputs=x_star, trajectories=trajectories, n_inits=args.n_inits,
                            noise=args.noise, tol=args.tol, model_id=args.model_id, seed=args.seed,
                            device=args.device, **progress)
    out = Path(args.out)
    plot_fixed_points(fps, out / "fixed_points.png", trajectories=trajectories,
                      title=f"Meta-model fixed points at theta of {args.model_id}")
    info = {"model_id": args.model_id, "theta": meta.theta.detach()[n].tolist(),
            "input": args.input, "n_fixed_points": len(fps), "n_stable": int(fps.is_stable.sum()),
            "n_unstable_directions": fps.n_unstable.tolist(), "residuals": fps.residuals.tolist(),
            "max_eigenvalue_modulus": fps.eigenvalues.abs().amax(-1).tolist() if len(fps) else [],
            "n_slow_points": len(fps.slow_points), "slow_point_q": fps.slow_points.q.tolist(),
            "states": fps.states.tolist(), "states_in_base_coordinates": fps.to_base(args.model_id).tolist()}
    _io.write_json(out / "fixed_points.json", info)
    print(f"{len(fps)} fixed points ({info['n_stable']} stable), {len(fps.slow_points)} slow points; "
          f"written to {out}/fixed_points.json")
    if args.scan_to is not None:
        from ..dynamics.path_scan import embedding_path, scan
        from ..report.figures import plot_bifurcation

        probe = task.x_test[:64] if args.population is not None else None
        result = scan(meta, embedding_path(meta, args.model_id, args.scan_to, args.steps), inputs=x_star,
                      probe_x=probe, n_inits=args.n_inits, noise=args.noise, tol=args.tol, seed=args.seed,
                      device=args.device, **progress)
        plot_bifurcation(result, out / "bifurcation.png",
                         title=f"Fixed points from {args.model_id} to {args.scan_to}")
        _io.write_json(out / "scan.json", {"start": args.model_id, "end": args.scan_to, "rows": result.table()})
        print(f"scan of {args.steps} embeddings written to {out}/scan.json")


def fit_command(args, progress: bool) -> None:
    import dataclasses
    from pathlib import Path

    import torch.distributed as dist

    from ..meta.config import FitConfig
    from ..meta.distributed import init_from_env, is_main_process
    from ..meta.fitting import fit
    from ..population.streaming import INDEX, StreamedRecording
    from ..population.population import Population

    source = Path(args.population)
    population = StreamedRecording(source) if (source / INDEX).is_file() else Population.load(source)
    settings = {f.name: getattr(args, f.name) for f in dataclasses.fields(FitConfig)}  # every FitConfig option
    settings["device"] = init_from_env(args.device) if args.distributed else args.device
    try:
        res = fit(population, FitConfig(**settings), resume=args.resume, overwrite=args.overwrite, out=args.out,
                  progress=progress, distributed=args.distributed, n_fits=args.n_fits)
        main_process = is_main_process()
        if args.distributed:
            dist.barrier()  # rank 0 has written --out
    finally:
        if args.distributed:
            dist.destroy_process_group()
    if not main_process:
        return
    for i, r in enumerate(getattr(res, "results", [res])):
        where = args.out if args.n_fits == 1 else f"{args.out}/fit-{i}"
        print(f"fitted in {r.seconds:.1f} s (seed {r.config.seed}), final loss {r.history['loss'][-1]:.4f}; "
              f"saved to {where}")
        if "emulation" in r.extra:
            print(f"{len(r.poorly_emulated)} of {len(r.extra['emulation'])} base models below held-out hidden "
                  f"R^2 {args.quality_threshold:g}" + "".join(f"; {i}" for i in r.poorly_emulated))


def zoo_command(args, progress: bool) -> None:
    import json

    from ..population.training import TrainConfig
    from ..population.zoo import train_population

    sizes = args.hidden_sizes or ([32, 48, 64, 64] if args.family == "rnn" else [32, 48])
    pop = train_population(args.task[0] if len(args.task) == 1 else args.task, archs=args.archs,
                           hidden_sizes=sizes, family=args.family, n_seeds=args.seeds,
                           config=TrainConfig(epochs=args.epochs, lr=args.lr), out=args.out,
                           base_seed=args.base_seed, progress=progress, resume=args.resume,
                           overwrite=args.overwrite)
    print(json.dumps([m.info() for m in pop.members], indent=1))


def analyze_command(args, progress: bool) -> None:
    import torch

    from ..meta.checkpoint import load_history, load_meta
    from ..population.population import Population
    from ..report.analysis import analyze
    from ..report.markdown import write_report

    x_star = None if args.input is None else torch.tensor(args.input, dtype=torch.float32)
    folders = fit_folders(args.meta)  # `fit --n-fits k` writes fit-<i>
    fits = [load_meta(f) for f in folders] if len(folders) > 1 else None
    meta_dir = folders[0] if folders else args.meta
    rank = _join_process_group() if args.distributed else 0
    metrics = analyze(load_meta(meta_dir), Population.load(args.population), seed=args.seed, fits=fits,
                      baselines=not args.no_baselines, labels_per_class=args.labels_per_class or None,
                      fixed_point_inputs=x_star, measures=args.measures,
                      time_budget_s=args.time_budget if args.time_budget > 0 else None,
                      n_permutations=args.permutations,
                      memory_budget_gb=args.memory_budget_gb if args.memory_budget_gb > 0 else None,
                      distributed=args.distributed)
    if rank == 0:
        write_report(metrics, args.out, history=load_history(meta_dir))
        print(f"report written to {args.out}/report.md")


def _join_process_group() -> int:
    """This process's rank in the torch.distributed process group that torchrun describes (gloo), joined
    here where the program has not joined it; ValueError outside torchrun."""
    import os

    import torch.distributed as dist

    if not dist.is_initialized():
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            raise ValueError("option '--distributed' needs torchrun (RANK and WORLD_SIZE unset): run "
                             "`torchrun --nproc_per_node K --no-python dynamo-ext analyze ... --distributed`")
        dist.init_process_group("gloo")
    return dist.get_rank()


def explore_command(args, progress: bool) -> None:
    from ..explorer import check_port, explore
    from ..meta.checkpoint import load_meta
    from ..population.population import Population

    folders = fit_folders(args.meta)  # `fit --n-fits k` writes fit-<i>: the first, with every fit's spread
    metas = [load_meta(f) for f in folders] if folders else [load_meta(args.meta)]
    pop = Population.load(args.population)  # both before the server starts
    check_port(args.host, args.port)
    explore(metas[0], pop, port=args.port, host=args.host, mode="server", n_inits=args.n_inits,
            n_probes=args.n_probes, fits=metas if len(metas) > 1 else None)


def demo_command(args, progress: bool) -> None:
    from ..demo import run_demo

    metrics = run_demo(args.out, quick=args.quick, seed=args.seed, progress=progress,
                       population=args.population, overwrite=args.overwrite)
    print(f"demo finished in {metrics['timing_s']['total']:.0f} s; report: {args.out}/report.md")


def adapt_command(args, progress: bool) -> None:
    from ..meta.checkpoint import load_meta
    from ..population.population import Population
    from ..uses.adaptation import compare_few_labels

    meta, pop = load_meta(args.meta), Population.load(args.population)
    rows = [{"task": name, **r} for name, task in pop.tasks.items()
            for r in compare_few_labels(meta, task, args.labels_per_class, seed=args.seed)]
    _io.write_json(f"{args.out}/adapt.json", rows)
    for r in rows:
        print(f"{r['task']}: {r['labels_per_class']} per class: adapt {r['adapt_accuracy']:.3f}, "
              f"scratch {r['scratch_accuracy']:.3f}")


def reparam_check_command(args, progress: bool) -> None:
    from ..population.population import Population
    from ..uses.reparameterization import reparameterization_check

    res = reparameterization_check(Population.load(args.population), {"steps": args.steps}, seed=args.seed,
                                   progress=progress)
    _io.write_json(f"{args.out}/reparameterization.json", res)
    for r in res["rows"]:
        print(f"{r['measure']}: {r['nearest_is_original']:.3f} of {r['copies']} copies next to their original")


# each command's function, by its name on the command line (``parser.build_parser``)
COMMANDS = {"zoo": zoo_command, "fit": fit_command, "analyze": analyze_command, "explore": explore_command,
            "fixed-points": fixed_points_command, "demo": demo_command, "adapt": adapt_command,
            "reparam-check": reparam_check_command}
