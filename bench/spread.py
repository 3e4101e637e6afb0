"""Do DYNAMO's readings hold across meta-model fits? Single fits against consensus readings.

    python bench/spread.py --population demo  [--fits 5] [--steps 2000] [--cache DIR] [--out spread-demo.json]
    python bench/spread.py --population pulse [--fits 5] [--steps 2000] [--cache DIR] [--out spread-pulse.json]
    python bench/spread.py --population leaky [--fits 5] [--steps 2000] [--out spread-leaky.json]

Populations: "demo", the quick demo's six MNIST-1D networks (tanh RNN, GRU, LSTM x 2 seeds, hidden 48 and
64, 25 epochs); "pulse", the mixed pulse population (flip-flop, integration and first-pulse tasks x
tanh RNN, GRU, LSTM x 2 seeds, hidden 32, 80 epochs); "leaky", 20 built leaky integrators
(``continuum_population(20, kinds=("point",))``: leaks 0.80-0.98, hidden sizes 8-256, no training; its
labels: leak above or below the median, k = 2). Trained once into ``--cache`` and loaded from there
afterwards.

Two disjoint sets of ``--fits`` default fits each (seeds 0..k-1 and k..2k-1, each set on its own
recording: ``fit(..., n_fits=k)``), then per set ``uses.across_fits.spread`` on the first 256 probe inputs,
clustering into 3 groups (architectures for "demo", tasks for "pulse"; 2 for "leaky"). Measured:

- consensus against consensus: the rank correlation of the two sets' consensus functional (and theta)
  distances, and the ARI of their consensus clusterings;
- single fit against single fit (every pair across the two sets): the same rank correlations and ARIs;
- every clustering's ARI against the ground-truth labels;
- the time of ``fit(n_fits=k)`` against one ``fit`` (the recording is made once);
- "pulse" only: the stable fixed points of the meta-model at every theta_n, per fit (min and max).

Quoted in docs/guide/trust.md.

Quoted in docs/guide/fixed-points.md and docs/guide/trust.md.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

import dynamo_ext as de
from dynamo_ext.population.continuum import continuum_population, continuum_slopes
from dynamo_ext.population.tasks import PULSE_TASKS
from dynamo_ext.population.training import TrainConfig
from dynamo_ext.uses.across_fits import distance_agreement, spread


def population(name: str, cache: Path):
    if name == "leaky":
        return continuum_population(20, kinds=("point",), seed=0)
    folder = cache / f"spread-{name}"
    if (folder / "manifest.json").is_file():
        return de.Population.load(folder)
    if name == "demo":
        return de.train_population("mnist1d", archs=("rnn", "gru", "lstm"), n_seeds=2, hidden_sizes=(48, 64),
                                   config=TrainConfig(epochs=25), out=folder, progress=False)
    return de.train_population(list(PULSE_TASKS), archs=("rnn", "gru", "lstm"), n_seeds=2, hidden_sizes=(32,),
                               config=TrainConfig(epochs=80), out=folder, progress=False)


def summary(values):
    v = np.asarray(values, dtype=float)
    return {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}


def main(argv=None) -> int:
    from sklearn.metrics import adjusted_rand_score as ari

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", choices=("demo", "pulse", "leaky"), default="demo")
    ap.add_argument("--fits", type=int, default=5)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--cache", default=".bench-cache")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    pop = population(args.population, Path(args.cache))
    print(f"population: {len(pop)} networks, {time.perf_counter() - t0:.0f} s")
    if args.population == "leaky":
        slopes = continuum_slopes(pop).numpy()
        labels, n_clusters = list(slopes > np.median(slopes)), 2
    else:
        labels, n_clusters = pop.labels("arch" if args.population == "demo" else "task"), 3
    x = pop.task.x_train[:256]
    k = args.fits
    t0 = time.perf_counter()
    de.fit(pop, steps=args.steps, seed=0, progress=False)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = de.fit(pop, steps=args.steps, seed=0, n_fits=k, progress=False)
    many = time.perf_counter() - t0
    second = de.fit(pop, steps=args.steps, seed=k, n_fits=k, progress=False)
    fixed = args.population == "pulse"
    a, b = (spread(s, x, n_clusters=n_clusters, fixed_points=fixed) for s in (first, second))
    out = {"population": args.population, "n": len(pop), "fits_per_set": k, "steps": args.steps,
           "time_one_fit_s": round(one, 1), f"time_{k}_fits_s": round(many, 1), "ratio": round(many / one, 2)}
    for reading in ("functional", "theta"):
        out[f"consensus_{reading}_rank_corr"] = float(distance_agreement([a.consensus[reading],
                                                                          b.consensus[reading]])[0, 1])
        out[f"single_{reading}_rank_corr"] = summary(
            [distance_agreement([da, db])[0, 1] for da in a.distances[reading] for db in b.distances[reading]])
    out["consensus_ari"] = float(ari(a.consensus_labels, b.consensus_labels))
    out["single_ari"] = summary([ari(la, lb) for la in a.labelings for lb in b.labelings])
    out["consensus_ari_truth"] = [float(ari(labels, s.consensus_labels)) for s in (a, b)]
    out["single_ari_truth"] = summary([ari(labels, lab) for s in (a, b) for lab in s.labelings])
    out["theta_spread_median"] = [float(np.median(s.theta_spread)) for s in (a, b)]
    if fixed:
        counts = np.concatenate([a.n_stable, b.n_stable])
        out["n_stable"] = {mid: [int(counts[:, n].min()), int(counts[:, n].max())]
                           for n, mid in enumerate(a.model_ids)}
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
