"""A trained sweep at moderate N: three computations x three architectures x sizes x seeds, end to end.

    python bench/trained_sweep.py --out DIR [--seeds 7] [--epochs 20] [--time-budget 900]

The pulse tasks (3-bit flip-flop, pulse integration, first-pulse latch: one input stream, three
computations; ``tasks.PULSE_TASKS``) each learnt by tanh RNNs, GRUs and LSTMs with ``--seeds`` seeds,
hidden sizes cycling through 32, 48, 64 (ids "<task>-<arch>-h<H>-s<seed>"): 9 x seeds models. Then a
default ``fit`` (with its per-model emulation check), ``analyze`` (default measures, time budget) and
``write_report``. Writes DIR/sweep.json: per stage seconds and peak memory, the emulation figures, the
members below the quality threshold, and the clustering ARI by task (the ground truth: which
computation) and by architecture for DYNAMO's two readings and every baseline.

Quoted in docs/guide/scaling.md.
"""
import argparse
import json
from pathlib import Path

import numpy as np

from stages import Stages  # bench/stages.py, beside this script

import dynamo_ext as de
from dynamo_ext.population.tasks import PULSE_TASKS
from dynamo_ext.population.training import TrainConfig
from dynamo_ext.report.analysis import analyze
from dynamo_ext.report.markdown import write_report


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=7)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--time-budget", type=float, default=900.0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    out = Path(a.out)
    stages = Stages()
    rec = {"stages": stages.record}
    stage = stages.run

    pop = stage("train", lambda: de.train_population(list(PULSE_TASKS), archs=("rnn", "gru", "lstm"),
                                                     n_seeds=a.seeds, hidden_sizes=(32, 48, 64),
                                                     config=TrainConfig(epochs=a.epochs), progress=False,
                                                     out=out / "population", resume=True))
    rec["n_models"] = len(pop)
    acc = [m.test_accuracy for m in pop.members]
    rec["test_accuracy"] = {"median": float(np.median(acc)), "min": float(min(acc))}
    res = stage("fit", lambda: de.fit(pop, progress=False))
    r2 = [r["hidden_r2"] for r in res.extra["emulation"]]
    agree = [r["output_agreement"] for r in res.extra["emulation"]]
    rec["emulation"] = {"hidden_r2_median": float(np.median(r2)), "hidden_r2_min": float(min(r2)),
                        "output_agreement_median": float(np.median(agree)), "output_agreement_min": float(min(agree)),
                        "poorly_emulated": res.poorly_emulated}
    metrics = stage("analyze", lambda: analyze(res.meta, pop, time_budget_s=a.time_budget))
    rec["analyze_timing_s"] = metrics["timing_s"]
    rec["skipped"] = metrics["baselines"]["skipped"]
    rec["ari"] = {f"{r['measure']}/{r['labels_by']}/{r['method']}": r["ari"] for r in metrics["baselines"]["clustering"]}
    stage("report", lambda: write_report(metrics, out / "report", history=res.history))
    (out / "sweep.json").write_text(json.dumps(rec, indent=1))
    print(json.dumps(rec, indent=1))


if __name__ == "__main__":
    main()
