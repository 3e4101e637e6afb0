"""The dynamo-ext commands on a tiny digits population: zoo, fit, analyze, and their errors."""
import json

import pytest

import dynamo_ext as de
from dynamo_ext.cli import main


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    pop, meta, rep = root / "pop", root / "meta", root / "report"
    assert main(["zoo", "--task", "digits", "--archs", "gru", "lstm", "--seeds", "2", "--hidden-sizes", "8",
                 "--epochs", "2", "--out", str(pop), "--no-progress"]) == 0
    assert main(["fit", str(pop), "--out", str(meta), "--steps", "30", "--batch-size", "16", "--state-size", "8",
                 "--max-sequences", "100", "--no-progress"]) == 0
    assert main(["analyze", str(pop), str(meta), "--out", str(rep), "--no-progress"]) == 0
    return pop, meta, rep


def test_commands_write_their_files(cli_run):
    pop, meta, rep = cli_run
    assert (pop / "manifest.json").is_file() and len(list((pop / "models").glob("*.safetensors"))) == 4
    assert (meta / "meta.safetensors").is_file() and (meta / "meta.json").is_file()
    for name in ("metrics.json", "report.md", "report.html", "embedding.png", "loss.png", "distances.png",
                 "few_labels.png"):
        assert (rep / name).stat().st_size > 0, name
    metrics = json.loads((rep / "metrics.json").read_text())
    assert [p["id"] for p in metrics["population"]] == ["gru-h8-s0", "gru-h8-s1", "lstm-h8-s0", "lstm-h8-s1"]
    for row in metrics["emulation"]:
        assert set(row) == {"id", "output_agreement", "hidden_r2", "meta_test_accuracy"}
        assert 0.0 <= row["output_agreement"] <= 1.0
    labels = [a["label"] for a in metrics["averaging"]]
    assert labels == ["gru", "lstm", "all"]
    assert metrics["clustering"]["k"] == 2 and metrics["clustering"]["labels_by"] == "arch"
    fp = metrics["fixed_points"]
    assert [r["id"] for r in fp] == [p["id"] for p in metrics["population"]]
    assert all(r["n_fixed_points"] == r["n_stable"] + r["n_unstable"] for r in fp)
    assert "## Fixed points of the meta-model" in (rep / "report.md").read_text()
    assert (rep / "embedding.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyze_reports_the_baselines(cli_run):
    _, _, rep = cli_run
    b = json.loads((rep / "metrics.json").read_text())["baselines"]
    assert set(b["distances"]) == {"dynamo", "dynamo_functional", "cka", "svcca", "procrustes", "weights", "outputs"}
    assert {(r["measure"], r["labels_by"]) for r in b["clustering"]} == {
        (m, "arch") for m in b["distances"]}  # one task: nothing to score by task
    assert [r["labels_per_class"] for r in b["few_labels"]] == [1, 5, 20]
    assert [r["n_labelled"] for r in b["few_labels"]] == [10, 50, 200]
    md = (rep / "report.md").read_text()
    assert "## DYNAMO beside the baselines" in md and "DYNAMO's best reading" in md and "wins: " in md
    page = (rep / "report.html").read_text()
    assert page.count("<script") >= 2 and "plotly" in page.lower()  # plotly.js inlined, works offline
    assert "gru-h8-s1" in page and "test accuracy" in page  # hover text names each model
    assert "<script src" not in page  # nothing fetched from a CDN


def test_adapt_and_reparam_check_commands(cli_run, tmp_path):
    pop, meta, _ = cli_run
    assert main(["adapt", str(pop), str(meta), "--labels-per-class", "2", "--out", str(tmp_path / "a"),
                 "--no-progress"]) == 0
    rows = json.loads((tmp_path / "a" / "adapt.json").read_text())
    assert len(rows) == 1 and rows[0]["n_labelled"] == 20 and 0 <= rows[0]["adapt_accuracy"] <= 1
    assert main(["reparam-check", str(pop), "--steps", "20", "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    res = json.loads((tmp_path / "r" / "reparameterization.json").read_text())
    rows = {r["measure"]: r for r in res["rows"]}
    assert set(rows) == {"dynamo", "cka", "procrustes", "weights"} and rows["dynamo"]["copies"] == 4
    assert rows["cka"]["nearest_is_original"] == 1.0  # CKA is invariant to permutations and sign flips
    assert len(res["embedding"]) == 8


def test_zoo_trains_a_multitask_population(tmp_path):
    out = tmp_path / "mt"
    assert main(["zoo", "--task", "flipflop", "first", "--archs", "gru", "--seeds", "1", "--hidden-sizes", "4",
                 "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["tasks"]) == {"flipflop", "first"}
    assert [m["task"] for m in manifest["models"]] == ["flipflop", "first"]


def test_errors_are_reported_not_raised(cli_run, tmp_path, capsys):
    pop, meta, _ = cli_run
    assert main(["fit", str(tmp_path / "missing"), "--out", str(tmp_path / "m"), "--no-progress"]) == 2
    assert "population folder" in capsys.readouterr().err
    assert main(["fit", str(pop), "--out", str(tmp_path / "m"), "--steps", "0", "--no-progress"]) == 2
    assert "'steps'" in capsys.readouterr().err
    assert main(["analyze", str(pop), str(tmp_path / "nometa"), "--out", str(tmp_path / "r")]) == 2
    assert "meta-model folder" in capsys.readouterr().err
    assert not (tmp_path / "m").exists() and not (tmp_path / "r").exists()


def test_fixed_points_command(cli_run, tmp_path):
    pop, meta, _ = cli_run
    out = tmp_path / "fp"
    assert main(["fixed-points", str(meta), "--model-id", "gru-h8-s0", "--population", str(pop), "--n-inits", "32",
                 "--scan-to", "lstm-h8-s1", "--steps", "3", "--out", str(out), "--no-progress"]) == 0
    rows = json.loads((out / "scan.json").read_text())["rows"]
    assert len(rows) == 3 and all(r["n_fixed_points"] == r["n_stable"] + r["n_saddle_1"] + r["n_unstable_more"]
                                  for r in rows)
    assert (out / "bifurcation.png").read_bytes()[:4] == b"\x89PNG"
    info = json.loads((out / "fixed_points.json").read_text())
    assert info["n_fixed_points"] == len(info["states"]) >= 1
    assert all(r <= 1e-10 for r in info["residuals"])
    assert len(info["states_in_base_coordinates"][0]) == 8
    assert (out / "fixed_points.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["fixed-points", str(meta), "--model-id", "nope", "--out", str(out)]) == 2


def test_every_bad_output_folder_is_refused_before_any_work(cli_run, tmp_path, capsys, monkeypatch):
    import os

    import dynamo_ext.meta.fitting as fitting

    pop, meta, rep = cli_run
    calls = []
    monkeypatch.setattr(fitting, "train_loop", lambda *a, **k: calls.append(1))  # no fit may start
    a_file = tmp_path / "meta.txt"
    a_file.write_text("mine")
    assert main(["fit", str(pop), "--out", str(a_file), "--steps", "5", "--no-progress"]) == 2
    assert "argument '--out' must be a folder, got the existing file" in capsys.readouterr().err
    assert a_file.read_text() == "mine"
    assert main(["fit", str(pop), "--out", str(a_file / "sub"), "--no-progress"]) == 2
    assert "cannot be created" in capsys.readouterr().err
    assert main(["fit", str(pop), "--out", str(meta), "--no-progress"]) == 2
    assert "already holds another run's results (meta.safetensors, meta.json)" in capsys.readouterr().err
    assert main(["analyze", str(pop), str(meta), "--out", str(rep), "--no-progress"]) == 2
    assert "(metrics.json, report.md)" in capsys.readouterr().err
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            assert main(["fit", str(pop), "--out", str(locked / "meta"), "--no-progress"]) == 2
            assert "no write permission" in capsys.readouterr().err
        finally:
            locked.chmod(0o700)
    assert calls == []
    with pytest.raises(ValueError, match="argument 'out' .* already holds another run's results"):
        fitting.fit(de.Population.load(pop), steps=5, out=meta, progress=False)
    assert calls == []


def test_overwrite_replaces_another_runs_results(cli_run, tmp_path):
    import shutil

    pop, meta, _ = cli_run
    again = tmp_path / "meta"
    shutil.copytree(meta, again)
    before = (again / "meta.safetensors").read_bytes()
    assert main(["fit", str(pop), "--out", str(again), "--steps", "5", "--batch-size", "8", "--state-size", "6",
                 "--max-sequences", "50", "--no-progress", "--overwrite"]) == 0
    assert (again / "meta.safetensors").read_bytes() != before


def test_fit_options_are_fitconfigs_fields_with_its_defaults():
    import dataclasses

    from dynamo_ext.cli.parser import build_parser
    from dynamo_ext.meta.config import FitConfig

    args = build_parser().parse_args(["fit", "pop", "--out", "m", "--lambda-theta", "0.5", "--memory-budget-gb",
                                      "none", "--relax-steps", "3"])
    for f in dataclasses.fields(FitConfig):
        expected = {"lambda_theta": 0.5, "memory_budget_gb": None, "relax_steps": 3}.get(f.name, f.default)
        assert getattr(args, f.name) == expected, f.name
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fit", "pop", "--out", "m", "--cell", "lstm"])


def test_fit_with_n_fits_writes_one_folder_per_fit(cli_run, tmp_path, capsys):
    pop = cli_run[0]
    assert main(["fit", str(pop), "--out", str(tmp_path / "fits"), "--steps", "10", "--batch-size", "16",
                 "--state-size", "8", "--max-sequences", "50", "--n-fits", "2", "--seed", "3", "--no-progress"]) == 0
    metas = [de.load_meta(tmp_path / "fits" / f"fit-{i}") for i in range(2)]
    assert metas[0].model_ids == metas[1].model_ids and "(seed 4)" in capsys.readouterr().out
    assert main(["fit", str(pop), "--out", str(tmp_path / "bad"), "--n-fits", "0", "--no-progress"]) == 2


def test_analyze_a_folder_of_fits_reports_the_spread(cli_run, tmp_path):
    pop = cli_run[0]
    assert main(["fit", str(pop), "--out", str(tmp_path / "fits"), "--steps", "10", "--batch-size", "16",
                 "--state-size", "8", "--max-sequences", "50", "--n-fits", "2", "--no-progress"]) == 0
    assert main(["analyze", str(pop), str(tmp_path / "fits"), "--out", str(tmp_path / "rep"), "--no-baselines",
                 "--labels-per-class", "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert metrics["spread"]["n_fits"] == 2 and len(metrics["spread"]["models"]) == 4
    assert "## Spread across fits" in (tmp_path / "rep" / "report.md").read_text()
    assert (tmp_path / "rep" / "spread.png").stat().st_size > 0
    assert "id='spread'" in (tmp_path / "rep" / "report.html").read_text()
