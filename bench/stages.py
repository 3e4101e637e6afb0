"""Timing the stages of an end-to-end run in one process: seconds and the peak resident memory after each
(VmHWM of /proc/self/status), and a fit's quality on the continuum population. Shared by
bench/scale_flow.py, bench/bench_scale.py, bench/fit_at_scale.py and bench/trained_sweep.py."""
import time


def peak_rss() -> int:
    """The process's peak resident set size in bytes (VmHWM)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class Stages:
    """``run(name, fn)`` calls fn, records {seconds, peak_bytes} under ``record[name]``, prints it, returns fn()."""

    def __init__(self):
        self.record = {}

    def run(self, name, fn):
        t = time.perf_counter()
        value = fn()
        self.record[name] = {"seconds": round(time.perf_counter() - t, 1), "peak_bytes": peak_rss()}
        print(name, self.record[name], flush=True)
        return value


def continuum_quality(result, population) -> dict:
    """A fit of ``continuum_population``'s quality: the rank correlation of theta's first principal
    component with the ground-truth slope, the median and minimum held-out hidden R^2 (the fit's
    emulation check), and the members below the quality threshold."""
    import numpy as np
    import torch
    from scipy.stats import spearmanr

    from dynamo_ext.population.continuum import continuum_slopes

    theta = result.meta.theta.detach().double().cpu()
    centred = theta - theta.mean(0)
    pc1 = torch.linalg.svd(centred, full_matrices=False)[2][0]
    r2 = [r["hidden_r2"] for r in result.extra["emulation"]]
    return {"rank_correlation_pc1_slope": abs(float(spearmanr(centred @ pc1, continuum_slopes(population)).statistic)),
            "hidden_r2_median": float(np.median(r2)), "hidden_r2_min": float(min(r2)),
            "poorly_emulated": result.poorly_emulated}
