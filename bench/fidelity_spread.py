"""Spread of the flip-flop fidelity figures across population seeds, fit seeds and dtypes.

    python bench/fidelity_spread.py [--pop-seeds 0 10 20] [--fit-seeds 0 1] [--dtypes float32 float64]
                                    [--out fidelity-spread.json]

The slow test ``tests/test_fidelity.py::test_flip_flop_meta_model_has_every_base_models_attractors_and_memory``
trains a flip-flop population (tanh RNN, GRU, LSTM; 3 seeds each; hidden 32; default training) and fits
a meta-model with the default settings; it asserts what holds on any machine. Its thresholds come from
this script: for each population seed (``train_population(base_seed=...)``), each fit seed and each
dtype of the fit, the same pipeline, recording per base model the stable-point counts, the matching and
its largest matched distance relative to the median attractor distance (docs/method.md, "Dynamical
fidelity"), and the memory accuracies. The summary gives the min / median / max of the relative distance
over every model with 8 stable points, and how many of those the meta-model matched 8 of 8.

Not a pytest benchmark: it measures the spread of a figure, not time.

Quoted in docs/guide/fixed-points.md.
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import dynamo_ext as de
from dynamo_ext.dynamics.attractor_fidelity import fidelity
from dynamo_ext.population.training import TrainConfig


def run(pop_seeds, fit_seeds, dtypes, n_inits):
    rows = []
    for ps in pop_seeds:
        t0 = time.perf_counter()
        pop = de.train_population("flipflop", archs=("rnn", "gru", "lstm"), n_seeds=3, hidden_sizes=(32,),
                                  config=TrainConfig(), base_seed=ps, progress=False)
        train_s = time.perf_counter() - t0
        for fs in fit_seeds:
            for dt in dtypes:
                t0 = time.perf_counter()
                res = de.fit(pop, seed=fs, dtype=dt, progress=False)
                fid = fidelity(res.meta, pop, n_inits=n_inits)
                secs = time.perf_counter() - t0
                for r in fid:
                    rows.append({"pop_seed": ps, "fit_seed": fs, "dtype": dt, "id": r["id"],
                                 "base_n_stable": r["base"]["n_stable"], "meta_n_stable": r["meta"]["n_stable"],
                                 "n_matched": r["n_matched"], "extra_meta_stable": r["extra_meta_stable"],
                                 "max_matched_distance_rel": r["max_matched_distance_rel"],
                                 "memory": {k: r["memory"][k] for k in ("silence", "long")},
                                 "train_seconds": train_s, "fit_and_fidelity_seconds": secs})
                eight = [x for x in rows[-len(fid):] if x["base_n_stable"] == 8]
                print(f"pop seed {ps} fit seed {fs} {dt}: {len(eight)} models with 8; rel distances "
                      + ", ".join(f"{x['max_matched_distance_rel']:.3f}" for x in eight
                                  if x["max_matched_distance_rel"] is not None), flush=True)
    return rows


def summarize(rows):
    eight = [r for r in rows if r["base_n_stable"] == 8]
    rel = [r["max_matched_distance_rel"] for r in eight if r["max_matched_distance_rel"] is not None]
    mem_short = [r["memory"][p]["meta_accuracy"] - r["memory"][p]["base_accuracy"]
                 for r in rows for p in ("silence", "long") if r["memory"][p]["base_accuracy"] >= 0.98]
    return {"models_with_8_stable": len(eight),
            "matched_8_of_8": sum(r["meta_n_stable"] == 8 and r["n_matched"] == 8 for r in eight),
            "extra_meta_stable_total": sum(r["extra_meta_stable"] for r in rows),
            "max_matched_distance_rel": {"min": min(rel), "median": statistics.median(rel), "max": max(rel)}
            if rel else None,
            "meta_minus_base_memory_accuracy_min": min(mem_short) if mem_short else None}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pop-seeds", type=int, nargs="+", default=[0, 10, 20])
    p.add_argument("--fit-seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument("--n-inits", type=int, default=512)
    p.add_argument("--out", default="fidelity-spread.json")
    a = p.parse_args()
    rows = run(a.pop_seeds, a.fit_seeds, a.dtypes, a.n_inits)
    out = {"rows": rows, "summary": summarize(rows), "torch": torch.__version__,
           "settings": vars(a)}
    tmp = Path(a.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(a.out)
    print(json.dumps(out["summary"], indent=1))


if __name__ == "__main__":
    main()
