"""Peak resident memory of fitting a population from a streamed recording, against the recording's
size on disk.

    python bench/streamed_memory.py [--models 200] [--sequences 4000] [--steps 200] [--folder DIR] [--reuse]

1. a population of ``--models`` small base models (tanh RNN, GRU and LSTM, hidden sizes 32 to 64,
   initialised from their seeds: the memory cost does not depend on training) on MNIST-1D;
2. ``streaming.record_to_disk``: one model at a time, so recording needs one model's arrays;
3. in a fresh process, ``fit(StreamedRecording(folder), steps=--steps)``; its peak resident
   set size (VmHWM of /proc/self/status: reset by exec, unlike getrusage's ru_maxrss, which a
   child inherits from its parent) is compared with the recording's bytes on disk, beside the
   peak of a process that only imports torch and dynamo_ext.

Not a pytest benchmark: it measures memory, not time, and needs a fresh process for the peak.

Quoted in docs/guide/scaling.md.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEAK = """
def peak_rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
"""

FIT = PEAK + """
import json, sys, time
import torch
import dynamo_ext as de
from dynamo_ext.population.streaming import StreamedRecording
rec = StreamedRecording(sys.argv[1])
t0 = time.perf_counter()
res = de.fit(rec, steps=int(sys.argv[2]), progress=False)
print(json.dumps({"fit_seconds": time.perf_counter() - t0, "final_loss": res.history["loss"][-1],
                  "peak_rss_bytes": peak_rss()}))
"""

BASELINE = PEAK + """
import json
import torch, dynamo_ext
print(json.dumps({"peak_rss_bytes": peak_rss()}))
"""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", type=int, default=200)
    p.add_argument("--sequences", type=int, default=4000)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--folder", default=None, help="where to write the recording (default: a temporary folder)")
    p.add_argument("--reuse", action="store_true", help="fit the recording already in --folder")
    args = p.parse_args()

    import torch

    import dynamo_ext as de
    from dynamo_ext.population.streaming import StreamedRecording, record_to_disk
    from dynamo_ext.population.base_rnn import BaseRNN
    from dynamo_ext.population.recording import Member

    folder = Path(args.folder or tempfile.mkdtemp(prefix="dynamo-streamed-"))
    if args.reuse:
        rec, record_s = StreamedRecording(folder), float("nan")
    else:
        rec, record_s = record(args, folder, de, torch, BaseRNN, Member, record_to_disk)
    fit = json.loads(subprocess.run([sys.executable, "-c", FIT, str(folder), str(args.steps)], check=True,
                                    capture_output=True, text=True).stdout)
    base = json.loads(subprocess.run([sys.executable, "-c", BASELINE], check=True, capture_output=True,
                                     text=True).stdout)
    disk = rec.disk_bytes()
    out = {"models": rec.n_models, "sequences": int(rec.x.shape[0]), "steps": args.steps,
           "recording_disk_bytes": disk, "record_seconds": round(record_s, 1),
           "fit_peak_rss_bytes": fit["peak_rss_bytes"], "fit_seconds": round(fit["fit_seconds"], 1),
           "import_only_peak_rss_bytes": base["peak_rss_bytes"],
           "peak_rss_over_disk": round(fit["peak_rss_bytes"] / disk, 4)}
    print(json.dumps(out, indent=1))


def record(args, folder, de, torch, BaseRNN, Member, record_to_disk):
    """Build the population and record it to ``folder``; returns (StreamedRecording, seconds)."""
    task = de.load_task("mnist1d", num_samples=max(5000, args.sequences + 1000))
    members = []
    for i in range(args.models):
        arch, hidden = ("rnn", "gru", "lstm")[i % 3], (32, 48, 64)[(i // 3) % 3]
        torch.manual_seed(i)
        members.append(Member(f"{arch}-h{hidden}-s{i}", arch, hidden, i, float("nan"),
                              BaseRNN(arch, task.input_size, hidden, task.n_outputs).eval()))
    pop = de.Population(task, members)
    t0 = time.perf_counter()
    rec = record_to_disk(pop, folder, max_sequences=args.sequences)
    return rec, time.perf_counter() - t0


if __name__ == "__main__":
    main()
