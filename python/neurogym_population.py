"""A population on a neurogym task, fitted and analysed.

Run:  pip install "dynamo_ext[neurogym]"; python python/neurogym_population.py [--out neurogym-report]
(about a minute on 2 cores)

Trains tanh RNNs, GRUs and LSTMs on neurogym's context-dependent decision making
(Mante et al. 2013; ``neurogym:ContextDecisionMaking-v0``, trials left-padded to
one length, the decision at the last step: dynamo_ext.population.neurogym), fits a
meta-model and writes the usual report (emulation, clustering, baselines,
fixed points and fidelity) into --out.

Measured here (one run, 39 s): test accuracy GRUs 0.965 and 0.980, LSTMs 0.980
and 0.525, tanh RNNs 0.525 and 0.525 (chance: these settings do not train
them; more epochs or a higher learning rate do), which the report shows.
"""
import argparse

import dynamo_ext as de
from dynamo_ext.report.analysis import analyze
from dynamo_ext.report.markdown import write_report
from dynamo_ext.population.training import TrainConfig


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="neurogym-report")
    args = ap.parse_args()
    task = de.load_task("neurogym:ContextDecisionMaking-v0", n_train=1000, n_test=200, seed=0)
    print(task)
    pop = de.train_population(task, archs=("rnn", "gru", "lstm"), hidden_sizes=(32,), n_seeds=2,
                              config=TrainConfig(epochs=60))
    for m in pop.members:
        print(f"{m.id:14s} test accuracy {m.test_accuracy:.3f}")
    result = de.fit(pop, steps=800, state_size=32)
    metrics = analyze(result.meta, pop, labels_per_class=None)
    write_report(metrics, args.out, history=result.history)
    print(f"report: {args.out}/report.md")


if __name__ == "__main__":
    main()
