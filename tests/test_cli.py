"""The dynamo-ext commands on a tiny digits population: zoo, fit, analyze, and their errors."""
import json

import pytest

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
    for name in ("metrics.json", "report.md", "embedding.png", "loss.png"):
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
