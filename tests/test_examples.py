"""The examples a researcher runs first: the flip-flop walkthrough (a jupytext percent notebook) runs
end to end with tiny settings and writes its figures; it reads as a notebook."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

WALKTHROUGH = Path(__file__).resolve().parents[1] / "python" / "flip_flop_walkthrough.py"


def test_walkthrough_reads_as_a_notebook_of_markdown_and_code_cells():
    jupytext = pytest.importorskip("jupytext", reason="jupytext is not installed (the [test] extra)")
    nb = jupytext.read(WALKTHROUGH)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds.count("markdown") >= 6 and kinds.count("code") >= 6, kinds
    assert nb.cells[0].cell_type == "markdown" and "flip-flop" in nb.cells[0].source


@pytest.mark.slow
def test_walkthrough_runs_end_to_end_with_tiny_settings(tmp_path):
    env = {**os.environ, "DYNAMO_EXAMPLE_QUICK": "1", "DYNAMO_EXAMPLE_OUT": str(tmp_path / "out")}
    run = subprocess.run([sys.executable, str(WALKTHROUGH)], env=env, capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    for name in ("embedding.png", "fixed_points_base.png", "bifurcation.png"):
        assert (tmp_path / "out" / name).stat().st_size > 5_000, name
    assert (tmp_path / "out" / "population" / "manifest.json").is_file()
    assert "stable points: base" in run.stdout and "GRUs averaged in theta" in run.stdout, run.stdout[-2000:]
