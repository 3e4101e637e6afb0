"""The uses of the embedding space beside the baselines, on the multi-task pulse population.

Run:  python python/compare_with_baselines.py [--quick] [--out dynamo-pulse-py]

1. train tanh RNNs, GRUs and LSTMs on three computations over one pulse stream
   (3-bit flip-flop, sign of the running integral, first-pulse latch);
2. fit one meta-model to all of them;
3. cluster by task and by architecture: DYNAMO's embedding against linear CKA,
   SVCCA, Procrustes, weight-space and output distances;
4. average each (task, architecture) group: embedding average, naive weight
   average, output ensemble;
5. adapt theta alone to a few labelled sequences, against training from scratch;
6. reparameterization check: permuted / sign-flipped copies must land next to
   their originals in embedding space.
"""
import argparse

import dynamo_ext as de
from dynamo_ext.uses.adaptation import compare_few_labels
from dynamo_ext.uses.averaging import averaging_table
from dynamo_ext.compare.distances import distance_matrices
from dynamo_ext.uses.clustering import compare_measures, embedding_distances
from dynamo_ext.uses.reparameterization import reparameterization_check
from dynamo_ext.population.tasks import PULSE_TASKS
from dynamo_ext.population.training import TrainConfig


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="dynamo-pulse-py")
    args = p.parse_args()
    n_seeds, steps = (2, 2000) if args.quick else (3, 3000)

    # 1. one input stream, three computations, three architectures
    pop = de.train_population(list(PULSE_TASKS), archs=("rnn", "gru", "lstm"), hidden_sizes=(32,), n_seeds=n_seeds,
                              config=TrainConfig(epochs=80), out=f"{args.out}/population")
    # 2. the meta-model
    meta = de.fit(pop, steps=steps, out=f"{args.out}/meta").meta
    # 3. clustering: every measure, the same way
    distances = {"dynamo": embedding_distances(meta), **distance_matrices(pop)}
    rows = compare_measures(distances, {"task": pop.labels("task"), "arch": pop.labels("arch")},
                            methods=("kmeans",))
    print("\nARI of k-means clustering (k = number of labels)")
    print(f"{'measure':12s} {'by task':>8s} {'by arch':>8s}")
    for name in distances:
        ari = {r["labels_by"]: r["ari"] for r in rows if r["measure"] == name}
        print(f"{name:12s} {ari['task']:8.3f} {ari['arch']:8.3f}")
    # 4. averaging
    print("\naveraging: members' mean / embedding average / naive weight average / ensemble")
    for r in averaging_table(meta, pop):
        print(f"{r['label']:16s} {r['member_mean_accuracy']:.3f} {r['averaged_accuracy']:.3f} "
              f"{r['naive_weight_average_accuracy']:.3f} {r['ensemble_accuracy']:.3f}")
    # 5. few labels
    print("\nfew labelled sequences: adapt (theta only) / from scratch")
    for name, task in pop.tasks.items():
        for r in compare_few_labels(meta, task, (1, 5, 20)):
            print(f"{name:10s} {r['n_labelled']:3d}: {r['adapt_accuracy']:.3f} / {r['scratch_accuracy']:.3f}")
    # 6. reparameterization
    check = reparameterization_check(pop, {"steps": steps})
    for r in check["rows"]:
        print(f"reparameterized copies next to their original ({r['measure']}): {r['nearest_is_original']:.2f}")


if __name__ == "__main__":
    main()
