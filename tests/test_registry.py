"""The measure registry: a new measure is one registration, and every comparison reads it. A toy measure
(the difference of two networks' mean absolute activity) registered here reaches ``distance_matrices``,
``pairwise_distances``, ``analyze`` (clustering, group tests, the report's tables), the estimator's
``pairwise_distances`` and ``group_test``, the explorer's comparison and the CLI's choices."""
import numpy as np
import pytest
import torch

import dynamo_ext as de
from dynamo_ext import compare
from dynamo_ext.compare.registry import Measure, MeasureInputs, register, unregister


def _activity(h) -> float:
    return float(torch.as_tensor(np.asarray(h) if not isinstance(h, torch.Tensor) else h).abs().double().mean())


def _toy_arrays(data, progress=False):
    a = np.array([_activity(x) for x in data])
    return np.abs(a[:, None] - a[None])


TOY = Measure(name="toy", description="difference of mean absolute activity", range="in [0, inf)",
              source="this test", reads="hidden", pair=lambda a, b: abs(_activity(a) - _activity(b)),
              matrix=lambda inputs: _toy_arrays(inputs.recording.hidden), arrays=_toy_arrays)


@pytest.fixture
def toy():
    register(TOY)
    yield TOY
    unregister("toy")


def test_every_registered_measure_says_what_it_is_where_it_comes_from_and_how_it_is_computed():
    for m in compare.REGISTRY.values():
        assert m.description and m.range and m.source and callable(m.matrix), m.name
        assert m.reads in compare.registry.READS
    assert compare.measure_names(dynamo=True) == ("dynamo", "dynamo_functional")
    assert compare.get_measure("theta") is compare.get_measure("dynamo")  # the estimator's short names
    with pytest.raises(ValueError, match="registered already"):
        register(compare.get_measure("cka"))
    with pytest.raises(ValueError, match="argument 'reads' must be one of"):
        Measure(name="x", description="d", range="r", source="s", reads="spikes", matrix=lambda i: None)


def test_a_registered_measure_reaches_every_comparison(toy, tiny_population, tiny_fit, tmp_path):
    pop, meta = tiny_population, tiny_fit.meta
    assert "toy" in compare.MEASURES and "toy" in compare.PAIRWISE_MEASURES
    rec = pop.record(max_sequences=50)
    d = compare.distance_matrices(pop, rec, ["toy", "cka"])
    assert np.allclose(d["toy"], _toy_arrays(rec.hidden)) and d["toy"].shape == (3, 3)
    arrays = [h.numpy() for h in rec.hidden]
    assert np.allclose(compare.pairwise_distances(arrays, "toy"), _toy_arrays(arrays))
    # analyze: clustering rows, group tests and the report's table and its note
    metrics = de.report.analyze(meta, pop, measures=("toy",), labels_per_class=None, fidelity_inits=8,
                                group_labels={"pair": [0, 0, 1]}, n_permutations=9)
    b = metrics["baselines"]
    assert {r["measure"] for r in b["clustering"]} == {"dynamo", "dynamo_functional", "toy"}
    assert {r["measure"] for r in b["tests"]} == {"dynamo", "dynamo_functional", "toy"}
    de.report.write_report(metrics, tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "toy (difference of mean absolute activity)" in report and "| toy" in report
    # the estimator and the explorer
    est = de.DYNAMO(steps=5, state_size=8, max_sequences=50).fit(pop)
    assert np.allclose(est.pairwise_distances("toy"), _toy_arrays(pop.record(max_sequences=200).hidden))
    assert est.group_test([0, 0, 1], measure="toy", n_permutations=9).measure == "toy"
    from dynamo_ext.explorer.model import Explorer

    explorer = Explorer(meta, pop)
    assert "toy" in explorer.compare(pop.ids[0], pop.ids[1])["measures"]
    from dynamo_ext.cli.parser import build_parser

    args = build_parser().parse_args(["analyze", "pop", "meta", "--out", "r", "--measures", "toy"])
    assert args.measures == ["toy"]


def test_measure_inputs_share_work_between_measures_that_read_it():
    calls = []
    inputs = MeasureInputs(recording=None)
    for _ in range(3):
        inputs.shared("gram", lambda: calls.append(1) or "computed")
    assert calls == [1] and inputs.cache["gram"] == "computed"


def test_the_guides_example_of_a_new_measure_runs_as_printed():
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[1] / "docs/guide/comparing.md").read_text()
    code = re.search(r"### Adding a measure.*?```python\n(.*?)```", guide, re.S).group(1)
    exec(compile(code, "comparing.md", "exec"), {})
    try:
        d = compare.pairwise_distances([np.ones((3, 4, 2)), 2 * np.ones((3, 4, 5))], "activity")
        assert np.allclose(d, [[0, 1], [1, 0]])
    finally:
        unregister("activity")
