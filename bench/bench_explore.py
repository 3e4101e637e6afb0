"""What a click in the explorer costs on the server: the meta-model at a new theta (fixed points from 256
starts, trajectories and outputs on 16 probes, task accuracy), at state size 64.

    python bench/bench_explore.py [--state-size 64] [--clicks 20] [--out bench/results/explore-cpu.json]

A flip-flop population (tanh RNNs and GRUs, 32 units, 4 models, 20 epochs) is trained and fitted
(``--fit-steps``, the meta-model of ``--state-size`` units), then ``Explorer.at_theta`` is timed at
``--clicks`` fresh thetas (no cache) drawn around the embeddings, and ``at_model`` (the drill-down: both
sides' fixed points) at each model. Equivalence first: at two of the thetas the answer's counts and
accuracy are compared with ``find_fixed_points`` and ``evaluate`` called directly. Target: the median
click at most 300 ms on a 2-core CPU.

Quoted in docs/guide/explorer.md and docs/performance.md.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import dynamo_ext as de
from dynamo_ext.explorer.model import Explorer
from dynamo_ext.population.training import TrainConfig, evaluate

TARGET_S = 0.300


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state-size", type=int, default=64)
    ap.add_argument("--clicks", type=int, default=20)
    ap.add_argument("--fit-steps", type=int, default=400)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    task = de.load_task("flipflop")
    pop = de.train_population(task, archs=("rnn", "gru"), hidden_sizes=(32,), n_seeds=2,
                              config=TrainConfig(epochs=20), progress=False)
    meta = de.fit(pop, steps=args.fit_steps, state_size=args.state_size, progress=False).meta
    explorer = Explorer(meta, pop)
    g = torch.Generator().manual_seed(0)
    spread = explorer.thetas.std(0).clamp(min=0.05)
    thetas = explorer.thetas.mean(0) + torch.randn(args.clicks, meta.embedding_dim, generator=g,
                                                   dtype=torch.float64) * spread
    for theta in thetas[:2]:  # equivalence first
        got = explorer.at_theta(theta.tolist())
        t = theta.to(meta.theta.dtype)
        with torch.no_grad():
            z = meta(explorer.probes, theta=t)[0]
        fps = de.find_fixed_points(meta, theta=t, trajectories=z, n_inits=256, seed=0)
        assert (got["n_fixed_points"], got["n_stable"]) == (len(fps), int(fps.is_stable.sum()))
        assert got["accuracy"] == evaluate(meta.at(t), task)
    clicks = []
    for theta in thetas[2:]:
        t0 = time.perf_counter()
        explorer.at_theta(theta.tolist())
        clicks.append(time.perf_counter() - t0)
    models = []
    for mid in pop.ids:
        t0 = time.perf_counter()
        explorer.at_model(mid)
        models.append(time.perf_counter() - t0)
    result = {"state_size": args.state_size, "clicks": len(clicks), "n_inits": explorer.n_inits,
              "n_probes": len(explorer.probes), "click_s": {"median": statistics.median(clicks), "max": max(clicks)},
              "model_click_s": {"median": statistics.median(models), "max": max(models)}, "target_s": TARGET_S,
              "threads": torch.get_num_threads()}
    result["met"] = result["click_s"]["median"] <= TARGET_S
    print(f"a click at a new theta (state size {args.state_size}, 256 starts, 16 probes): median "
          f"{result['click_s']['median'] * 1e3:.0f} ms, max {result['click_s']['max'] * 1e3:.0f} ms over {len(clicks)}; "
          f"a model (drill-down) median {result['model_click_s']['median'] * 1e3:.0f} ms")
    print(f"target (median <= {TARGET_S * 1e3:.0f} ms):", "met" if result["met"] else "MISSED")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
