"""A default fit of the built continuum population at one size N, as a user runs it, and its quality.

    python bench/fit_at_scale.py --n-models 10000 --out fit-10000.json [--steps 2000]

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

import torch

from stages import continuum_quality, peak_rss  # bench/stages.py, beside this script

import dynamo_ext as de
from dynamo_ext.population.continuum import continuum_population


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-models", type=int, default=10000)
    p.add_argument("--steps", type=int, default=None, help="fitting steps (default: fit's)")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    t = time.perf_counter()
    pop = continuum_population(a.n_models)
    out = {"n_models": a.n_models, "threads": torch.get_num_threads(), "population_s": round(time.perf_counter() - t, 1)}
    t = time.perf_counter()
    res = de.fit(pop) if a.steps is None else de.fit(pop, steps=a.steps)
    out["fit_s"] = round(time.perf_counter() - t, 1)
    out["fit_loop_s"] = round(res.seconds, 1)
    out["step_ms"] = round(1000 * res.seconds / res.config.steps, 2)
    out["streamed_recording"] = res.extra.get("streamed_recording")
    out["peak_after_fit_gib"] = round(peak_rss() / 2 ** 30, 2)
    out.update(continuum_quality(res, pop))
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
