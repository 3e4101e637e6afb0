"""The whole flow on a population of N built networks, end to end: population -> fit -> analyze -> report.

    python bench/scale_flow.py --n-models 256 --out DIR [--fit-steps 2000] [--time-budget 900]

``continuum_population(N)`` (no training), a default ``fit`` (streamed over the memory budget,
with its per-model emulation check), ``analyze`` with its default measures and time budget, and
``write_report``; per stage its seconds and the process's peak resident memory (VmHWM) after it,
and the quality figures against the ground truth. Writes DIR/flow.json beside the report.

Quoted in docs/performance.md.
"""
import argparse
import json
from pathlib import Path

import torch

from stages import Stages, continuum_quality  # bench/stages.py, beside this script

import dynamo_ext as de
from dynamo_ext.population.continuum import continuum_population
from dynamo_ext.report.analysis import analyze
from dynamo_ext.report.markdown import write_report


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-models", type=int, default=256)
    p.add_argument("--fit-steps", type=int, default=2000)
    p.add_argument("--time-budget", type=float, default=900.0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    out = Path(a.out)
    stages = Stages()
    rec = {"n_models": a.n_models, "threads": torch.get_num_threads(), "stages": stages.record}
    stage = stages.run

    pop = stage("population", lambda: continuum_population(a.n_models))
    res = stage("fit", lambda: de.fit(pop, steps=a.fit_steps, progress=False))
    rec["quality"] = {**continuum_quality(res, pop), "streamed_recording": res.extra.get("streamed_recording")}
    metrics = stage("analyze", lambda: analyze(res.meta, pop, time_budget_s=a.time_budget))
    rec["analyze_timing_s"] = metrics["timing_s"]
    rec["skipped"] = metrics["baselines"]["skipped"]
    ari = {(r["measure"], r["method"]): r["ari"] for r in metrics["baselines"]["clustering"] if r["labels_by"] == "arch"}
    rec["ari_by_kind"] = {f"{m}/{k}": v for (m, k), v in ari.items()}
    stage("report", lambda: write_report(metrics, out, history=res.history))
    rec["total_seconds"] = round(sum(s["seconds"] for s in rec["stages"].values()), 1)
    (out / "flow.json").write_text(json.dumps(rec, indent=1))
    print(json.dumps(rec, indent=1))


if __name__ == "__main__":
    main()
