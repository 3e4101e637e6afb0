"""What ``import dynamo_ext`` costs above ``import torch``, and what it loads, in fresh processes.

    python bench/bench_import.py [--repeats 7] [--out bench/results/import-cpu.json]

Each repeat runs two fresh interpreters: one timing ``import torch``, one timing ``import torch`` then
``import dynamo_ext`` (time.perf_counter around each import, so interpreter start-up is not counted).
Reported: the median and the best over the repeats of torch's import and of dynamo_ext's import on
top of it, the modules of scikit-learn, SciPy, plotly and matplotlib that the import loaded (none
expected: they load when first used), and the first use of the lazy parts (``dynamo_ext.report``,
``dynamo_ext.DYNAMO``). Target: dynamo_ext's import at most 1.5 s above torch's (median).

Quoted in docs/performance.md.
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

PROBE = r"""
import json, sys, time
t0 = time.perf_counter(); import torch; t1 = time.perf_counter()
out = {"torch_s": t1 - t0}
if sys.argv[1] == "dynamo_ext":
    import dynamo_ext
    t2 = time.perf_counter()
    out["dynamo_ext_s"] = t2 - t1
    out["heavy_loaded"] = sorted(m for m in ("sklearn", "scipy", "plotly", "matplotlib") if m in sys.modules)
    dynamo_ext.report
    t3 = time.perf_counter()
    dynamo_ext.DYNAMO
    out["first_report_s"], out["first_estimator_s"] = t3 - t2, time.perf_counter() - t3
print(json.dumps(out))
"""

TARGET_S = 1.5


def run(which: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, which], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default=None, help="JSON file for the results")
    args = ap.parse_args(argv)
    torch_alone = [run("torch")["torch_s"] for _ in range(args.repeats)]
    with_package = [run("dynamo_ext") for _ in range(args.repeats)]
    above = [r["dynamo_ext_s"] for r in with_package]
    result = {
        "repeats": args.repeats,
        "torch_s": {"median": statistics.median(torch_alone), "best": min(torch_alone)},
        "dynamo_ext_above_torch_s": {"median": statistics.median(above), "best": min(above)},
        "heavy_modules_loaded": with_package[0]["heavy_loaded"],
        "first_report_s": statistics.median(r["first_report_s"] for r in with_package),
        "first_estimator_s": statistics.median(r["first_estimator_s"] for r in with_package),
        "target_s": TARGET_S,
    }
    result["met"] = result["dynamo_ext_above_torch_s"]["median"] <= TARGET_S and not result["heavy_modules_loaded"]
    print(f"import torch: median {result['torch_s']['median']:.2f} s; import dynamo_ext above it: median "
          f"{result['dynamo_ext_above_torch_s']['median']:.2f} s, best {result['dynamo_ext_above_torch_s']['best']:.2f}"
          f" s; heavy modules loaded: {result['heavy_modules_loaded'] or 'none'}; first use of report "
          f"{result['first_report_s']:.2f} s, of the estimator {result['first_estimator_s']:.2f} s")
    print(f"target (<= {TARGET_S} s above torch, nothing heavy loaded):", "met" if result["met"] else "MISSED")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
