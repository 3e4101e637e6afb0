"""Resumable fitting: an interrupted fit, run again with resume, ends exactly where an uninterrupted one does."""
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

import dynamo_ext as de
from dynamo_ext.meta.checkpoint import CHECKPOINT

fit_module = sys.modules["dynamo_ext.meta.loop"]  # the training loop calls dynamo_loss from here

KW = dict(steps=40, batch_size=16, state_size=8, max_sequences=60, checkpoint_every=10, progress=False)


def test_interrupted_fit_resumes_to_the_same_result(tiny_population, tmp_path, monkeypatch):
    whole = de.fit(tiny_population, out=tmp_path / "whole", **KW)
    calls = {"n": 0}
    real_loss = fit_module.dynamo_loss

    def failing_loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 26:
            raise KeyboardInterrupt  # interrupted during step 26, after the checkpoint of step 20
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(fit_module, "dynamo_loss", failing_loss)
    with pytest.raises(KeyboardInterrupt):
        de.fit(tiny_population, out=tmp_path / "cut", **KW)
    monkeypatch.setattr(fit_module, "dynamo_loss", real_loss)
    assert (tmp_path / "cut" / CHECKPOINT).is_file() and not (tmp_path / "cut" / "meta.json").exists()
    resumed = de.fit(tiny_population, out=tmp_path / "cut", resume=True, **KW)
    assert resumed.history["loss"] == whole.history["loss"]
    for k, v in whole.meta.state_dict().items():
        torch.testing.assert_close(resumed.meta.state_dict()[k], v, rtol=0, atol=0, msg=k)


def test_resume_refuses_other_settings(tiny_population, tmp_path):
    de.fit(tiny_population, out=tmp_path, **KW)
    with pytest.raises(ValueError, match="other settings: lr=0.01 \\(now 0.02\\)"):
        de.fit(tiny_population, out=tmp_path, resume=True, **{**KW, "lr": 0.02})
    with pytest.raises(ValueError, match="'resume' needs 'out'"):
        de.fit(tiny_population, resume=True, **KW)
    (tmp_path / CHECKPOINT).write_bytes(b"truncated")
    with pytest.raises(ValueError, match="checkpoint.*corrupted"):
        de.fit(tiny_population, out=tmp_path, resume=True, **KW)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_step(tiny_population, tmp_path):
    pop = tiny_population.save(tmp_path / "pop")
    args = ["fit", str(pop), "--steps", "4000", "--batch-size", "32", "--state-size", "16", "--max-sequences", "200",
            "--checkpoint-every", "7", "--no-progress"]
    # every run with the same thread count: the fused op gives each thread its own rows, so the
    # order in which weight gradients are summed (and their last bits) depends on it
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole_cmd = [sys.executable, "-m", "dynamo_ext.cli", *args, "--out", str(tmp_path / "whole")]
    assert subprocess.run(whole_cmd, env=one_thread).returncode == 0
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "dynamo_ext.cli", *args, "--out", str(out), "--resume"]
    rng = random.Random(0)
    kills, steps_seen = 0, []
    for _ in range(30):
        if kills == 10:
            break
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=one_thread)
        time.sleep(rng.uniform(2.0, 3.5))  # import, recording, then some steps
        if proc.poll() is not None:
            break  # finished before this kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        if (out / CHECKPOINT).is_file():
            from dynamo_ext import _io
            steps_seen.append(int(_io.read_metadata(out / CHECKPOINT)["step"]))
    print(f"killed {kills} times; checkpoints at steps {steps_seen}")
    assert kills == 10, "the fit finished before it could be killed 10 times"
    assert steps_seen == sorted(steps_seen)  # checkpoints never go back
    assert subprocess.run(cmd, env=one_thread).returncode == 0
    whole, resumed = load_file(tmp_path / "whole" / "meta.safetensors"), load_file(out / "meta.safetensors")
    assert whole.keys() == resumed.keys()
    for k in whole:
        torch.testing.assert_close(resumed[k], whole[k], rtol=0, atol=0, msg=k)


def test_interrupted_zoo_keeps_its_finished_models(digits_task, tmp_path, monkeypatch):
    zoo = sys.modules["dynamo_ext.population.zoo"]
    kw = dict(archs=("rnn", "gru"), hidden_sizes=(6,), n_seeds=2, config=zoo.TrainConfig(epochs=1), progress=False)
    whole = de.train_population(digits_task, out=tmp_path / "whole", **kw)
    real_train, trained = zoo.train_base_model, []

    def train(arch, hidden, task, seed, config, progress=None, family="rnn"):
        trained.append((arch, seed))
        if len(trained) == 3:
            raise KeyboardInterrupt  # killed while training the third model
        return real_train(arch, hidden, task, seed, config, progress=progress, family=family)

    monkeypatch.setattr(zoo, "train_base_model", train)
    with pytest.raises(KeyboardInterrupt):
        de.train_population(digits_task, out=tmp_path / "cut", **kw)
    assert de.Population.load(tmp_path / "cut").ids == whole.ids[:2]  # both finished models on disk
    trained.clear()
    pop = de.train_population(digits_task, out=tmp_path / "cut", resume=True, **kw)
    assert trained == [("gru", 0), ("gru", 1)]  # only the unfinished models were trained
    assert pop.ids == whole.ids
    for a, b in zip(pop.members, whole.members):
        for k, v in b.model.state_dict().items():
            torch.testing.assert_close(a.model.state_dict()[k], v, rtol=0, atol=0)
    assert de.Population.load(tmp_path / "cut").ids == whole.ids
