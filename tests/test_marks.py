"""Marks on readings that cannot be trusted: poorly emulated models, unseen slow modes, extrapolated thetas."""
import json

import pytest
import torch

import dynamo_ext as de
from dynamo_ext.dynamics.linearization import compare_linearization, summary
from dynamo_ext.dynamics.marks import BELOW_THRESHOLD, UNSEEN_SLOW_MODE, model_marks
from dynamo_ext.uses.extrapolation import support


def test_an_unseen_mode_slower_than_every_seen_one_is_flagged():
    a = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # the map reads the first two coordinates only
    base = torch.diag(torch.tensor([0.5, 0.4]))
    slow = compare_linearization(base, torch.diag(torch.tensor([0.5, 0.4, 0.95])), a)
    fast = compare_linearization(base, torch.diag(torch.tensor([0.5, 0.4, 0.3])), a)
    assert slow["unseen"]["slower_than_seen"] and not fast["unseen"]["slower_than_seen"]
    assert summary([slow, fast])["n_unseen_slower"] == 1
    assert model_marks({"hidden_r2": 0.99}, {"linearization_summary": summary([slow])}) == [UNSEEN_SLOW_MODE]
    assert model_marks({"hidden_r2": 0.99}, {"linearization_summary": summary([fast])}) == []


def test_quality_marks_follow_the_threshold():
    assert model_marks({"hidden_r2": 0.5}) == [BELOW_THRESHOLD]
    assert model_marks({"hidden_r2": 0.95}) == []
    assert model_marks({"hidden_r2": 0.5}, quality_threshold=None) == []
    assert model_marks({"hidden_r2": float("nan")}) == [BELOW_THRESHOLD]  # no R^2 is no evidence


def test_support_measures_the_distance_to_the_nearest_base_model(tiny_fit):
    meta = tiny_fit.meta
    theta = meta.theta.detach()
    at = support(meta, theta[1])
    assert at["nearest_model"] == meta.model_ids[1] and at["relative_distance"] == 0.0 and not at["extrapolation"]
    mid = support(meta, 0.5 * (theta[0] + theta[1]))
    assert mid["nearest_distance"] <= 0.5 * float((theta[0] - theta[1]).norm()) + 1e-6
    far = support(meta, theta[0] + 100 * (theta.max() - theta.min() + 1))
    assert far["extrapolation"] and far["relative_distance"] > 10
    with pytest.raises(ValueError, match="'theta'"):
        support(meta, torch.zeros(meta.embedding_dim + 1))
    averaged = de.average(meta, [0, 1])
    assert support(meta, averaged.theta)["relative_distance"] >= 0


def test_scan_rows_carry_the_distance_to_the_nearest_base_model(tiny_fit):
    from dynamo_ext.dynamics.path_scan import embedding_path, scan

    meta = tiny_fit.meta
    rows = scan(meta, embedding_path(meta, 0, 1, steps=3), n_inits=8).table()
    assert rows[0]["nearest_model"] == meta.model_ids[0] and rows[0]["nn_distance"] == pytest.approx(0.0, abs=1e-6)
    assert all("extrapolation" in r for r in rows)


def test_report_marks_poorly_emulated_models_and_leaves_them_out_of_the_tests(tiny_population, tiny_fit, tmp_path):
    from dynamo_ext.meta.evaluate import emulation
    from dynamo_ext.report.analysis import analyze
    from dynamo_ext.report.markdown import write_report

    meta, pop = tiny_fit.meta, tiny_population
    r2 = sorted(row["hidden_r2"] for row in emulation(meta, pop))
    threshold = 0.5 * (r2[0] + r2[1])  # exactly one model below
    m = analyze(meta, pop, labels_per_class=None, fidelity_inits=16, quality_threshold=threshold,
                measures=("cka",), group_labels={"pairs": ["x", "x", "y"]}, n_permutations=9)
    worst = min(m["emulation"], key=lambda row: row["hidden_r2"])["id"]
    assert BELOW_THRESHOLD in m["marks"][worst] and m["quality_threshold"] == threshold
    assert sum(BELOW_THRESHOLD in v for v in m["marks"].values()) == 1
    tests = [r for r in m["baselines"]["tests"] if r["labels"] == "pairs"]
    assert tests and all(r["excluded"] == [worst] for r in tests)
    write_report(m, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "## Marks: readings that cannot be trusted as they stand" in md and f"**{worst}**" in md
    assert f"Left out (below the quality threshold): {worst}" in md
    assert "id='marks'" in (tmp_path / "report.html").read_text()
    json.dumps(m)
    kept = analyze(meta, pop, labels_per_class=None, fidelity_inits=16, quality_threshold=threshold,
                   measures=("cka",), include_poorly_emulated=True, n_permutations=9)
    assert all(r["excluded"] == [] for r in kept["baselines"]["tests"])


def test_the_estimator_marks_poorly_emulated_models(tiny_population):
    est = de.DYNAMO(steps=20, state_size=8, max_sequences=50, quality_threshold=1.0).fit(tiny_population)
    assert set(est.marks_) == set(tiny_population.ids)  # an R^2 of 1 is never reached
    assert all(m == ["below quality threshold"] for m in est.marks_.values())
    lenient = de.DYNAMO(steps=20, state_size=8, max_sequences=50, quality_threshold=None).fit(tiny_population)
    assert lenient.marks_ == {}
