"""Recordings on disk, read in minibatches: fitting N base models costs memory for the meta-model
and a few batches, not for the whole population's hidden trajectories.

``record_to_disk(population, folder)`` records one model at a time into
NumPy files (``x.npy``, and per model ``hidden_<n>.npy`` [S, T, d_n] and
``outputs_<n>.npy`` [S, T, C], float32), each written atomically, plus
``recording.json``. ``StreamedRecording(folder)`` opens them for reading by
offset (``os.pread``: no memory map, so nothing read stays resident); ``fit``
accepts it in place of a Population or Recording and reads only the rows of
each minibatch (the per-model standardisation is computed in one streamed
pass, chunk by chunk).
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import _io
from .._checks import check_positive_int
from .population import Population
from .recording import param_dtype

FORMAT = "dynamo_ext.streamed_recording/1"
INDEX = "recording.json"


# recording files held open at once (least recently read closed first): a recording of N models has
# 2N files, more than the usual limit of open files past a few thousand models
MAX_OPEN_FILES = 512
_OPEN: "OrderedDict[tuple, int]" = OrderedDict()


def _descriptor(key: tuple) -> int:
    """An open read-only descriptor of the file ``key`` = (path, device, inode), from the shared cache."""
    fd = _OPEN.pop(key, None)
    if fd is None:
        while len(_OPEN) >= MAX_OPEN_FILES:
            os.close(_OPEN.popitem(last=False)[1])
        fd = os.open(key[0], os.O_RDONLY)
    _OPEN[key] = fd
    return fd


def _release(key: tuple) -> None:
    fd = _OPEN.pop(key, None)
    if fd is not None:
        os.close(fd)


class NpyRows:
    """Rows of a C-ordered .npy file read by offset with os.preadv (nothing is memory-mapped).

    ``shape`` and ``dtype`` as in the file; ``read(idx)`` -> rows idx of the first axis as an array;
    ``read_range(start, count)`` consecutive rows; ``chunks(n)`` iterates over consecutive blocks. The
    file is opened when read, and at most ``MAX_OPEN_FILES`` recording files stay open across all
    readers; ``close()`` closes this one's.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"recording file {str(self.path)!r} does not exist")
        try:
            with open(self.path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(f)
                self.offset = f.tell()
        except (ValueError, OSError) as exc:
            raise ValueError(f"recording file {str(self.path)!r} is corrupted: {exc}") from exc
        if fortran or dtype.hasobject or len(shape) < 1:
            raise ValueError(f"recording file {str(self.path)!r} must hold a C-ordered numeric array")
        self.shape, self.dtype = tuple(shape), dtype
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        expected = self.offset + self.row_bytes * shape[0]
        if self.path.stat().st_size != expected:
            raise ValueError(f"recording file {str(self.path)!r} is truncated: {self.path.stat().st_size} bytes, "
                             f"expected {expected}")
        stat = self.path.stat()
        self._key = (str(self.path), stat.st_dev, stat.st_ino)

    def fd(self) -> int:
        """An open descriptor of the file (from the shared cache of open recording files)."""
        return _descriptor(self._key)

    def close(self) -> None:
        key = getattr(self, "_key", None)
        if key is not None:
            _release(key)

    def __del__(self):
        self.close()

    def read_range(self, start: int, count: int) -> np.ndarray:
        """Rows start .. start + count - 1 as a new (writable) array, read straight into it."""
        out = np.empty((count, *self.shape[1:]), dtype=self.dtype)
        view = memoryview(out).cast("B")
        done = 0
        while done < view.nbytes:  # preadv may return less than asked
            got = os.preadv(self.fd(), [view[done:]], self.offset + self.row_bytes * start + done)
            if got <= 0:
                raise OSError(f"recording file {str(self.path)!r} ended early")
            done += got
        return out

    def read(self, idx) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.shape[0]):
            raise IndexError(f"rows {idx.min()}..{idx.max()} out of range for {self.shape[0]} rows of {self.path}")
        return np.stack([self.read_range(int(i), 1)[0] for i in idx]) if idx.size else \
            np.empty((0, *self.shape[1:]), self.dtype)

    def chunks(self, size: int):
        for start in range(0, self.shape[0], size):
            yield self.read_range(start, min(size, self.shape[0] - start))


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, array)
    _io.atomic_write(path, write)


@torch.no_grad()
def record_to_disk(population: Population, folder, max_sequences: Optional[int] = 2000,
                   batch_size: int = 500, x: Optional[Tensor] = None,
                   dtype: torch.dtype = torch.float32) -> "StreamedRecording":
    """Record every base model on the task's training inputs straight to ``folder``, one model at a time.

    Args:
        population: the base models; max_sequences: keep the first this many probe sequences.
        x: probe inputs [S, T, I] to record on instead of the task's training inputs (``fit`` passes
            its relaxing probes).
        dtype: how the hidden states are stored (torch.float32, or torch.float16: half the disk).

    Returns:
        The StreamedRecording of ``folder``.

    Raises:
        ValueError: a model that produces NaN/Inf hidden states or outputs.
    """
    folder = Path(folder)
    x = population.task.x_train if x is None else x
    if max_sequences is not None:
        x = x[:check_positive_int(max_sequences, "max_sequences")]
    x = x.float()
    _save_npy(folder / "x.npy", x.numpy())
    sizes = []
    for n, m in enumerate(population.members):
        m.model.eval()
        dt = param_dtype(m.model)
        hs, ys = zip(*(m.model.record(x[i:i + batch_size].to(dt)) for i in range(0, len(x), batch_size)))
        h, y = torch.cat(hs).float(), torch.cat(ys).float()
        if not (bool(torch.isfinite(h).all()) and bool(torch.isfinite(y).all())):
            raise ValueError(f"base model {m.id!r} produced NaN or Inf hidden states or outputs")
        _save_npy(folder / f"hidden_{n}.npy", h.to(dtype).numpy())
        _save_npy(folder / f"outputs_{n}.npy", y.numpy())
        sizes.append(int(h.shape[-1]))
        del hs, ys, h, y
    index = {"format": FORMAT, "ids": population.ids, "state_sizes": sizes,
             "output_kind": population.task.output_kind, "family": population.family}
    if population.layer_channels is not None:
        index["layer_channels"] = population.layer_channels
    _io.write_json(folder / INDEX, index)
    return StreamedRecording(folder)


class StreamedRecording:
    """A recording on disk (from ``record_to_disk``), read by offset.

    Attributes match dynamo_ext.population.Recording where fitting needs them: ``x``
    [S, T, I] (in memory: small), ``n_models``, ``state_sizes``,
    ``output_kind``, ``family``, ``layer_channels``, ``ids``; ``hidden(n)`` and ``outputs(n)`` are NpyRows readers.

    Raises:
        ValueError: a missing or corrupted index or array file (named).
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ValueError(f"recording folder {str(self.folder)!r} does not exist")
        info = _io.read_json(self.folder / INDEX, "recording index")
        if info.get("format") != FORMAT:
            raise ValueError(f"recording index {str(self.folder / INDEX)!r} has format {info.get('format')!r}, "
                             f"expected {FORMAT!r}")
        self.ids: List[str] = list(info["ids"])
        self.output_kind: str = info["output_kind"]
        self.family: str = info.get("family", "rnn")
        self.layer_channels: Optional[List[List[int]]] = info.get("layer_channels")
        xs = NpyRows(self.folder / "x.npy")
        self.x = torch.from_numpy(np.concatenate(list(xs.chunks(xs.shape[0] or 1))).copy())
        self._hidden = [NpyRows(self.folder / f"hidden_{n}.npy") for n in range(len(self.ids))]
        self._outputs = [NpyRows(self.folder / f"outputs_{n}.npy") for n in range(len(self.ids))]
        steps = (self.x.shape[0], self.x.shape[1] if self.family == "rnn" else 1)  # a CNN's recording: one step
        for n, (h, y) in enumerate(zip(self._hidden, self._outputs)):
            if h.shape[:2] != steps or y.shape[:2] != steps:
                raise ValueError(f"recording {str(self.folder)!r}: model {n}'s arrays {h.shape}, {y.shape} do not "
                                 f"match the probe inputs {tuple(self.x.shape)}")

    @property
    def n_models(self) -> int:
        return len(self.ids)

    @property
    def state_sizes(self) -> List[int]:
        return [int(h.shape[-1]) for h in self._hidden]

    @property
    def n_outputs(self) -> int:
        return int(self._outputs[0].shape[-1])

    def fit_recording(self, x: Optional[Tensor] = None, models=None) -> "StreamedRecording":
        """The recording a fit reads: this one (the fit's targets read only their ``models`` from it)."""
        if x is not None:
            raise ValueError("a StreamedRecording is already made on its probe inputs: argument 'x' must be None")
        return self

    def hidden(self, n: int) -> NpyRows:
        return self._hidden[n]

    def outputs(self, n: int) -> NpyRows:
        return self._outputs[n]

    def disk_bytes(self) -> int:
        """Size of the recording's files on disk."""
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def close(self) -> None:
        """Close the recording's open files (a later read opens them again)."""
        for reader in (*self._hidden, *self._outputs):
            reader.close()


def _rows(reader: NpyRows, idx: Tensor) -> Tensor:
    """Rows ``idx`` of a recording file as a tensor (reads only those rows)."""
    return torch.from_numpy(reader.read(idx.numpy()))


class _StandardizedRows:
    """``[seq_idx]`` -> standardised hidden rows of one model, read from its memory map."""

    def __init__(self, array: NpyRows, mean: Tensor, scale: Tensor, dtype: torch.dtype):
        self.array, self.mean, self.scale, self.dtype = array, mean, scale, dtype

    def __getitem__(self, idx: Tensor) -> Tensor:
        return ((_rows(self.array, idx) - self.mean) / self.scale).to(self.dtype)


class _OutputRows:
    """``[model_idx, seq_idx]`` -> output targets per row (log-probabilities for classes)."""

    def __init__(self, rec: StreamedRecording, dtype: torch.dtype):
        self.rec, self.dtype = rec, dtype
        self.shape = (rec.n_models, *rec.outputs(0).shape[:2], rec.n_outputs)  # [N, S, steps, C]

    def __getitem__(self, key) -> Tensor:
        model_idx, seq_idx = key
        out = torch.empty(len(model_idx), *self.shape[2:], dtype=self.dtype)
        for n in torch.unique(model_idx).tolist():
            rows = (model_idx == n).nonzero().squeeze(1)
            out[rows] = _rows(self.rec.outputs(n), seq_idx[rows]).to(self.dtype)
        return F.log_softmax(out, dim=-1) if self.rec.output_kind == "classes" else out


class StreamedTargets:
    """Fitting targets read from a StreamedRecording batch by batch (same interface as fit.Targets).

    The per-model mean (per unit) and scale (one per model) of the hidden
    states are computed in one pass over each file, ``chunk`` sequences at a
    time. ``models`` (default all) limits this object to those population
    indices: a rank of a distributed fit reads only its own models' files.
    """

    def __init__(self, rec: StreamedRecording, dtype: torch.dtype, chunk: int = 256,
                 models: Optional[Sequence[int]] = None):
        self.x = rec.x.to(dtype)
        self.output_kind = rec.output_kind
        self.models = list(range(rec.n_models)) if models is None else [int(n) for n in models]
        self.means, self.scales, self.hidden = {}, {}, {}
        for n in self.models:
            h = rec.hidden(n)
            count, total, total_sq = 0, np.zeros(h.shape[-1]), np.zeros(h.shape[-1])
            for block in h.chunks(chunk):
                block = block.astype(np.float64).reshape(-1, h.shape[-1])
                if not np.isfinite(block).all():
                    raise ValueError(f"recording {str(rec.folder)!r}: model {n}'s hidden states hold NaN or Inf")
                count += block.shape[0]
                total += block.sum(0)
                total_sq += (block ** 2).sum(0)
            mean = total / count
            var = max(float((total_sq / count - mean ** 2).sum() / h.shape[-1]), 1e-12)
            mean_t = torch.tensor(mean, dtype=torch.float32)
            scale_t = torch.tensor(var ** 0.5, dtype=torch.float32).clamp(min=1e-6)
            self.means[n] = mean_t
            self.scales[n] = scale_t
            self.hidden[n] = _StandardizedRows(h, mean_t, scale_t, dtype)
        self.outputs = _OutputRows(rec, dtype)

    def row_targets(self, model_idx: Tensor, seq_idx: Tensor, dtype: torch.dtype,
                    device: torch.device) -> Tuple[Tensor, Tensor]:
        """Standardised hidden targets of rows (model_idx[b], seq_idx[b]) as (flat, start), as
        ``Targets.row_targets``: each run of rows of one model read from its file at once."""
        models, counts = torch.unique_consecutive(model_idx, return_counts=True)
        pieces = [self.hidden[n][seq].reshape(-1) for n, seq in zip(models.tolist(), seq_idx.split(counts.tolist()))]
        size = torch.repeat_interleave(torch.as_tensor([p.numel() for p in pieces], dtype=torch.long) // counts, counts)
        start = torch.cumsum(size, 0) - size  # the pieces follow the rows' order
        return torch.cat(pieces).to(device=device, dtype=dtype), start
