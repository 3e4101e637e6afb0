"""The `dynamo-ext demo` pipeline written out step by step with the public API.

Run:  python python/demo_pipeline.py [--quick] [--out dynamo-demo-py]

1. generate MNIST-1D locally and train a population of tanh RNNs, GRUs and LSTMs;
2. fit one DYNAMO meta-model with a 2-D model embedding to all of them;
3. measure how well it emulates each base model on test inputs;
4. average the GRUs in embedding space and test the averaged network;
5. cluster the embeddings and score them against the architectures;
6. write metrics.json, report.md and the figures.
"""
import argparse
import statistics

import dynamo_ext as de
from dynamo_ext.report.analysis import analyze
from dynamo_ext.meta.evaluate import emulation
from dynamo_ext.report.markdown import write_report
from dynamo_ext.population.training import TrainConfig, evaluate


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="dynamo-demo-py")
    args = p.parse_args()
    n_seeds, hidden, epochs, steps = (2, (48, 64), 25, 3000) if args.quick else (4, (32, 48, 64, 64), 40, 4000)

    # 1. the population
    task = de.load_task("mnist1d")
    pop = de.train_population(task, archs=("rnn", "gru", "lstm"), hidden_sizes=hidden, n_seeds=n_seeds,
                              config=TrainConfig(epochs=epochs), out=f"{args.out}/population")
    for m in pop.members:
        print(f"{m.id:14s} test accuracy {m.test_accuracy:.3f}")

    # 2. the meta-model
    result = de.fit(pop, cell="gru", state_size=64, embedding_dim=2, steps=steps, out=f"{args.out}/meta")
    meta = result.meta

    # 3. emulation on held-out inputs
    for row in emulation(meta, pop):
        print(f"{row['id']:14s} agreement {row['output_agreement']:.3f}  hidden R^2 {row['hidden_r2']:.3f}")

    # 4. averaging the GRUs
    gru_ids = [m.id for m in pop.members if m.arch == "gru"]
    averaged = de.average(meta, gru_ids)  # an nn.Module: x [B, T, 1] -> logits [B, T, 10]
    members = statistics.mean(pop.members[pop.index(i)].test_accuracy for i in gru_ids)
    print(f"GRU members' mean accuracy {members:.3f}; averaged network {evaluate(averaged, task):.3f}")

    # 5. clustering by architecture
    clusters = de.cluster(meta, n_clusters=3, labels_true=pop.archs)
    print(f"k-means of the embeddings vs architecture: ARI {clusters.ari:.3f}, NMI {clusters.nmi:.3f}")

    # 6. the report
    write_report(analyze(meta, pop), args.out, history=result.history)
    print(f"report: {args.out}/report.md")


if __name__ == "__main__":
    main()
