"""A default fit of the built continuum population at one size N, as a user runs it, and its quality.

    python bench/fit_at_scale.py --n-models 10000 --out fit-10000.json

``continuum_population(N)``, then ``fit(pop)`` with every default (the recording streamed from disk over
the 4 GiB memory budget, on fewer probe sequences past the 32 GiB disk budget; the per-model emulation
check after it). Writes: seconds of the population, of the fit in all and of its loop (and per step), the
recording's size on disk and sequences kept, the process's peak resident memory (VmHWM) after the fit, the
rank correlation of theta's first principal component with the ground-truth slope, the median and minimum
held-out hidden R^2 and the members below the quality threshold. One process, nothing else timed.

Quoted in docs/performance.md.
"""
import argparse
import json
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from stages import peak_rss  # bench/stages.py, beside this script

import dynamo_ext as de
from dynamo_ext.population.continuum import continuum_population, continuum_slopes


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-models", type=int, default=10000)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    t = time.perf_counter()
    pop = continuum_population(a.n_models)
    out = {"n_models": a.n_models, "threads": torch.get_num_threads(), "population_s": round(time.perf_counter() - t, 1)}
    t = time.perf_counter()
    res = de.fit(pop)
    out["fit_s"] = round(time.perf_counter() - t, 1)
    out["fit_loop_s"] = round(res.seconds, 1)
    out["step_ms"] = round(1000 * res.seconds / res.config.steps, 2)
    out["streamed_recording"] = res.extra.get("streamed_recording")
    out["peak_after_fit_gib"] = round(peak_rss() / 2 ** 30, 2)
    theta = res.meta.theta.detach().double()
    centred = theta - theta.mean(0)
    pc1 = torch.linalg.svd(centred, full_matrices=False)[2][0]
    out["rank_correlation_pc1_slope"] = abs(float(spearmanr(centred @ pc1, continuum_slopes(pop)).statistic))
    r2 = [r["hidden_r2"] for r in res.extra["emulation"]]
    out["hidden_r2_median"], out["hidden_r2_min"] = float(np.median(r2)), float(min(r2))
    out["poorly_emulated"] = res.poorly_emulated
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
