"""The analysis of large populations: within a memory budget (the baselines' recording goes to a temporary
folder when it does not fit a quarter of the budget, every measure reads it from there and gives the
in-memory values, and the folder is removed whether the analysis ends normally or by an error), and
across processes (`dynamo-ext analyze --distributed` on 2 gloo ranks gives one process's metrics)."""
import dataclasses
import glob
import os
import tempfile

import numpy as np
import pytest
import torch

import dynamo_ext as de
from dynamo_ext.compare import registry
from dynamo_ext.population.continuum import continuum_population
from dynamo_ext.population.disk_recording import DiskRecording, hidden_bytes, recording_within
from dynamo_ext.report.analysis import baseline_section


@pytest.fixture(scope="module")
def continuum():
    pop = continuum_population(6, size_range=(3, 12), seed=5)
    return pop, de.fit(pop, steps=30, batch_size=16, max_sequences=64, progress=False).meta


def _scratch_folders():
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "dynamo-analysis-*")))


def test_recording_within_the_budget_is_in_memory_and_over_it_on_disk_with_the_same_values(continuum):
    pop, _ = continuum
    need = hidden_bytes(pop, 40)
    rec = pop.record(max_sequences=40)
    assert need == 4 * sum(h.numel() for h in rec.hidden) + 4 * rec.outputs.numel()
    with recording_within(pop, 40, memory_budget_gb=4 * need / 2 ** 30) as small:  # a quarter: exactly fits
        assert not isinstance(small, DiskRecording)
    before = _scratch_folders()
    with recording_within(pop, 40, memory_budget_gb=need / 2 ** 30) as disk:
        assert isinstance(disk, DiskRecording) and len(_scratch_folders() - before) == 1
        assert disk.state_sizes == rec.state_sizes and torch.equal(disk.x, rec.x)
        torch.testing.assert_close(disk.outputs, rec.outputs, rtol=0, atol=0)
        for h_disk, h in zip(disk.hidden, rec.hidden):
            assert h_disk.shape == h.shape
            torch.testing.assert_close(h_disk.tensor(), h, rtol=0, atol=0)
            torch.testing.assert_close(h_disk[3:17:2, 1:], h[3:17:2, 1:], rtol=0, atol=0)
            torch.testing.assert_close(torch.cat(list(h_disk.chunks(7))), h, rtol=0, atol=0)
    assert _scratch_folders() == before  # removed


def test_baselines_read_from_disk_equal_the_in_memory_ones_and_the_folder_goes_on_error(continuum, monkeypatch):
    pop, meta = continuum
    measures = ["cka", "svcca", "procrustes", "outputs"]
    kwargs = dict(labels_per_class=None, measures=measures, max_sequences=40, n_permutations=19)
    in_memory = baseline_section(meta, pop, memory_budget_gb=None, **kwargs)
    before = _scratch_folders()
    on_disk = baseline_section(meta, pop, memory_budget_gb=1e-6, **kwargs)
    assert _scratch_folders() == before
    assert set(on_disk["distances"]) == set(in_memory["distances"]) >= {"dynamo", "dynamo_functional", *measures}
    for name, d in in_memory["distances"].items():
        assert np.asarray(d)[0, 1] > 0, name
        np.testing.assert_allclose(on_disk["distances"][name], d, rtol=1e-9, atol=1e-12, err_msg=name)

    def fail(inputs):
        assert os.path.isdir(inputs.recording.streamed.folder)
        raise RuntimeError("a measure failed")

    monkeypatch.setitem(registry.REGISTRY, "cka", dataclasses.replace(registry.REGISTRY["cka"], matrix=fail))
    with pytest.raises(RuntimeError, match="a measure failed"):
        baseline_section(meta, pop, memory_budget_gb=1e-6, **kwargs)
    assert _scratch_folders() == before


def _analyze_rank(rank, world, port, pop, meta, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from dynamo_ext.cli import main

    code = main(["analyze", pop, meta, "--out", out, "--no-progress", "--labels-per-class", "--permutations", "19",
                 "--measures", "cka", "svcca", "procrustes", "--memory-budget-gb", "1e-6", "--distributed"])
    torch.distributed.destroy_process_group()
    assert code == 0


def test_analyze_distributed_on_two_ranks_gives_one_process_metrics(tiny_population, tiny_fit, tmp_path):
    import json
    import socket

    import torch.multiprocessing as mp
    from dynamo_ext.cli import main
    from dynamo_ext.meta.checkpoint import save_meta

    pop, meta = tiny_population, tiny_fit.meta
    pop.save(tmp_path / "pop")
    save_meta(meta, tmp_path / "meta")
    args = [str(tmp_path / "pop"), str(tmp_path / "meta")]
    flags = ["--no-progress", "--labels-per-class", "--permutations", "19", "--measures", "cka", "svcca", "procrustes"]
    assert main(["analyze", *args, "--out", str(tmp_path / "one"), *flags]) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_analyze_rank, args=(2, port, *args, str(tmp_path / "two")), nprocs=2, start_method="spawn")
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())["baselines"]
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())["baselines"]
    for name in ("cka", "svcca", "procrustes", "dynamo_functional"):
        assert np.asarray(one["distances"][name])[0, 1] > 0, name
        np.testing.assert_allclose(two["distances"][name], one["distances"][name], rtol=1e-8, atol=1e-12)
    assert main(["analyze", *args, "--out", str(tmp_path / "x"), "--distributed"]) == 2  # outside torchrun
    with pytest.raises(ValueError, match="initialised torch.distributed process group"):  # reaches all_pairs
        baseline_section(meta, pop, labels_per_class=None, measures=["cka"], distributed=True)


def test_fidelity_over_the_time_budget_runs_on_an_evenly_spaced_sample_and_the_report_says_so(continuum, tmp_path):
    from dynamo_ext.report.analysis import FIDELITY_PROBE_MODELS, analyze
    from dynamo_ext.report.markdown import write_report

    pop, meta = continuum
    full = analyze(meta, pop, baselines=False, fidelity_inits=32, time_budget_s=None)
    assert [r["id"] for r in full["fidelity"]] == pop.ids and "fidelity_sample" not in full
    sampled = analyze(meta, pop, baselines=False, fidelity_inits=32, time_budget_s=1e-6)
    sample = sampled["fidelity_sample"]
    ids = [r["id"] for r in sampled["fidelity"]]
    assert sample["models"] == len(ids) == FIDELITY_PROBE_MODELS < sample["of"] == len(pop)
    assert ids[0] == pop.ids[0] and ids[-1] == pop.ids[-1] and ids == [i for i in pop.ids if i in ids]
    assert sample["estimated_s_all"] > 0 and "over the 1e-06 s budget" in sample["why"]
    by_id = {r["id"]: r for r in full["fidelity"]}
    assert all(r["n_matched"] == by_id[r["id"]]["n_matched"] for r in sampled["fidelity"])  # the same rows
    write_report(sampled, tmp_path)
    assert f"Rows for {FIDELITY_PROBE_MODELS} of {len(pop)} models" in (tmp_path / "report.md").read_text()
    assert f"Rows for {FIDELITY_PROBE_MODELS} of {len(pop)} models" in (tmp_path / "report.html").read_text()
