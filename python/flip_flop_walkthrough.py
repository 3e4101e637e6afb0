# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The 3-bit flip-flop population, end to end
#
# A walkthrough of DYNAMO (Cotler et al., arXiv:2302.14078) on a population
# whose ground truth is known: tanh RNNs, GRUs and LSTMs trained on the 3-bit
# flip-flop (Sussillo & Barak 2013), where every network that solves the task
# must hold 2^3 = 8 stable fixed points, one per memory.
#
# Run it as a script (`python python/flip_flop_walkthrough.py`, about 3 minutes
# on 2 cores), or as a notebook: `jupytext --to notebook python/flip_flop_walkthrough.py`.
# `DYNAMO_EXAMPLE_QUICK=1` runs it with tiny settings (a smoke test; the
# networks do not learn the task then). Figures go to `DYNAMO_EXAMPLE_OUT`
# (default `flip-flop-walkthrough/`).

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import dynamo_ext as de  # noqa: E402
from dynamo_ext.population import TrainConfig, evaluate  # noqa: E402
from dynamo_ext.report import plot_bifurcation, plot_fixed_points  # noqa: E402

QUICK = os.environ.get("DYNAMO_EXAMPLE_QUICK") == "1"
OUT = Path(os.environ.get("DYNAMO_EXAMPLE_OUT", "flip-flop-walkthrough"))
OUT.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)

# %% [markdown]
# ## 1. The population
# Three architectures, two seeds each (one in the quick run), hidden size 32.
# Each member is saved as it finishes (`out=`), so an interrupted run resumes
# with `resume=True`.

# %%
task = de.load_task("flipflop")
pop = de.train_population(task, archs=("rnn", "gru", "lstm"), hidden_sizes=(32,), n_seeds=1 if QUICK else 2,
                          config=TrainConfig(epochs=2 if QUICK else 40), out=OUT / "population", progress=False)
for m in pop.members:
    print(f"{m.id:12s} {m.arch:5s} test accuracy {m.test_accuracy:.3f}")

# %% [markdown]
# ## 2. One meta-model for all of them
# `fit` records every base model on the same probes (followed by one probe
# length of weak noise, so that the recording holds the flow towards each
# attractor) and fits the meta-model, the embeddings theta_n and the maps A_n.

# %%
result = de.fit(pop, steps=100 if QUICK else 2000, embedding_dim=2, out=OUT / "meta", progress=False)
meta = result.meta
print(meta)
print("final loss", result.history["loss"][-1])

# %% [markdown]
# ## 3. The model embedding
# Each base model is a point theta_n. Here all of them solve one task, so
# the architectures need not separate.

# %%
theta = meta.theta.detach()
fig, ax = plt.subplots(figsize=(4, 4))
for arch, colour in zip(("rnn", "gru", "lstm"), ("tab:blue", "tab:orange", "tab:green")):
    idx = [i for i, a in enumerate(pop.archs) if a == arch]
    ax.scatter(theta[idx, 0], theta[idx, 1], c=colour, label=arch)
ax.set_xlabel("theta 1")
ax.set_ylabel("theta 2")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "embedding.png", dpi=120)
print(de.cluster(meta, n_clusters=3, labels_true=pop.archs))

# %% [markdown]
# ## 4. Fixed points: base model and meta-model side by side
# A base GRU's fixed points at zero input, from states on its own
# trajectories; then the meta-model's at that GRU's theta, mapped into the
# GRU's coordinates through A_n.

# %%
gru = next(m for m in pop.members if m.arch == "gru")
x = task.x_test[:64]
hidden, _ = gru.model.record(x)
base_fps = de.find_fixed_points(gru.model, inputs=torch.zeros(1, task.input_size), trajectories=hidden,
                                n_inits=256, noise=0.05)
meta_fps = de.find_fixed_points(meta, model_id=gru.id, inputs=torch.zeros(1, task.input_size), n_inits=256)
print("base GRU:", base_fps)
print("meta-model at its theta:", meta_fps)
print("stable points: base", int(base_fps.is_stable.sum()), "meta", int(meta_fps.is_stable.sum()))
plot_fixed_points(base_fps, OUT / "fixed_points_base.png", trajectories=hidden, title=f"{gru.id}: base model")

# %% [markdown]
# ## 5. Dynamical fidelity, for every member
# The same search on both sides, counted by number of unstable directions;
# stable points matched one to one through A_n.

# %%
for row in de.fidelity(meta, pop, n_inits=64 if QUICK else 256):
    print(row["id"], "stable base / meta:", row["base"]["n_stable"], "/", row["meta"]["n_stable"])

# %% [markdown]
# ## 6. Averaging, and a scan between two architectures
# The meta-model at the mean theta of the GRUs is an operable network. Along
# the straight line from a tanh RNN's theta to a GRU's, the scan counts the
# meta-model's fixed points by type at each step.

# %%
gru_ids = [m.id for m in pop.members if m.arch == "gru"]
print("GRUs averaged in theta: accuracy", round(evaluate(de.average(meta, gru_ids), task), 3))
rnn = next(m for m in pop.members if m.arch == "rnn")
path = de.dynamics.embedding_path(meta, rnn.id, gru.id, steps=3 if QUICK else 9)
scanned = de.dynamics.scan(meta, path, n_inits=32 if QUICK else 128)
for r in scanned.table():
    print(r["index"], "stable", r["n_stable"], "saddles", r["n_saddle_1"])
plot_bifurcation(scanned, OUT / "bifurcation.png")
print("figures in", OUT)
