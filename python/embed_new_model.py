"""Place a network the meta-model has never seen into its embedding space.

Run:  python python/embed_new_model.py  (about 10 seconds on 2 cores)

Trains a small population on scikit-learn's digits, fits a meta-model, then
trains one more GRU and embeds it with the meta-model frozen; prints where it
lands relative to the population's architectures.
"""
import torch

import dynamo_ext as de
from dynamo_ext.population.training import TrainConfig, train_base_model


def main():
    task = de.load_task("digits")
    pop = de.train_population(task, archs=("rnn", "gru", "lstm"), hidden_sizes=(16, 24), n_seeds=2,
                              config=TrainConfig(epochs=15))
    meta = de.fit(pop, steps=800, state_size=32).meta
    newcomer = train_base_model("gru", 20, task, seed=99, config=TrainConfig(epochs=15))
    idx = de.embed(meta, newcomer, task.x_train, model_id="newcomer")
    theta = meta.theta.detach()
    dist = torch.cdist(theta[idx:idx + 1], theta[:idx])[0]
    for i in dist.argsort().tolist():
        print(f"{pop.ids[i]:12s} distance {dist[i]:.3f}")


if __name__ == "__main__":
    main()
