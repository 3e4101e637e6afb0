"""Recordings on disk, read batch by batch: the fit equals the in-memory fit."""
import numpy as np
import pytest
import torch

import dynamo_ext as de
from dynamo_ext.population.streaming import NpyRows, StreamedRecording, record_to_disk


def test_streamed_fit_matches_the_in_memory_fit(tiny_population, tmp_path):
    rec = record_to_disk(tiny_population, tmp_path / "rec", max_sequences=120)
    assert rec.ids == tiny_population.ids and rec.state_sizes == [12, 12, 24]
    assert sorted(p.name for p in (tmp_path / "rec").iterdir())[:2] == ["hidden_0.npy", "hidden_1.npy"]
    assert not list((tmp_path / "rec").glob(".*tmp"))  # nothing half-written left behind
    kw = dict(steps=25, batch_size=16, state_size=8, progress=False)
    memory = de.fit(tiny_population, max_sequences=120, **kw)
    streamed = de.fit(StreamedRecording(tmp_path / "rec"), **kw)
    np.testing.assert_allclose(streamed.history["loss"], memory.history["loss"], rtol=1e-5)
    torch.testing.assert_close(streamed.meta.theta, memory.meta.theta, rtol=1e-4, atol=1e-5)
    assert streamed.meta.model_ids == tiny_population.ids


def test_rows_are_read_by_offset(tmp_path):
    a = np.random.default_rng(0).normal(size=(9, 4, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    rows = NpyRows(tmp_path / "a.npy")
    assert rows.shape == (9, 4, 3)
    idx = [7, 0, 7, 3]
    np.testing.assert_array_equal(rows.read(idx), a[idx])
    np.testing.assert_array_equal(np.concatenate(list(rows.chunks(4))), a)
    with pytest.raises(IndexError):
        rows.read([9])
    (tmp_path / "b.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:-5])
    with pytest.raises(ValueError, match="truncated"):
        NpyRows(tmp_path / "b.npy")
    with pytest.raises(ValueError, match="does not exist"):
        NpyRows(tmp_path / "c.npy")


def test_readers_of_many_files_keep_at_most_the_open_file_limit(tmp_path, monkeypatch):
    """A recording of N models has 2N files: the readers share a bounded set of open descriptors (the
    least recently read closed first), and reopen a closed file when read again."""
    import os

    from dynamo_ext.population import streaming

    monkeypatch.setattr(streaming, "MAX_OPEN_FILES", 3)
    rng = np.random.default_rng(1)
    arrays = [rng.normal(size=(5, 2, 1 + i)).astype(np.float32) for i in range(8)]
    for i, a in enumerate(arrays):
        np.save(tmp_path / f"a{i}.npy", a)
    open_before = len(os.listdir("/proc/self/fd"))
    readers = [NpyRows(tmp_path / f"a{i}.npy") for i in range(8)]
    for _ in range(2):  # the second pass reopens files the first closed
        for a, r in zip(arrays, readers):
            np.testing.assert_array_equal(r.read([4, 1]), a[[4, 1]])
            assert len(os.listdir("/proc/self/fd")) - open_before <= 3
    for r in readers:
        r.close()
    assert len(os.listdir("/proc/self/fd")) <= open_before  # (the cache may also have closed older readers')
    assert not any(r._key in streaming._OPEN for r in readers)


def test_bad_recording_folders(tiny_population, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        StreamedRecording(tmp_path / "none")
    rec_dir = tmp_path / "rec"
    record_to_disk(tiny_population, rec_dir, max_sequences=20)
    (rec_dir / "outputs_1.npy").unlink()
    with pytest.raises(ValueError, match="outputs_1.npy.*does not exist"):
        StreamedRecording(rec_dir)


def test_population_recording_and_streamed_recording_follow_one_recording_protocol(tiny_population, tmp_path):
    from dynamo_ext.population.recording import RecordingSource
    from dynamo_ext.population.streaming import StreamedRecording, record_to_disk

    rec = tiny_population.record(max_sequences=20)
    record_to_disk(tiny_population, tmp_path / "rec", max_sequences=20)
    streamed = StreamedRecording(tmp_path / "rec")
    for source in (tiny_population, rec, streamed):
        assert isinstance(source, RecordingSource), type(source).__name__
        assert source.n_models == 3 and source.state_sizes == [12, 12, 24] and source.n_outputs == 10
        assert source.output_kind == "classes" and source.family == "rnn"
    assert tiny_population.ids == streamed.ids and rec.ids is None
    sub = rec.fit_recording(models=[2, 0])
    assert sub.n_models == 2 and torch.equal(sub.hidden[0], rec.hidden[2]) and torch.equal(sub.outputs[1], rec.outputs[0])
    assert streamed.fit_recording() is streamed
    with pytest.raises(ValueError, match="argument 'x' must be None"):
        rec.fit_recording(x=rec.x)
    assert not isinstance(object(), RecordingSource)
