"""The fitting step's time against the population size N, the sizes interleaved in one process.

    python bench/fit_step_scale.py [--sizes 16 1024] [--rounds 8] [--steps 20] [--draws 1] [--json FILE]

``bench_scale.py`` times each N in its own process, minutes apart, so a ratio between two of its
points carries the machine's drift between them (20% between runs on a 2-core CPU). Here every
size gets its meta-model, its packed maps (as ``fit`` runs the step: meta.packed.PackedMaps and the
compiled row-sparse Adam) and a recording of 64 probe sequences first; then ``--rounds`` rounds each
run ``--steps`` steps of every size in turn, and the median over all rounds is reported per size, with
its ratio to the smallest. Two populations per size: ``continuum_population(N)`` (hidden sizes drawn
log-uniformly from 8-256, so the mean width differs between draws) and the same number of models of 64
units each (random standardised targets), which takes the widths out of the comparison. With
``--draws K`` every continuum size is built K times (population seeds 0..K-1, each timed in every round),
so that a small N's figure is not that of one draw of widths.

Quoted in docs/performance.md.
"""
import argparse
import json
import statistics
import sys
import time

import torch

from dynamo_ext.meta.config import FitConfig
from dynamo_ext.meta.loss import Targets, dynamo_loss
from dynamo_ext.meta.optim import make_optimizer
from dynamo_ext.meta.packed import PackedMaps
from dynamo_ext.meta.probes import relaxing_probes
from dynamo_ext.meta.rnn import MetaRNN
from dynamo_ext.population.continuum import continuum_population
from dynamo_ext.population.recording import Recording


def setup(n, uniform, cfg, seed=0):
    """A step function of one population: (meta-model, packed maps, optimizer, targets) behind it."""
    pop = continuum_population(n, seed=seed)
    x = relaxing_probes(pop, cfg)[:16]
    rec = pop.record(x=x)
    sizes = [m.state_size for m in pop.members]
    if uniform:
        gen = torch.Generator().manual_seed(1)
        rec = Recording(rec.x[:16], [torch.randn(16, x.shape[1], 64, generator=gen) for _ in range(n)],
                        rec.outputs[:, :16], rec.output_kind)
        sizes = [64] * n
    targets = Targets(rec, torch.float32)
    torch.manual_seed(0)
    meta = MetaRNN(n, x.shape[-1], pop.task.n_outputs, sizes, state_size=cfg.state_size,
                   embedding_dim=cfg.embedding_dim, cell=cfg.cell, output_kind=pop.task.output_kind)
    packed = PackedMaps(meta.maps)
    in_table = {id(p) for p in packed.parameters()}
    opt = make_optimizer([p for p in meta.parameters() if id(p) not in in_table], cfg.lr)
    g = torch.Generator().manual_seed(0)
    S = rec.x.shape[0]

    def step():
        mi, si = torch.randint(n, (cfg.batch_size,), generator=g), torch.randint(S, (cfg.batch_size,), generator=g)
        t = time.perf_counter()
        loss = dynamo_loss(meta, targets, mi, si, cfg.lambda_h, cfg.lambda_y, cfg.lambda_theta, packed=packed)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        packed.step(cfg.lr)
        return time.perf_counter() - t

    return step, sum(sizes) / n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 1024])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--draws", type=int, default=1, help="continuum populations per size (seeds 0..K-1)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    cfg = FitConfig()
    out = {"threads": torch.get_num_threads(), "torch": torch.__version__, "rounds": args.rounds,
           "steps_per_round": args.steps, "draws": args.draws, "populations": {}}
    for kind in ("continuum", "width64"):
        draws = args.draws if kind == "continuum" else 1
        steps = {n: [setup(n, kind == "width64", cfg, seed) for seed in range(draws)] for n in args.sizes}
        times = {n: [] for n in args.sizes}
        for n in args.sizes:  # warm-up
            for step, _ in steps[n]:
                for _ in range(5):
                    step()
        for _ in range(args.rounds):
            for n in args.sizes:
                for step, _ in steps[n]:
                    times[n] += [step() for _ in range(args.steps)]
        base = statistics.median(times[args.sizes[0]])
        rows = {n: {"median_s": statistics.median(t), "min_s": min(t),
                    "mean_hidden_size": statistics.mean(w for _, w in steps[n]),
                    "ratio_to_smallest": statistics.median(t) / base} for n, t in times.items()}
        out["populations"][kind] = rows
        for n, r in rows.items():
            print(f"{kind:9s} N={n:5d}: median {1e3 * r['median_s']:.2f} ms (min {1e3 * r['min_s']:.2f}), mean width "
                  f"{r['mean_hidden_size']:.1f}, {r['ratio_to_smallest']:.2f}x N={args.sizes[0]}", flush=True)
        del steps
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
