"""What a fit does as the population grows: a recording over the memory budget goes to disk and is
streamed (``recording_bytes``, ``over_budget``, ``ScratchRecording``), with fewer probe sequences per
model where the disk budget needs it (``streamed_sequences``), and every base model's held-out
emulation is checked after the fit (``check_quality``; docs/guide/scaling.md)."""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import List

import torch

from ..population.population import Population
from ..population.streaming import record_to_disk
from .config import FitConfig, FitResult
from .evaluate import emulation
from .probes import relax_steps, relaxing_probes


def check_quality(result: FitResult, population: Population, progress: bool = True) -> List[str]:
    """The per-model emulation check after a fit: ``emulation`` on the task's held-out inputs into
    ``result.extra["emulation"]``; the members with hidden R^2 below ``result.config.quality_threshold``
    into ``result.extra["poorly_emulated"]`` (returned), named in one line when ``progress``."""
    rows = emulation(result.meta, population)
    threshold = result.config.quality_threshold
    bad = [r["id"] for r in rows if not r["hidden_r2"] >= threshold]
    result.extra["emulation"] = rows
    result.extra["poorly_emulated"] = bad
    if progress:
        r2s = sorted(r["hidden_r2"] for r in rows)
        line = (f"fit: held-out hidden R^2 median {r2s[len(r2s) // 2]:.3f}, min {r2s[0]:.3f}; "
                f"{len(bad)} of {len(rows)} models below {threshold:g}")
        if bad:
            line += ": " + ", ".join(bad[:20]) + (f", ... ({len(bad) - 20} more)" if len(bad) > 20 else "")
        print(line, file=sys.stderr, flush=True)
    return bad


def recording_bytes(population: Population, config: FitConfig, dtype: torch.dtype) -> int:
    """Memory an in-memory fit's recording takes: per model the float32 hidden states and their
    standardised copy in ``dtype`` (or float16 with ``recording_dtype="float16"``) ([S, T, d_n] each),
    and the outputs alike."""
    x = population.task.x_train  # the shape of relaxing_probes, without drawing its noise
    sequences = len(x) if config.max_sequences is None else min(len(x), config.max_sequences)
    steps = x.shape[1] + relax_steps(population, config) if population.family == "rnn" else 1
    kept = torch.float16 if config.recording_dtype == "float16" else dtype
    per_value = 4 + torch.finfo(kept).bits // 8
    units = sum(m.state_size for m in population.members) + len(population) * population.task.n_outputs
    return int(sequences) * int(steps) * units * per_value


def over_budget(population: Population, config: FitConfig, dtype: torch.dtype, progress: bool) -> bool:
    if config.memory_budget_gb is None:
        return False
    need = recording_bytes(population, config, dtype)
    over = need > config.memory_budget_gb * 2 ** 30
    if over and progress:
        print(f"fit: the recording of {len(population)} models would take {need / 2 ** 30:.1f} GiB, over "
              f"memory_budget_gb={config.memory_budget_gb:g}: recording to disk and streaming it batch by batch",
              file=sys.stderr, flush=True)
    return over


# the fewest probe sequences per model a streamed recording keeps to stay within the disk budget
MIN_STREAMED_SEQUENCES = 64


def streamed_sequences(population: Population, config: FitConfig, probes: int, steps: int,
                       progress: bool = False) -> int:
    """How many of the ``probes`` probe sequences ([S, steps] each) a streamed recording keeps:
    all of them where they fit ``config.disk_budget_gb`` (float32 or float16 hidden states, float32
    outputs), else as many as fit, said in one line when ``progress``.

    Raises:
        ValueError: fewer than ``MIN_STREAMED_SEQUENCES`` fit (the error names the budget and what
            that many would take).
    """
    if config.disk_budget_gb is None:
        return probes
    per_state = 2 if config.recording_dtype == "float16" else 4
    per_sequence = steps * (per_state * sum(m.state_size for m in population.members)
                            + 4 * len(population) * population.task.n_outputs)
    budget = config.disk_budget_gb * 2 ** 30
    fits = int(budget // per_sequence)
    if fits >= probes:
        return probes
    least = min(MIN_STREAMED_SEQUENCES, probes)
    if fits < least:
        raise ValueError(f"argument 'disk_budget_gb' ({config.disk_budget_gb:g} GiB) holds {fits} probe sequences "
                         f"of {len(population)} models; at least {least} take "
                         f"{least * per_sequence / 2 ** 30:.1f} GiB: raise it, or use recording_dtype='float16'")
    if progress:
        print(f"fit: {probes} probe sequences of {len(population)} models would take "
              f"{probes * per_sequence / 2 ** 30:.1f} GiB on disk, over disk_budget_gb={config.disk_budget_gb:g}: "
              f"recording the first {fits} per model", file=sys.stderr, flush=True)
    return fits


class ScratchRecording:
    """A streamed recording of a Population written for one fit (``record_to_disk`` on its relaxing
    probes), in ``config.recording_dir`` or a temporary folder that ``close`` removes."""

    def __init__(self, population: Population, config: FitConfig, progress: bool = False):
        if config.recording_dir and Path(config.recording_dir).exists() and (
                not Path(config.recording_dir).is_dir() or any(Path(config.recording_dir).iterdir())):
            raise ValueError(f"argument 'recording_dir' must be a new or empty folder (a streamed recording is "
                             f"written there), got {config.recording_dir!r}, which holds files")
        t0 = time.perf_counter()
        x = relaxing_probes(population, config)
        kept = streamed_sequences(population, config, len(x), x.shape[1] if population.family == "rnn" else 1,
                                  progress)
        self._tmp = None if config.recording_dir else tempfile.TemporaryDirectory(prefix="dynamo-recording-")
        folder = Path(config.recording_dir) if config.recording_dir else Path(self._tmp.name)
        try:
            self.recording = record_to_disk(population, folder, max_sequences=None, x=x[:kept],
                                            dtype=getattr(torch, config.recording_dtype))
        except BaseException:
            self.close()
            raise
        self.info = {"folder": None if self._tmp else str(folder), "bytes_on_disk": self.recording.disk_bytes(),
                     "record_seconds": time.perf_counter() - t0, "sequences": kept, "probe_sequences": len(x)}

    def close(self) -> None:
        if getattr(self, "recording", None) is not None:
            self.recording.close()  # its files' space is freed when they are removed, not when last read
        self.recording = None
        if getattr(self, "_tmp", None) is not None:
            self._tmp.cleanup()
