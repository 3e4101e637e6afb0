"""bench/gpu/run_all.sh stays runnable: its dry run (CPU, toy sizes) goes through every step that does
not need a GPU and writes the files the GPU run writes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_script_dry_run_writes_every_result(tmp_path):
    out = tmp_path / "gpu"
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "bench/gpu/run_all.sh"), "--dry-run", str(out)], env=env,
                          capture_output=True, text=True, timeout=1200)
    summary = (out / "summary.txt").read_text()
    assert proc.returncode == 0, summary + "".join(p.read_text()[-2000:] for p in out.glob("*.log"))
    for name in ("import", "pytest_cuda", "small_calls", "kernels", "bench_scale"):
        assert f"{name} rc=0" in summary, summary
    assert "memcheck skipped" in summary
    kernels = json.loads((out / "kernels.json").read_text())
    impls = {(r["op"], r["impl"]) for r in kernels["rows"]}
    assert {("meta_rnn_sequence", "fused"), ("meta_rnn_sequence", "torch_nn"),
            ("newton_fixed_points", "fused"), ("newton_fixed_points", "python_newton")} <= impls
    assert all(r["max_rel_err"] <= 1e-4 for r in kernels["rows"] if r["op"] == "meta_rnn_sequence")
    scale = json.loads((out / "bench-scale.json").read_text())
    assert [p["n_models"] for p in scale["points"]] == [4, 8]
    for p in scale["points"]:
        assert "error" not in p, p
        assert p["fit_step_s"] > 0 and p["peak_bytes"] > 0 and set(p["baselines_s"]) >= {"cka", "svcca", "procrustes"}
    assert "skipped" in (out / "pytest_cuda.log").read_text() or "deselected" in (out / "pytest_cuda.log").read_text()
