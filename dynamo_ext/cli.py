"""The dynamo-ext command line; each command mirrors a public API call.

    dynamo-ext zoo      -> dynamo_ext.train_population
    dynamo-ext fit      -> dynamo_ext.fit
    dynamo-ext analyze  -> dynamo_ext.report.analysis.analyze + dynamo_ext.report.write_report
    dynamo-ext demo     -> dynamo_ext.demo.run_demo
    dynamo-ext fixed-points -> dynamo_ext.find_fixed_points + report.plot_fixed_points
    dynamo-ext adapt    -> dynamo_ext.uses.adapt.compare_few_labels (adapt against training from scratch)
    dynamo-ext reparam-check -> dynamo_ext.uses.reparameterize.reparameterization_check
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from .compare.distances import ALL_MEASURES, MEASURES
from .population.tasks import TASKS

DEMO_POPULATIONS = ["mnist1d", "pulse", "universality", "cnn1d", "attractors"]  # dynamo_ext.demo.POPULATIONS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dynamo-ext", description="DYNAMO: dynamical model embedding of "
                                "populations of neural networks (arXiv:2302.14078)")
    sub = p.add_subparsers(dest="command", required=True)

    z = sub.add_parser("zoo", help="train a population of base models and save it")
    z.add_argument("--task", nargs="+", default=["mnist1d"], type=_task_name,
                   help=f"one of {', '.join(TASKS)} or neurogym:<env id> (the [neurogym] extra), or several pulse "
                   "tasks sharing one input stream (a multi-task population, e.g. --task flipflop integrate first)")
    z.add_argument("--family", default="rnn", choices=["rnn", "cnn1d", "cnn2d"],
                   help="recurrent base models, or CNNs (cnn1d: the signal, e.g. MNIST-1D; cnn2d: the image, "
                   "e.g. --task digits)")
    z.add_argument("--archs", nargs="+", default=None, choices=["rnn", "relu_rnn", "gru", "lstm", "ctrnn", "relu", "tanh", "gelu"],
                   help="RNNs: rnn gru lstm (default all); CNNs: the activations relu tanh gelu (default all)")
    z.add_argument("--seeds", type=int, default=4, help="models per architecture")
    z.add_argument("--hidden-sizes", type=int, nargs="+", default=None,
                   help="hidden sizes (RNNs; default 32 48 64 64) or widths (CNNs; default 32 48)")
    z.add_argument("--epochs", type=int, default=40)
    z.add_argument("--lr", type=float, default=None, help="default: per architecture")
    z.add_argument("--base-seed", type=int, default=0)
    z.add_argument("--out", required=True, help="population folder to write")
    z.add_argument("--resume", action="store_true", help="keep the models already finished in --out")

    f = sub.add_parser("fit", help="fit a meta-model to a saved population")
    f.add_argument("population", help="population folder (from `dynamo-ext zoo`), or a recording folder "
                   "written by dynamo_ext.population.streaming.record_to_disk (read batch by batch)")
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
    f.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    f.add_argument("--device", default="cpu", help="cpu, cuda or cuda:<index> (with --distributed: cpu or "
                   "cuda, each rank taking GPU LOCAL_RANK)")
    f.add_argument("--distributed", action="store_true", help="run as one rank under torchrun: the base "
                   "models are sharded across ranks, DistributedDataParallel over the meta-model (gloo on CPU, "
                   "NCCL on GPUs), rank 0 writes --out")
    f.add_argument("--checkpoint-every", type=int, default=0, help="save the training state into --out every "
                   "this many steps (checkpoint.safetensors)")
    f.add_argument("--resume", action="store_true", help="continue from --out's checkpoint if there is one")
    f.add_argument("--refine-steps", type=int, default=0, help="then polish theta_n and A_n, phi frozen")
    f.add_argument("--relax-steps", type=int, default=None, help="zero-input steps after each probe sequence "
                   "(default: one probe length for real outputs, 0 for classes)")
    f.add_argument("--relax-noise", type=float, default=0.15, help="standard deviation of the input during "
                   "the relax steps (0: exact silence)")
    f.add_argument("--memory-budget-gb", type=float, default=4.0, help="stream a larger recording from disk")
    f.add_argument("--recording-dtype", default="float32", choices=["float32", "float16"])
    f.add_argument("--quality-threshold", type=float, default=0.9, help="name models below this held-out R^2")

    a = sub.add_parser("analyze", help="emulation, averaging and clustering report of a fitted meta-model")
    a.add_argument("population", help="population folder")
    a.add_argument("meta", help="meta-model folder (from `dynamo-ext fit`)")
    a.add_argument("--out", required=True, help="report folder to write")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--no-baselines", action="store_true", help="skip the baselines section (CKA, SVCCA, ...)")
    a.add_argument("--labels-per-class", type=int, nargs="*", default=[1, 5, 20],
                   help="few-label comparison sizes (none: skip it)")
    a.add_argument("--input", type=float, nargs="+", default=None,
                   help="constant input x* of the fidelity section's fixed points (default zeros)")
    a.add_argument("--measures", nargs="+", default=None, choices=list(ALL_MEASURES),
                   help=f"the baselines' measures (default {' '.join(MEASURES)}; dsa, the peer, needs the [peers] "
                   "extra and takes minutes)")
    a.add_argument("--time-budget", type=float, default=900.0, help="seconds for the baselines (<= 0: none)")

    d = sub.add_parser("demo", help="train, fit and analyse a population (MNIST-1D RNNs; the multi-task pulse "
                       "population with --population pulse; flip-flop and integration by four architectures "
                       "with universality; MNIST-1D CNNs with cnn1d; point, line and bistable networks "
                       "built to mislead geometry with attractors)")
    d.add_argument("--out", default="dynamo-demo")
    d.add_argument("--quick", action="store_true", help="smaller population and fit (<= 3 minutes)")
    d.add_argument("--population", default="mnist1d", choices=DEMO_POPULATIONS)
    d.add_argument("--seed", type=int, default=0)

    ad = sub.add_parser("adapt", help="fit theta alone to a few labels; compare with training from scratch")
    ad.add_argument("population", help="population folder")
    ad.add_argument("meta", help="meta-model folder")
    ad.add_argument("--labels-per-class", type=int, nargs="+", default=[1, 5, 20])
    ad.add_argument("--seed", type=int, default=0)
    ad.add_argument("--out", required=True, help="folder for adapt.json")

    rc = sub.add_parser("reparam-check", help="fit a population plus reparameterized copies of its models and "
                        "check each copy's nearest neighbour is its original")
    rc.add_argument("population", help="population folder")
    rc.add_argument("--steps", type=int, default=2000, help="fitting steps")
    rc.add_argument("--seed", type=int, default=0)
    rc.add_argument("--out", required=True, help="folder for reparameterization.json")

    fp = sub.add_parser("fixed-points", help="fixed points of a meta-model at one model's embedding")
    fp.add_argument("meta", help="meta-model folder (from `dynamo-ext fit`)")
    fp.add_argument("--model-id", required=True, help="the base model whose embedding to use")
    fp.add_argument("--input", type=float, nargs="+", default=None, help="constant input x* (default zeros)")
    fp.add_argument("--population", default=None, help="population folder: start from meta-model trajectories "
                    "on its task's test inputs (default: uniform initial states)")
    fp.add_argument("--n-inits", type=int, default=256)
    fp.add_argument("--noise", type=float, default=0.01)
    fp.add_argument("--tol", type=float, default=1e-10)
    fp.add_argument("--min-progress", type=float, default=None,
                    help="stop a candidate whose ||F|| fell by less than this fraction over 5 iterations "
                    "(a slow point; default 0.01, 0 runs every candidate to the iteration cap)")
    fp.add_argument("--seed", type=int, default=0)
    fp.add_argument("--device", default="cpu", help="where the Newton solves run: cpu, cuda or cuda:<index>")
    fp.add_argument("--scan-to", default=None, help="also scan the straight embedding path from --model-id to "
                    "this model: scan.json (counts by type per theta) and bifurcation.png")
    fp.add_argument("--steps", type=int, default=11, help="thetas on the scanned path")
    fp.add_argument("--out", required=True, help="folder for fixed_points.json and fixed_points.png")

    for s in (z, f, a, d, fp, ad, rc):
        s.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def _task_name(value: str) -> str:
    if value in TASKS or (value.startswith("neurogym:") and len(value) > len("neurogym:")):
        return value
    raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from {', '.join(TASKS)}, "
                                     "or neurogym:<env id>)")


def _run(args) -> int:
    progress = not args.no_progress
    if args.command == "zoo":
        from .population.training import TrainConfig
        from .population.zoo import train_population
        sizes = args.hidden_sizes or ([32, 48, 64, 64] if args.family == "rnn" else [32, 48])
        pop = train_population(args.task[0] if len(args.task) == 1 else args.task, archs=args.archs,
                               hidden_sizes=sizes, family=args.family, n_seeds=args.seeds,
                               config=TrainConfig(epochs=args.epochs, lr=args.lr), out=args.out,
                               base_seed=args.base_seed, progress=progress, resume=args.resume)
        print(json.dumps([m.info() for m in pop.members], indent=1))
    elif args.command == "fit":
        _fit(args, progress)
    elif args.command == "analyze":
        from .report.analysis import analyze
        from .meta.checkpoint import load_history, load_meta
        from .report.markdown import write_report
        from .population.population import Population
        import torch

        x_star = None if args.input is None else torch.tensor(args.input, dtype=torch.float32)
        metrics = analyze(load_meta(args.meta), Population.load(args.population), seed=args.seed,
                          baselines=not args.no_baselines, labels_per_class=args.labels_per_class or None,
                          fixed_point_inputs=x_star, measures=args.measures or MEASURES,
                          time_budget_s=args.time_budget if args.time_budget > 0 else None)
        write_report(metrics, args.out, history=load_history(args.meta))
        print(f"report written to {args.out}/report.md")
    elif args.command == "fixed-points":
        _fixed_points_command(args)
    elif args.command == "demo":
        from .demo import run_demo
        metrics = run_demo(args.out, quick=args.quick, seed=args.seed, progress=progress,
                           population=args.population)
        print(f"demo finished in {metrics['timing_s']['total']:.0f} s; report: {args.out}/report.md")
    elif args.command == "adapt":
        from . import _io
        from .uses.adapt import compare_few_labels
        from .meta.checkpoint import load_meta
        from .population.population import Population
        meta, pop = load_meta(args.meta), Population.load(args.population)
        rows = [{"task": name, **r} for name, task in pop.tasks.items()
                for r in compare_few_labels(meta, task, args.labels_per_class, seed=args.seed)]
        _io.write_json(f"{args.out}/adapt.json", rows)
        for r in rows:
            print(f"{r['task']}: {r['labels_per_class']} per class: adapt {r['adapt_accuracy']:.3f}, "
                  f"scratch {r['scratch_accuracy']:.3f}")
    elif args.command == "reparam-check":
        from . import _io
        from .uses.reparameterize import reparameterization_check
        from .population.population import Population
        res = reparameterization_check(Population.load(args.population), {"steps": args.steps}, seed=args.seed,
                                       progress=progress)
        _io.write_json(f"{args.out}/reparameterization.json", res)
        for r in res["rows"]:
            print(f"{r['measure']}: {r['nearest_is_original']:.3f} of {r['copies']} copies next to their original")
    return 0


def _fixed_points_command(args) -> None:
    from pathlib import Path

    import torch

    from . import _io
    from .meta.checkpoint import load_meta
    from .dynamics.fixed_points import find_fixed_points
    from .report.figures import plot_fixed_points
    from .population.population import Population

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
        from .dynamics.scan import embedding_path, scan
        from .report.figures import plot_bifurcation

        probe = task.x_test[:64] if args.population is not None else None
        result = scan(meta, embedding_path(meta, args.model_id, args.scan_to, args.steps), inputs=x_star,
                      probe_x=probe, n_inits=args.n_inits, noise=args.noise, tol=args.tol, seed=args.seed,
                      device=args.device, **progress)
        plot_bifurcation(result, out / "bifurcation.png",
                         title=f"Fixed points from {args.model_id} to {args.scan_to}")
        _io.write_json(out / "scan.json", {"start": args.model_id, "end": args.scan_to, "rows": result.table()})
        print(f"scan of {args.steps} embeddings written to {out}/scan.json")


def _fit(args, progress: bool) -> None:
    from pathlib import Path

    import torch.distributed as dist

    from .meta.distributed import init_from_env, is_main_process
    from .meta.fitting import fit
    from .population.streaming import INDEX, StreamedRecording
    from .population.population import Population

    source = Path(args.population)
    population = StreamedRecording(source) if (source / INDEX).is_file() else Population.load(source)
    device = init_from_env(args.device) if args.distributed else args.device
    try:
        res = fit(population, cell=args.cell, backend=args.backend, state_size=args.state_size,
                  embedding_dim=args.embedding_dim, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                  max_sequences=args.max_sequences, seed=args.seed, dtype=args.dtype, device=device,
                  refine_steps=args.refine_steps, relax_steps=args.relax_steps,
                  relax_noise=args.relax_noise, checkpoint_every=args.checkpoint_every, resume=args.resume,
                  **{k: getattr(args, k) for k in ("memory_budget_gb", "recording_dtype", "quality_threshold")},
                  out=args.out, progress=progress, distributed=args.distributed)
        main_process = is_main_process()
        if args.distributed:
            dist.barrier()  # rank 0 has written --out
    finally:
        if args.distributed:
            dist.destroy_process_group()
    if main_process:
        print(f"fitted in {res.seconds:.1f} s, final loss {res.history['loss'][-1]:.4f}; saved to {args.out}")
        if "emulation" in res.extra:
            print(f"{len(res.poorly_emulated)} of {len(res.extra['emulation'])} base models below held-out hidden "
                  f"R^2 {args.quality_threshold:g}" + "".join(f"; {i}" for i in res.poorly_emulated))


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, RuntimeError, NotImplementedError) as exc:
        print(f"dynamo-ext {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
