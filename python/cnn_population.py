"""DYNAMO on a population of CNNs: the same public functions as for RNNs.

Run:  python python/cnn_population.py  (about 2 minutes on 2 cores)

1. Trains 1-D CNNs on MNIST-1D (ReLU, tanh and GELU; width 32; two seeds each).
2. Adds a CNN of your own, an nn.Sequential whose layers to record are named.
3. Fits a FiLM-conditioned meta-CNN to all of them.
4. Prints how well it emulates each CNN, averages each activation/width group
   in embedding space beside naive weight averaging, clusters the embeddings
   by activation, and fits theta alone to 5 labelled examples per class.
"""
import torch
from torch import nn

import dynamo_ext as de
from dynamo_ext.uses.averaging import averaging_table
from dynamo_ext.compare.scratch import train_scratch
from dynamo_ext.uses.adaptation import few_label_sample
from dynamo_ext.meta.evaluate import emulation
from dynamo_ext.population.recording import Member
from dynamo_ext.population.training import TrainConfig, evaluate


def my_cnn(task, seed=123):
    """A user's CNN: a plain nn.Sequential trained here for a few epochs (any trained one will do)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv1d(1, 24, 5, padding=2), nn.ReLU(), nn.Conv1d(24, 24, 5, stride=2, padding=2),
                        nn.ReLU(), nn.Conv1d(24, 24, 5, stride=2, padding=2), nn.ReLU(), nn.Flatten(),
                        nn.Linear(24 * 10, 10))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    x, y = task.x_train.transpose(1, 2), task.y_train  # the cnn1d view: [B, channels, length]
    for _ in range(15):
        for i in range(0, len(x), 100):
            loss = nn.functional.cross_entropy(net(x[i:i + 100]), y[i:i + 100])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def main():
    task = de.load_task("mnist1d")
    pop = de.train_population(task, family="cnn1d", hidden_sizes=(32,), n_seeds=2,
                              config=TrainConfig(epochs=40))
    # a user's nn.Sequential joins the population: record the outputs of its three activations
    user = de.Population.from_modules([my_cnn(task)], task, ids=["my-sequential-cnn"], layers=["1", "3", "5"],
                                      family="cnn1d").members[0]
    pop = de.Population(task, pop.members + [Member(user.id, "relu", 24, -1, user.test_accuracy, user.model)])
    meta = de.fit(pop, steps=2000).meta

    print("\nemulation (test set)")
    for row in emulation(meta, pop):
        acc = pop.members[pop.index(row["id"])].test_accuracy
        print(f"  {row['id']:22s} accuracy {acc:.3f}  output agreement {row['output_agreement']:.3f}  "
              f"pooled-activation R^2 {row['hidden_r2']:.3f}")
    print("\naveraging: members' mean / embedding average / naive weight average / output ensemble")
    for row in averaging_table(meta, pop):
        naive = "n/a" if row["naive_weight_average_accuracy"] is None else f"{row['naive_weight_average_accuracy']:.3f}"
        print(f"  {row['label']:10s} {row['member_mean_accuracy']:.3f} / {row['averaged_accuracy']:.3f} / "
              f"{naive} / {row['ensemble_accuracy']:.3f}")
    labels = pop.labels("arch")
    clus = de.cluster(meta, n_clusters=len(set(labels)), labels_true=labels)
    print(f"\nclustering by activation: ARI {clus.ari:.2f}, NMI {clus.nmi:.2f}")
    x, y = few_label_sample(task, 5, seed=0)
    adapted = de.adapt(meta, x, y)
    scratch = train_scratch(task, x, y, arch="relu", hidden_size=32, family="cnn1d")
    print(f"5 labels per class: adapt (theta alone) {evaluate(adapted, task):.3f}, "
          f"a CNN from scratch {evaluate(scratch, task):.3f}")


if __name__ == "__main__":
    main()
