"""Classical MDS of an N x N distance matrix: ``classical_mds`` (leading eigenpairs by Lanczos) against
scikit-learn's ``ClassicalMDS`` (a full dense eigendecomposition), equivalence first, then time and peak
memory, each size in a fresh process.

    python bench/bench_mds.py [--sizes 1024 2048 4096 10000] [--ours-only N ...] [--components 2] [--out FILE]

The distances are Euclidean between N random points in 8 dimensions (float64). Equivalence: the largest
absolute difference of the coordinates at the sizes both run. Peak memory: VmHWM of the process after
building the matrix and after MDS (the matrix itself is 8 N^2 bytes).

Quoted in docs/performance.md.
"""
import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
import numpy as np
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
n, k, which = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
x = np.random.default_rng(0).standard_normal((n, 8))
sq = (x * x).sum(1)
d = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * x @ x.T, 0.0))
np.fill_diagonal(d, 0.0)
if which == "ours":  # imports before the clock
    from dynamo_ext.uses.clustering import classical_mds
    import scipy.linalg, scipy.sparse.linalg
else:
    from sklearn.manifold import ClassicalMDS
before = hwm()
t = time.perf_counter()
if which == "ours":
    out = classical_mds(d, k)
else:
    out = ClassicalMDS(n_components=k, metric="precomputed").fit_transform(d)
seconds = time.perf_counter() - t
np.save(sys.argv[4], out)
print(json.dumps({"n": n, "which": which, "seconds": seconds, "peak_bytes": hwm(), "matrix_peak_bytes": before}))
"""


def run(n, k, which, path):
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(k), which, path], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    import numpy as np

    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 10000])
    p.add_argument("--ours-only", type=int, nargs="*", default=[])
    p.add_argument("--components", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    rows = []
    for n in args.sizes:
        ours = run(n, args.components, "ours", "/tmp/mds-ours.npy")
        ref = run(n, args.components, "sklearn", "/tmp/mds-ref.npy")
        diff = float(np.abs(np.load("/tmp/mds-ours.npy") - np.load("/tmp/mds-ref.npy")).max())
        rows += [{**ours, "max_abs_diff": diff}, ref]
        print(f"N={n}: ours {ours['seconds']:.2f} s, peak {ours['peak_bytes'] / 2**30:.2f} GiB; scikit-learn "
              f"{ref['seconds']:.2f} s, peak {ref['peak_bytes'] / 2**30:.2f} GiB; max |diff| {diff:.1e}", flush=True)
    for n in args.ours_only:
        ours = run(n, args.components, "ours", "/tmp/mds-ours.npy")
        rows.append(ours)
        print(f"N={n}: ours {ours['seconds']:.2f} s, peak {ours['peak_bytes'] / 2**30:.2f} GiB "
              f"(the matrix alone: {ours['matrix_peak_bytes'] / 2**30:.2f} GiB)", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d"), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
