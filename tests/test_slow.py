"""Longer end-to-end checks, marked slow; the README's test command runs them too.

They check the foundation's figures on real data: the default GRU reaches the
published MNIST-1D GRU accuracy, and `dynamo-ext demo --quick` meets its
emulation and averaging criteria.
"""
import json
import shutil

import pytest

import dynamo_ext as de
from dynamo_ext.cli import main
from dynamo_ext.population.training import TrainConfig, evaluate, train_base_model
from dynamo_ext.population.tasks import load_task
from test_fidelity import MATCHED_DISTANCE_BOUND

pytestmark = pytest.mark.slow

PUBLISHED_MNIST1D_GRU = 0.91  # mnist1d README table
# the universality test trains for fewer epochs and fits for fewer steps than the demo (CI time)
UNIVERSALITY_TEST_EPOCHS, UNIVERSALITY_TEST_FIT_STEPS = 80, 1000


@pytest.fixture(scope="module")
def pulse_demo(tmp_path_factory):
    """The quick pulse demo's output folder, run once for the tests that read it. Its population holds the
    universality population's flip-flop and integration tanh RNNs, GRUs and LSTMs (same tasks, seeds, size
    and settings, so the same models; train_population(resume=True) reuses a member only where its id and
    training settings match)."""
    out = tmp_path_factory.mktemp("pulse") / "pulse"
    assert main(["demo", "--population", "pulse", "--quick", "--out", str(out), "--no-progress"]) == 0
    return out


def test_default_gru_reaches_published_mnist1d_accuracy():
    task = load_task("mnist1d")
    model = train_base_model("gru", 32, task, seed=0, config=TrainConfig())  # smallest default size
    assert evaluate(model, task) >= PUBLISHED_MNIST1D_GRU - 0.02


def test_quick_demo_meets_its_criteria(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    for name in ("metrics.json", "report.md", "embedding.png", "loss.png"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    assert {"population", "emulation", "averaging", "clustering", "timing_s"} <= set(m)
    acc = {p["id"]: p["test_accuracy"] for p in m["population"]}
    arch = {p["id"]: p["arch"] for p in m["population"]}
    strong = [e for e in m["emulation"] if arch[e["id"]] in ("gru", "lstm") and acc[e["id"]] >= 0.85]
    assert strong, "no GRU or LSTM reached 0.85"
    for e in strong:
        assert e["output_agreement"] >= 0.90, e
    gru = next(a for a in m["averaging"] if a["label"] == "gru")
    assert gru["averaged_accuracy"] >= gru["member_mean_accuracy"] - 0.03


def test_quick_pulse_demo_compares_dynamo_with_the_baselines(pulse_demo):
    out = pulse_demo
    for name in ("metrics.json", "report.md", "report.html", "embedding.png", "distances.png", "few_labels.png"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    assert {p["task"] for p in m["population"]} == {"flipflop", "integrate", "first"}
    b = m["baselines"]
    ari = {(r["measure"], r["labels_by"], r["method"]): r["ari"] for r in b["clustering"]}
    assert len(ari) == 7 * 2 * 2
    # the embedding groups models by computation, not by architecture (the full pulse demo reaches
    # ARI 1.0 by task; with 2 seeds the latch task's tanh RNNs sit apart; 0.83 measured)
    assert ari[("dynamo", "task", "kmeans")] >= 0.6
    assert ari[("dynamo", "task", "kmeans")] > ari[("dynamo", "arch", "kmeans")] + 0.5
    # comparing networks: DYNAMO's functional reading clusters by computation at 0.9 or above
    # with both methods, and at or above every other measure (this population, one run: 1.000 and 1.000)
    for method in ("kmeans", "agglomerative"):
        ours = ari[("dynamo_functional", "task", method)]
        assert ours >= 0.9, (method, ours)
        for other in ("cka", "svcca", "procrustes", "outputs", "weights"):
            assert ours >= ari[(other, "task", method)] - 1e-9, (method, other, ari[(other, "task", method)])
    # weight space cannot compare architectures: it clusters by architecture, not by task
    assert ari[("weights", "arch", "kmeans")] == 1.0
    rep = {r["measure"]: r["nearest_is_original"] for r in b["reparameterization"]["rows"]}
    assert rep["cka"] == 1.0 and rep["procrustes"] == 1.0  # invariant to orthogonal changes by construction
    assert rep["dynamo"] >= 0.8 and rep["dynamo"] > rep["weights"]
    page = (out / "report.html").read_text()
    assert "Reparameterization check" in page and "first-lstm-h32-s1" in page
    # dynamical fidelity: every model side by side with the meta-model at
    # theta_n; the flip-flop models' memories held through 10 probe lengths of silence, and the attractors
    # of those with 8 matched one to one (this quick population, one run: meta-model at or above every
    # flip-flop base after silence; matched within 0.041-0.106 of the median attractor distance; asserted with
    # the margin of test_fidelity.MATCHED_DISTANCE_BOUND, the spread across seeds and machines reaching 0.147)
    fid = {r["id"]: r for r in m["fidelity"]}
    assert set(fid) == {p["id"] for p in m["population"]}
    for mid, r in fid.items():
        mem = r["memory"]["silence"]
        if mid.startswith("flipflop") and mem["base_accuracy"] >= 0.98:
            assert mem["meta_accuracy"] >= mem["base_accuracy"] - 0.01, (mid, mem)
        if mid.startswith("flipflop") and r["base"]["n_stable"] == 8:
            assert r["n_matched"] == 8 and r["max_matched_distance_rel"] <= MATCHED_DISTANCE_BOUND, (mid, r)
    md = (out / "report.md").read_text()
    for arch in ("rnn", "gru", "lstm"):
        assert (out / f"attractors_{arch}.png").is_file() and f"attractors_{arch}.png" in md
    assert len(m["scan"]["rows"]) == 11 and (out / "scan.png").is_file()
    assert "## Dynamical fidelity" in md and "## Embedding scan from flipflop-gru-h32-s0" in md
    for row in b["few_labels"]:
        if row["labels_per_class"] == 1:
            assert row["adapt_accuracy"] > row["scratch_accuracy"] + 0.1, row


def test_quick_cnn_demo_meets_the_cnn_targets(tmp_path):
    """MNIST-1D CNNs: the meta-CNN agrees with every base CNN of accuracy >= 0.85
    on >= 0.90 of the test inputs; each activation/width group's embedding average is no more than 0.02
    below its members' mean accuracy. The quick population trains 30 epochs, so only its ReLU and GELU
    CNNs are held to 0.92 here; tests/test_cnn.py checks every activation at the default 40 epochs."""
    out = tmp_path / "cnn"
    assert main(["demo", "--population", "cnn1d", "--quick", "--out", str(out), "--no-progress"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["family"] == "cnn1d" and "fixed_points" not in m
    acc = {p["id"]: p["test_accuracy"] for p in m["population"]}
    assert all(a >= 0.92 for i, a in acc.items() if "-tanh-" not in i), acc
    strong = [e for e in m["emulation"] if acc[e["id"]] >= 0.85]
    assert len(strong) == len(acc), acc
    assert all(e["output_agreement"] >= 0.90 for e in strong), m["emulation"]
    for row in m["averaging"]:
        assert row["averaged_accuracy"] >= row["member_mean_accuracy"] - 0.02, row
        if row["label"] != "all":
            assert row["naive_weight_average_accuracy"] is not None
    assert "pooled layer activations" in (out / "report.md").read_text()


def test_universality_population_clusters_by_computation_not_architecture(tmp_path, pulse_demo):
    """Comparing networks: the universality case (Maheswaranathan et al. 2019): flip-flop and pulse
    integration, each learnt by tanh and ReLU RNNs, GRUs and LSTMs. DYNAMO's best reading clusters by
    computation at 0.9 or above and at least as well as every other measure, with both methods (the demo's
    settings, 2000 fitting steps, one run: DYNAMO 1.000 with both readings and methods, CKA, Procrustes and
    outputs 1.000, SVCCA 0.211; this test fits 1000 steps, 124 s in all)."""
    from dynamo_ext.report.analysis import baseline_section
    from dynamo_ext.demo import UNIVERSALITY_QUICK as S

    folder = tmp_path / "population"
    shutil.copytree(pulse_demo / "population", folder)  # its 12 shared members, trained once
    pop = de.train_population(list(S["tasks"]), archs=S["archs"], hidden_sizes=S["hidden_sizes"],
                              n_seeds=S["n_seeds"], config=TrainConfig(epochs=UNIVERSALITY_TEST_EPOCHS),
                              progress=False, out=folder, resume=True)
    assert sorted(set(pop.labels("arch"))) == ["gru", "lstm", "relu_rnn", "rnn"]
    meta = de.fit(pop, steps=UNIVERSALITY_TEST_FIT_STEPS, seed=0, progress=False).meta
    rows = baseline_section(meta, pop, labels_per_class=None)["clustering"]
    ari = {(r["measure"], r["method"]): r["ari"] for r in rows if r["labels_by"] == "task"}
    for method in ("kmeans", "agglomerative"):
        ours = max(ari[("dynamo", method)], ari[("dynamo_functional", method)])
        assert ours >= 0.9, (method, ours)
        for other in ("cka", "svcca", "procrustes", "outputs"):
            assert ours >= ari[(other, method)] - 1e-9, (method, other, ari)


def test_attractor_demo_dynamo_sees_the_dynamics_where_geometry_sees_the_input_copy(tmp_path):
    """Comparing networks: the case after DSA's Fig. 3: point, line and bistable networks of matched
    mean response, each with an input copy of 4 sizes (dynamo_ext.population.attractors; built, not
    trained). By kind, DYNAMO's best reading is at 0.9 or above and at least every other measure's with both
    clustering methods; CKA and Procrustes, which see the input copy first, stay below 0.5 (the population
    does mislead geometry). One run, seed 0: DYNAMO 1.000 (both readings and methods), SVCCA and outputs
    1.000, CKA and Procrustes -0.198."""
    out = tmp_path / "attractors"
    assert main(["demo", "--population", "attractors", "--out", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    ari = {(r["measure"], r["method"]): r["ari"] for r in metrics["baselines"]["clustering"]
           if r["labels_by"] == "arch"}
    for method in ("kmeans", "agglomerative"):
        ours = max(ari[("dynamo", method)], ari[("dynamo_functional", method)])
        assert ours >= 0.9, (method, ari)
        for other in ("cka", "svcca", "procrustes", "outputs"):
            assert ours >= ari[(other, method)] - 1e-9, (method, other, ari)
        assert ari[("cka", method)] < 0.5 and ari[("procrustes", method)] < 0.5, (method, ari)
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
