"""Distributed fitting (dynamo_ext.meta.distributed): 2 CPU ranks on loopback against one process."""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from safetensors.torch import load_file

import dynamo_ext as de
from dynamo_ext.meta.checkpoint import CHECKPOINT
from dynamo_ext.meta.distributed import Shard
from dynamo_ext.meta.checkpoint import load_meta
from dynamo_ext.population.streaming import StreamedRecording, record_to_disk

FIT = dict(steps=50, batch_size=32, state_size=16, max_sequences=200, dtype="float64", seed=3)


def _rel_diff(a, b):
    a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    return float(((a - b).abs() / b.abs()).max())


@pytest.mark.parametrize("n_models,world", [(3, 2), (4, 2), (7, 3), (5, 5)])
def test_shard_blocks_cover_every_model_once(n_models, world):
    shards = [Shard(r, world, n_models) for r in range(world)]
    held = [n for s in shards for n in s.models]
    assert held == list(range(n_models))  # contiguous blocks in rank order, each model once
    assert all(s.models for s in shards)
    idx = torch.randint(n_models, (40,), generator=torch.Generator().manual_seed(0))
    for s in shards:
        rows = s.rows(idx)
        assert set(idx[rows].tolist()) <= set(s.models)
        assert len(rows) == sum(int(i) in s.models for i in idx)


def test_two_ranks_under_torchrun_match_one_process(tiny_population, tmp_path):
    """`dynamo-ext fit --distributed` on 2 gloo ranks: the loss history of 50 float64 steps and the
    refined embeddings equal a single process's (target: 1e-4 relative)."""
    tiny_population.save(tmp_path / "pop")
    single = de.fit(tiny_population, refine_steps=5, progress=False, out=tmp_path / "single", checkpoint_every=25,
                    **FIT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "dynamo_ext.cli", "fit", "--distributed", str(tmp_path / "pop"), "--out", str(tmp_path / "meta"),
           "--steps", "50", "--batch-size", "32", "--state-size", "16", "--max-sequences", "200",
           "--dtype", "float64", "--seed", "3", "--refine-steps", "5", "--checkpoint-every", "25", "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("fitted in") == 1  # only rank 0 reports and writes
    history = json.loads((tmp_path / "meta" / "meta.json").read_text())["history"]
    for key in ("loss", "loss_h", "loss_y", "loss_theta", "refine_loss"):
        assert len(history[key]) == len(single.history[key])
        assert _rel_diff(history[key], single.history[key]) <= 1e-4, key
    meta = load_meta(tmp_path / "meta")
    assert torch.allclose(meta.theta, single.meta.theta, rtol=1e-6, atol=1e-9)
    for a, b in zip(meta.state_dict().values(), single.meta.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-9)
    # the checkpoint (weights, Adam's moments, generator) is the single process's: it resumes anywhere
    ours, theirs = (load_file(tmp_path / d / CHECKPOINT) for d in ("meta", "single"))
    assert ours.keys() == theirs.keys()
    for k in ours:
        assert torch.allclose(ours[k].double(), theirs[k].double(), rtol=1e-6, atol=1e-9), k


def _streamed_rank(rank, world, port, folder, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        res = de.fit(StreamedRecording(folder), distributed=True, progress=False, **FIT)
        torch.save({"loss": res.history["loss"], "theta": res.meta.theta.detach()}, f"{out}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streamed_recording_fits_the_same_on_two_ranks(tiny_population, tmp_path):
    """fit(StreamedRecording, distributed=True) from a process group of one's own (torch.multiprocessing):
    every rank ends with the single-process meta-model."""
    rec = record_to_disk(tiny_population, tmp_path / "rec", max_sequences=200)
    single = de.fit(rec, progress=False, **FIT)
    mp.start_processes(_streamed_rank, args=(2, _free_port(), str(tmp_path / "rec"), str(tmp_path)), nprocs=2,
                       start_method="spawn")
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert _rel_diff(got["loss"], single.history["loss"]) <= 1e-4
        assert torch.allclose(got["theta"], single.meta.theta, rtol=1e-6, atol=1e-9)


def test_distributed_without_a_process_group_is_refused(tiny_population, tmp_path):
    with pytest.raises(ValueError, match="torchrun"):
        de.fit(tiny_population, distributed=True, progress=False, steps=2)
    tiny_population.save(tmp_path / "pop")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    proc = subprocess.run([sys.executable, "-m", "dynamo_ext.cli", "fit", "--distributed", str(tmp_path / "pop"),
                           "--out", str(tmp_path / "meta")], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "must run under torchrun" in proc.stderr and "RANK" in proc.stderr
    assert not (tmp_path / "meta").exists()


def test_device_setting_is_checked(tiny_population):
    with pytest.raises(ValueError, match="'device'"):
        de.fit(tiny_population, device="tpu", steps=2, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            de.fit(tiny_population, device="cuda", steps=2, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_on_cuda_matches_cpu(tiny_population):
    cpu = de.fit(tiny_population, progress=False, **FIT)
    gpu = de.fit(tiny_population, device="cuda", progress=False, **FIT)
    assert gpu.meta.theta.device.type == "cuda"
    assert _rel_diff(gpu.history["loss"], cpu.history["loss"]) <= 1e-6
