"""A recording on disk read the way the comparison measures read one in memory.

``recording_within(population, max_sequences, memory_budget_gb)`` gives the population's recording
on its first ``max_sequences`` training inputs (``Population.record``) where its hidden states fit a
quarter of the memory budget, and otherwise writes it to a temporary folder (``record_to_disk``, one
model at a time) and yields a ``DiskRecording``: ``hidden`` is a list of ``HiddenOnDisk``, each read
from its file when a measure asks for it (all-pairs blocks, DSA's trajectories), and the folder is
removed when the ``with`` block ends, whether it ends normally or by an error.
"""
from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import torch
from torch import Tensor

from .recording import Recording
from .streaming import NpyRows, StreamedRecording, record_to_disk

# the share of the memory budget the baselines' recording may take in memory: the all-pairs blocks,
# DYNAMO's functional reading and the N x N matrices need the rest
IN_MEMORY_SHARE = 0.25


class HiddenOnDisk:
    """One model's hidden states [S, T, d] in a recording file, read on indexing (``h[rows]``,
    ``h[:k]``: a new float32 tensor) or whole (``tensor()``); ``chunks(k)`` iterates over blocks of
    rows. Nothing is memory-mapped, so what was read is freed with the tensor."""

    def __init__(self, rows: NpyRows):
        self.rows = rows

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.rows.shape)

    @property
    def dtype(self) -> torch.dtype:
        return torch.from_numpy(np.empty(0, self.rows.dtype)).dtype

    def _read(self, start: int, count: int) -> Tensor:
        return torch.from_numpy(self.rows.read_range(start, count))

    def tensor(self) -> Tensor:
        return self._read(0, self.rows.shape[0])

    def chunks(self, size: int) -> Iterator[Tensor]:
        for start in range(0, self.rows.shape[0], size):
            yield self._read(start, min(size, self.rows.shape[0] - start))

    def __getitem__(self, key) -> Tensor:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(first, slice):
            start, stop, step = first.indices(self.rows.shape[0])
            rows = self._read(start, max(stop - start, 0))[::step] if step > 0 else self.tensor()[first]
        else:
            rows = self.tensor()[first]
        return rows[(slice(None), *rest)] if rest else rows

    def __len__(self) -> int:
        return self.rows.shape[0]


@dataclass
class DiskRecording(Recording):
    """A ``Recording`` whose ``hidden`` states stay in a ``StreamedRecording``'s files (N ``HiddenOnDisk``,
    read when a measure asks for them); ``x`` and ``outputs`` [N, S, T, C] are read into memory (small).
    ``streamed``: the recording on disk."""

    streamed: Optional[StreamedRecording] = None

    @classmethod
    def of(cls, streamed: StreamedRecording) -> "DiskRecording":
        outputs = torch.stack([HiddenOnDisk(streamed.outputs(n)).tensor() for n in range(streamed.n_models)])
        return cls(streamed.x, [HiddenOnDisk(streamed.hidden(n)) for n in range(streamed.n_models)], outputs,
                   streamed.output_kind, streamed.family, streamed.layer_channels, streamed=streamed)


def hidden_bytes(population, max_sequences: Optional[int]) -> int:
    """Bytes of the population's float32 hidden states and outputs on its first ``max_sequences``
    training inputs (what ``Population.record`` holds)."""
    x = population.task.x_train
    sequences = len(x) if max_sequences is None else min(len(x), max_sequences)
    steps = x.shape[1] if population.family == "rnn" else 1
    units = sum(m.state_size for m in population.members) + len(population) * population.task.n_outputs
    return 4 * int(sequences) * int(steps) * int(units)


@contextlib.contextmanager
def recording_within(population, max_sequences: Optional[int], memory_budget_gb: Optional[float]):
    """The population's recording on its first ``max_sequences`` training inputs: in memory (a
    ``Recording``) where it takes at most ``IN_MEMORY_SHARE`` of ``memory_budget_gb`` (or the budget is
    None), else on disk in a temporary folder (a ``DiskRecording``), removed when the block ends."""
    budget = None if memory_budget_gb is None else memory_budget_gb * 2 ** 30 * IN_MEMORY_SHARE
    if budget is None or hidden_bytes(population, max_sequences) <= budget:
        yield population.record(max_sequences=max_sequences)
        return
    with tempfile.TemporaryDirectory(prefix="dynamo-analysis-") as folder:
        streamed = None
        try:
            streamed = record_to_disk(population, folder, max_sequences=max_sequences)
            yield DiskRecording.of(streamed)
        finally:
            if streamed is not None:
                streamed.close()
