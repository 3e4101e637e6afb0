"""Networks trained the neurogym way (``ngym.Dataset``, time-major, per-step labels), fitted and analysed as they are.

Run:  pip install "dynamo_ext[neurogym]"; python python/neurogym_dataset.py [--out neurogym-dataset-report]
      [--quick]

neurogym's tutorials train a network on batches of ``ngym.Dataset(env, batch_size, seq_len)``: inputs
[T, B, I] and one class label per time step [T, B] (fixation, then the choice), a time-major
``nn.LSTM`` / ``nn.GRU`` with a linear readout, and cross-entropy over every step. Those networks
and that data go into dynamo_ext unchanged: ``TaskData.from_tensors(..., time_major=True)`` stores
the batches batch first with their per-step labels (accuracy and few-label adaptation read every
step), ``Population.from_modules`` takes the (rnn, readout) pairs, then ``fit`` and ``analyze``.
"""
import argparse

import numpy as np
import torch
from torch import nn

import dynamo_ext as de
from dynamo_ext.report.analysis import analyze
from dynamo_ext.report.markdown import write_report

ENV = "PerceptualDecisionMaking-v0"


def neurogym_batches(n_batches: int, batch_size: int, seq_len: int, seed: int):
    """``n_batches`` batches of ngym.Dataset, concatenated along the batch axis (time major)."""
    import neurogym as ngym

    dataset = ngym.Dataset(ENV, env_kwargs={"dt": 100}, batch_size=batch_size, seq_len=seq_len)
    dataset.seed(seed)
    xs, ys = zip(*(dataset() for _ in range(n_batches)))
    return np.concatenate(xs, axis=1), np.concatenate(ys, axis=1), dataset.env.action_space.n


def train_the_neurogym_way(arch: str, hidden: int, inputs, labels, n_actions: int, epochs: int, seed: int):
    """A time-major nn.GRU / nn.LSTM and a readout, cross-entropy over every step (neurogym's tutorials)."""
    torch.manual_seed(seed)
    rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[arch](inputs.shape[-1], hidden)
    readout = nn.Linear(hidden, n_actions)
    opt = torch.optim.Adam([*rnn.parameters(), *readout.parameters()], lr=1e-2)
    x, y = torch.from_numpy(inputs), torch.from_numpy(labels)
    for _ in range(epochs):
        for b in range(0, x.shape[1], 16):
            logits = readout(rnn(x[:, b:b + 16])[0])
            loss = nn.functional.cross_entropy(logits.reshape(-1, n_actions), y[:, b:b + 16].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return rnn.eval(), readout.eval()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="neurogym-dataset-report")
    ap.add_argument("--quick", action="store_true", help="a smaller population and fit (about 20 s)")
    args = ap.parse_args(argv)
    epochs, seeds, steps = (3, 2, 150) if args.quick else (20, 3, 1500)
    x_train, y_train, n_actions = neurogym_batches(16, 16, 40, seed=0)
    x_test, y_test, _ = neurogym_batches(4, 16, 40, seed=1)
    task = de.TaskData.from_tensors("neurogym-perceptual", x_train, y_train, x_test, y_test, time_major=True,
                                    n_outputs=n_actions)
    print(task, "per-step labels:", task.per_step)
    nets = [train_the_neurogym_way(arch, 32, x_train, y_train, n_actions, epochs, seed)
            for arch in ("gru", "lstm") for seed in range(seeds)]
    pop = de.Population.from_modules(nets, task, ids=[f"{a}-s{s}" for a in ("gru", "lstm") for s in range(seeds)])
    for m in pop.members:
        print(f"{m.id}: accuracy over the scored steps {m.test_accuracy:.3f}")
    result = de.fit(pop, steps=steps, progress=not args.quick)
    metrics = analyze(result.meta, pop, labels_per_class=(2,), baselines=not args.quick)
    write_report(metrics, args.out, history=result.history)
    for row in metrics["emulation"]:
        print(f"{row['id']}: hidden R^2 {row['hidden_r2']:.3f}, output agreement {row['output_agreement']:.3f}")
    print(f"report written to {args.out}/report.md")
    return metrics


if __name__ == "__main__":
    main()
