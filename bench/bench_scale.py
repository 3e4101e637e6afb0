"""Cost against the population size N: what grows with N, measured, one fresh process per point.

    python bench/bench_scale.py [--sizes 16 64 256 1024] [--out bench-scale.json] [--device cpu]
                                [--baseline-max-n 256] [--fit-steps 2000] [--dsa-pairs 3]
    python bench/bench_scale.py --plot bench-scale.json docs/images/scale.png

The population is ``continuum_population(N)`` (dynamo_ext.population.continuum: built networks,
hidden sizes 8-256, a continuous ground-truth slope; no training). Per N, in a fresh process (so that
its peak resident memory, VmHWM, is its own), in this order:

1. ``build``: the population;
2. ``fit_step``: median time of one fitting step (loss, backward, Adam, the maps packed as ``fit``
   packs them) at the default batch size and meta-model, on a recording of 64 sequences (the step does
   not read more); again with every model at 64 units (``fit_step_width64``: random targets), which
   takes the population's widths, whose mean differs between draws, out of the comparison across N;
3. ``fit``: a default ``fit`` (its recording, streamed from disk over the memory budget, and its
   per-model emulation check included) with ``--fit-steps`` steps; its quality: the rank correlation
   of the embedding's first principal component with the slope, the median and minimum held-out
   hidden R^2, the members below the threshold;
4. ``dynamo_distances``: DYNAMO's two readings (``embedding_distances``, ``functional_distances``);
5. ``baselines``: ``distance_matrices`` per measure (CKA, SVCCA, Procrustes, weights, outputs) on the
   default 200 sequences, for N <= ``--baseline-max-n``; beside them the time ``torch.mm`` takes for
   the Gram matrix they need (n x (sum_n d_n)^2, float64, measured in the same process); above that N
   the estimate from the measured rate, stated as such;
6. ``dsa``: DSA on ``--dsa-pairs`` repeats of one pair of narrow members (at most 32 units: wider ones
   fail in dsa-metric's Hankel SVD at 25 steps x 50 trials), timed and extrapolated to N(N-1)/2 pairs
   (stated as such, a lower bound; needs the ``[peers]`` extra).

Writes JSON (one record per N); ``--plot`` draws cost against N on log-log axes.
Not a pytest benchmark: each point needs its own process for its memory peak.

Quoted in docs/guide/scaling.md and docs/performance.md.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

POINT = r'''
import json, sys, time, statistics
import torch
import dynamo_ext as de
from dynamo_ext.population.continuum import continuum_population
from dynamo_ext.meta.config import FitConfig
from dynamo_ext.meta.optim import make_optimizer
from dynamo_ext.meta.probes import relaxing_probes
from dynamo_ext.meta.loss import Targets, dynamo_loss
from dynamo_ext.meta.rnn import MetaRNN
from dynamo_ext.meta.packed import PackedMaps
from dynamo_ext.population.recording import Recording
from dynamo_ext.uses.clustering import embedding_distances, functional_distances
from dynamo_ext.compare.distances import distance_matrices

from stages import continuum_quality, peak_rss as peak  # bench/stages.py (its folder is put on sys.path by run())

N, steps, baseline_max, dsa_pairs, device = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
out = {"n_models": N, "device": device, "torch": torch.__version__, "threads": torch.get_num_threads()}
t = time.perf_counter(); pop = continuum_population(N); out["build_s"] = time.perf_counter() - t
sizes = [m.state_size for m in pop.members]
out["sum_hidden"] = sum(sizes)

# 2. one fit step, on a small recording (what a step reads does not depend on how much is recorded)
cfg = FitConfig(device=device)
x = relaxing_probes(pop, cfg)[:64]


def step_times(rec, sizes):
    """Median and minimum of 40 fitting steps (after 5 warm-up steps) as ``fit`` runs them: the maps
    packed into one table (meta.packed.PackedMaps, row-sparse Adam), the other parameters by Adam."""
    targets = Targets(rec, torch.float32)
    torch.manual_seed(0)
    meta = MetaRNN(N, x.shape[-1], pop.task.n_outputs, sizes, state_size=cfg.state_size,
                   embedding_dim=cfg.embedding_dim, cell=cfg.cell, output_kind=pop.task.output_kind).to(device)
    packed = PackedMaps(meta.maps)
    in_table = {id(p) for p in packed.parameters()}
    opt = make_optimizer([p for p in meta.parameters() if id(p) not in in_table], cfg.lr)
    g = torch.Generator().manual_seed(0)
    times, distinct = [], []
    for i in range(45):
        mi = torch.randint(N, (cfg.batch_size,), generator=g)
        si = torch.randint(rec.x.shape[0], (cfg.batch_size,), generator=g)
        distinct.append(len(torch.unique(mi)))
        t = time.perf_counter()
        loss = dynamo_loss(meta, targets, mi, si, cfg.lambda_h, cfg.lambda_y, cfg.lambda_theta, packed=packed)["loss"]
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); packed.step(cfg.lr)
        if device.startswith("cuda"): torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times[5:]), min(times[5:]), statistics.median(distinct)


rec = pop.record(x=x)
out["fit_step_s"], out["fit_step_min_s"], out["distinct_models_per_batch"] = step_times(rec, sizes)
# the same step on models that all have 64 units (random standardised targets): the population's
# widths (log-uniform 8-256, so a different mean width at each N) taken out of the comparison
gen = torch.Generator().manual_seed(1)
rec = Recording(rec.x[:16], [torch.randn(16, x.shape[1], 64, generator=gen) for _ in range(N)], rec.outputs[:, :16],
                rec.output_kind)
out["fit_step_width64_s"], out["fit_step_width64_min_s"], _ = step_times(rec, [64] * N)
out["mean_hidden_size"] = sum(sizes) / N
del rec
out["peak_after_fit_step_bytes"] = peak()

# 3. a default fit (recording streamed over the memory budget; the emulation check included)
t = time.perf_counter(); res = de.fit(pop, steps=steps, device=device, progress=False)
out["fit_s"] = time.perf_counter() - t
out["fit_loop_s"] = res.seconds
out["fit_steps"] = steps
out["streamed_recording"] = res.extra.get("streamed_recording")
out.update(continuum_quality(res, pop))
out["peak_after_fit_bytes"] = peak()

# 4. DYNAMO's two distance readings
meta = res.meta
t = time.perf_counter(); embedding_distances(meta); out["dynamo_theta_distances_s"] = time.perf_counter() - t
t = time.perf_counter(); functional_distances(meta, pop.task.x_test[:64].to(meta.theta.dtype).to(meta.theta.device))
out["dynamo_functional_distances_s"] = time.perf_counter() - t

# 5. baselines, all pairs, and the GEMM they need at torch.mm's rate
rec = pop.record(max_sequences=200)
n_samples = rec.x.shape[0] * rec.x.shape[1]
a = torch.randn(n_samples, 1024, dtype=torch.float64)
torch.mm(a.t(), a)
t = time.perf_counter(); torch.mm(a.t(), a); mm_s = time.perf_counter() - t
rate = 2.0 * n_samples * 1024 * 1024 / mm_s
del a
gram_flops = 2.0 * n_samples * out["sum_hidden"] ** 2 / 2  # the upper triangle of blocks
out["mm_gflops"] = rate / 1e9
out["gram_gemm_s_at_mm_rate"] = gram_flops / rate
out["baselines_s"] = {}
if N <= baseline_max:
    for m in ("cka", "svcca", "procrustes", "weights", "outputs"):
        t = time.perf_counter(); distance_matrices(pop, recording=rec, measures=(m,))
        out["baselines_s"][m] = time.perf_counter() - t
else:
    out["baselines_s"] = {"estimated_cka_or_procrustes_gemm_s": gram_flops / rate}
out["peak_after_baselines_bytes"] = peak()

# 6. DSA on a few pairs, extrapolated
if dsa_pairs:
    try:
        from dynamo_ext.compare.dsa import dsa_distances
        from dynamo_ext.population.recording import Recording
        # dsa-metric's Hankel SVD needs more time points than delays x units: at 25 steps x 50 trials the
        # wide members fail, so the sample pair is the first two of at most 32 units (a lower bound on the cost)
        narrow = [i for i, d in enumerate(sizes) if d <= 32][:2]
        few = Recording(rec.x[:50], [rec.hidden[i] for i in narrow], rec.outputs[narrow], rec.output_kind)
        out["dsa_pair_units"] = [sizes[i] for i in narrow]
        t = time.perf_counter()
        for _ in range(dsa_pairs):
            dsa_distances(few)
        per_pair = (time.perf_counter() - t) / dsa_pairs
        out["dsa_per_pair_s"] = per_pair
        out["dsa_all_pairs_s_extrapolated"] = per_pair * N * (N - 1) / 2
    except Exception as exc:  # the [peers] extra missing
        out["dsa_error"] = repr(exc)
out["peak_bytes"] = peak()
print("RESULT " + json.dumps(out))
'''


def run(sizes, steps, baseline_max, dsa_pairs, device):
    records = []
    for n in sizes:
        t = time.perf_counter()
        code = f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n" + POINT
        proc = subprocess.run([sys.executable, "-c", code, str(n), str(steps), str(baseline_max), str(dsa_pairs),
                               device], capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(proc.stderr[-3000:], file=sys.stderr)
            records.append({"n_models": n, "error": proc.stderr[-500:]})
            continue
        rec = json.loads(line[len("RESULT "):])
        rec["wall_s"] = time.perf_counter() - t
        records.append(rec)
        print(json.dumps(rec), flush=True)
    return records


def plot(path, image):
    from matplotlib.figure import Figure

    records = [r for r in json.loads(Path(path).read_text())["points"] if "error" not in r]
    ns = [r["n_models"] for r in records]
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot()
    series = {"fit step": [r["fit_step_s"] for r in records],
              "default fit": [r["fit_s"] for r in records],
              "DYNAMO functional distances": [r["dynamo_functional_distances_s"] for r in records]}
    for m in ("cka", "svcca", "procrustes"):
        series[f"all-pairs {m}"] = [r["baselines_s"].get(m, float("nan")) for r in records]
    series["Gram GEMM of CKA/Procrustes at torch.mm's rate (computed)"] = [r["gram_gemm_s_at_mm_rate"] for r in records]
    series["DSA all pairs (extrapolated)"] = [r.get("dsa_all_pairs_s_extrapolated", float("nan")) for r in records]
    for name, ys in series.items():
        ax.loglog(ns, ys, marker="o", label=name, linestyle="--" if ("extrapolated" in name or "computed" in name) else "-")
    ax.set_xlabel("base models N")
    ax.set_ylabel("seconds")
    ax.set_title("cost against population size (continuum population)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(image, dpi=120)
    return image


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256, 1024])
    p.add_argument("--fit-steps", type=int, default=2000)
    p.add_argument("--baseline-max-n", type=int, default=256)
    p.add_argument("--dsa-pairs", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="bench-scale.json")
    p.add_argument("--plot", nargs=2, metavar=("JSON", "PNG"))
    a = p.parse_args()
    if a.plot:
        print(plot(*a.plot))
        return
    points = run(a.sizes, a.fit_steps, a.baseline_max_n, a.dsa_pairs, a.device)
    data = {"points": points, "settings": {k: v for k, v in vars(a).items() if k != "plot"},
            "cpu_count": os.cpu_count()}
    tmp = Path(a.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(a.out)


if __name__ == "__main__":
    main()
