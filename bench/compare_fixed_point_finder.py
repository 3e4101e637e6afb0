"""find_fixed_points against FixedPointFinder (Golub & Sussillo 2018), in one process, from the same starts.

Run: FIXED_POINT_FINDER=/path/to/fixed-point-finder python bench/compare_fixed_point_finder.py [--seed 1]
(a clone of github.com/mattgolub/fixed-point-finder; it is not on PyPI; without it the script exits,
saying so). A 64-unit tanh torch.nn.RNN is trained on the 3-bit flip-flop in plain PyTorch (Adam, 40
epochs, training seed --seed); FixedPointFinderTorch runs with its example's settings (1024 starts
sampled from test trajectories with noise 0.5, lr_init 1.0, max_iters 10000, outlier_distance_scale
10); find_fixed_points at its defaults from the same kind of starts (trajectories=h, n_inits=1024,
noise=0.5: descent_steps "auto" descends 20 Adam steps on q before Newton), and from FixedPointFinder's
own starts with descent_steps 0 and 20. Equivalence first: FixedPointFinder stops at q <= 1e-12 or at its iteration
cap, so its points are approximate; each is refined by Newton (find_fixed_points from that point) to
the exact fixed point it approximates, and every such point must be among ours (within 1e-6), then
the times (median of --repeats runs for ours, one for FixedPointFinder).
descent_steps=20 was chosen on training seed 0; the default --seed 1 is a fresh network.

Quoted in docs/coming-from.md.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

import dynamo_ext as de


def train_flip_flop_rnn(seed: int, hidden: int = 64, epochs: int = 40):
    torch.manual_seed(seed)
    task = de.load_task("flipflop")
    rnn, readout = torch.nn.RNN(3, hidden, batch_first=True), torch.nn.Linear(hidden, 3)
    opt = torch.optim.Adam(list(rnn.parameters()) + list(readout.parameters()), lr=2e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(task.x_train))
        for i in range(0, len(perm), 100):
            idx = perm[i:i + 100]
            loss = torch.nn.functional.mse_loss(readout(rnn(task.x_train[idx])[0]), task.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return rnn.eval(), rnn(task.x_test)[0].numpy()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1, help="training seed of the judged network")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    path = os.environ.get("FIXED_POINT_FINDER")
    if not path:
        print("skipped: set FIXED_POINT_FINDER to a clone of github.com/mattgolub/fixed-point-finder")
        return 0
    sys.path.insert(0, path)
    from FixedPointFinderTorch import FixedPointFinderTorch

    torch.set_num_threads(torch.get_num_threads())
    rnn, hidden = train_flip_flop_rnn(args.seed)
    fpf = FixedPointFinderTorch(rnn, max_iters=10000, lr_init=1.0, outlier_distance_scale=10.0, verbose=False,
                                super_verbose=False)
    np.random.seed(args.seed)
    starts = fpf.sample_states(hidden, n_inits=1024, noise_scale=0.5)
    t0 = time.perf_counter()
    unique, _ = fpf.find_fixed_points(starts, np.zeros((1, 3)))
    t_fpf = time.perf_counter() - t0
    fpf_states = torch.tensor(unique.xstar, dtype=torch.float64)
    refined, unrefined = [], 0
    for z in fpf_states:  # Newton from each of its points, to the exact fixed point it approximates
        exact = de.find_fixed_points(rnn, inputs=torch.zeros(1, 3), initial_states=z[None], outlier_max_abs=None,
                                     descent_steps=0)
        if len(exact):
            refined.append(exact.states[0])
        else:  # Newton does not converge from it: a slow point, not a fixed point
            unrefined += 1
    refined = torch.stack(refined)
    shift = torch.cdist(refined, fpf_states).min(1).values
    print(f"FixedPointFinder's points: q up to {float(unique.qstar.max()):.1e}, refined by Newton they move by "
          f"up to {float(shift.max()):.1e}; {unrefined} do not converge under Newton (slow points, left out)")
    fpf_unstable = (np.abs(unique.eigval_J_xstar) > 1).sum(1)
    print(f"FixedPointFinder: {unique.n} points, by unstable directions {np.bincount(fpf_unstable).tolist()}, "
          f"{t_fpf:.2f} s")
    print("| find_fixed_points | points | by unstable directions | FixedPointFinder's found | median s | speed-up |")
    print("|---|---|---|---|---|---|")
    ok = True
    same_starts = {"initial_states": torch.tensor(starts)}
    usual = {"trajectories": torch.tensor(hidden), "n_inits": 1024, "noise": 0.5, "seed": args.seed}
    for label, kw in (("defaults, trajectories + noise 0.5", usual),
                      ("trajectories + noise 0.5, descent_steps=0", {**usual, "descent_steps": 0}),
                      ("its starts, descent_steps=0", {**same_starts, "descent_steps": 0}),
                      ("its starts, descent_steps=20", {**same_starts, "descent_steps": 20})):
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fps = de.find_fixed_points(rnn, inputs=torch.zeros(1, 3), **kw)
            times.append(time.perf_counter() - t0)
        found = torch.cdist(refined, fps.states).min(1).values <= 1e-6
        counts = torch.bincount(fps.n_unstable).tolist()
        med = statistics.median(times)
        print(f"| {label} | {len(fps)} | {counts} | {int(found.sum())} of {len(refined)} | {med:.3f} | "
              f"{t_fpf / med:.1f}x |")
        if "=0" not in label:
            ok &= bool(found.all()) and t_fpf / med >= 20
    print("target (every FixedPointFinder point, >= 20x, at defaults and with descent_steps=20):",
          "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
