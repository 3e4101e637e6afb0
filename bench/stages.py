"""Timing the stages of an end-to-end run in one process: seconds and the peak resident memory after each
(VmHWM of /proc/self/status). Shared by bench/scale_flow.py and bench/trained_sweep.py."""
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
