"""Tests on distance matrices (compare.group_test, compare.mantel): the statistics and p-values of
scikit-bio's permanova, permdisp and mantel on the same matrices and permutations, and the behaviour
that a test could get wrong (strata, spread without location, errors)."""
import numpy as np
import pytest
import torch

from dynamo_ext import compare
from dynamo_ext.compare.inference import check_distance_matrix


def _euclidean(points):
    return np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))


def _groups(seed, shift=0.0, spread=1.0, sizes=(7, 9, 6), dim=4):
    rng = np.random.default_rng(seed)
    pts, labels = [], []
    for g, n in enumerate(sizes):
        pts.append(rng.normal(size=(n, dim)) * (spread if g == 1 else 1.0) + (shift * g))
        labels += [f"g{g}"] * n
    return _euclidean(np.concatenate(pts)), labels


@pytest.mark.parametrize("seed,shift", [(0, 0.0), (1, 0.6), (2, 2.0)])
def test_group_test_equals_scikit_bio(seed, shift):
    pytest.importorskip("skbio")
    from skbio.stats.distance import DistanceMatrix, permanova, permdisp

    d, labels = _groups(seed, shift)
    ours = compare.group_test(d, labels, n_permutations=499, seed=seed)
    dm = DistanceMatrix(d)
    ref = permanova(dm, labels, permutations=499, seed=seed)
    np.testing.assert_allclose(ours.pseudo_f, ref["test statistic"], rtol=1e-10)
    assert ours.p_value == ref["p-value"]
    disp = permdisp(dm, labels, test="centroid", permutations=499, seed=seed, dimensions=d.shape[0])
    np.testing.assert_allclose(ours.dispersion_f, disp["test statistic"], rtol=1e-6)
    assert ours.dispersion_p_value == disp["p-value"]
    assert ours.groups == ["g0", "g1", "g2"] and ours.group_sizes == [7, 9, 6]
    assert 0.0 <= ours.r2 <= 1.0


@pytest.mark.parametrize("method", ["pearson", "spearman"])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_mantel_equals_scikit_bio(method, alternative):
    pytest.importorskip("skbio")
    from skbio.stats.distance import mantel as skbio_mantel

    rng = np.random.default_rng(3)
    pts = rng.normal(size=(12, 3))
    d1 = _euclidean(pts)
    d2 = _euclidean(pts + 0.8 * rng.normal(size=pts.shape))
    ours = compare.mantel(d1, d2, method=method, alternative=alternative, n_permutations=299, seed=5)
    r, p, n = skbio_mantel(d1, d2, method=method, permutations=299, alternative=alternative, seed=5)
    np.testing.assert_allclose(ours.statistic, r, rtol=1e-10)
    assert ours.p_value == p and ours.n == n == 12


def test_group_test_rejects_a_real_difference_and_not_a_null():
    d, labels = _groups(4, shift=2.0)
    assert compare.group_test(d, labels, n_permutations=999).p_value <= 0.002
    rejections = sum(compare.group_test(*_groups(100 + s), n_permutations=199, seed=s).p_value <= 0.05
                     for s in range(40))
    assert rejections <= 8  # 5% of 40 is 2 in expectation; 8 or more has probability < 0.001


def test_permdisp_tells_spread_from_location():
    """Groups with one centre and different spreads: PERMDISP finds the difference in spread."""
    d, labels = _groups(5, shift=0.0, spread=4.0, sizes=(15, 15, 15))
    res = compare.group_test(d, labels, n_permutations=999)
    assert res.dispersion_p_value <= 0.01


def test_strata_permute_labels_within_blocks_only():
    """Two tasks (strata) far apart, architecture labels alternating within each: architecture does not
    differ within a task, and with strata the permutations never mix tasks, so the test's answer comes
    from the within-task distances; a grouping that equals the strata is never significant within them."""
    rng = np.random.default_rng(6)
    task = np.repeat([0, 1], 10)
    arch = np.tile(["rnn", "gru"], 10)
    pts = rng.normal(size=(20, 3)) + 10.0 * task[:, None]
    d = _euclidean(pts)
    within = compare.group_test(d, arch, strata=task, n_permutations=999)
    assert within.p_value > 0.05 and within.permuted == "labels within strata"
    confounded = compare.group_test(d, task, strata=task, n_permutations=99)
    assert confounded.p_value == 1.0  # every permutation within strata leaves the labels as they are


def test_inputs_are_checked_with_clear_errors():
    d, labels = _groups(7)
    with pytest.raises(ValueError, match="'labels' must give one label per network"):
        compare.group_test(d, labels[:-1])
    with pytest.raises(ValueError, match="at least 2 groups"):
        compare.group_test(d, ["a"] * len(labels))
    bad = d.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="'distances' must be finite"):
        compare.group_test(bad, labels)
    bad = d.copy()
    bad[0, 1] += 1.0
    with pytest.raises(ValueError, match="symmetric"):
        compare.group_test(bad, labels)
    with pytest.raises(ValueError, match="'n_permutations'"):
        compare.group_test(d, labels, n_permutations=-1)
    with pytest.raises(ValueError, match="same shape"):
        compare.mantel(d, d[:5, :5])
    with pytest.raises(ValueError, match="'method'"):
        compare.mantel(d, d, method="kendall")
    assert check_distance_matrix(torch.tensor(d)).dtype == np.float64


def test_results_are_reproducible_and_serialisable():
    d, labels = _groups(8, shift=0.5)
    a = compare.group_test(d, labels, n_permutations=99, seed=1, measure="cka")
    b = compare.group_test(d, labels, n_permutations=99, seed=1, measure="cka")
    assert a.as_dict() == b.as_dict() and "cka: PERMANOVA" in repr(a)
    import json

    json.dumps(a.as_dict()), json.dumps(compare.mantel(d, d, n_permutations=9).as_dict())
    assert compare.mantel(d, d, n_permutations=99).statistic == pytest.approx(1.0)


def test_estimator_group_test_reads_its_fitted_distances():
    """The estimator's group_test is compare.group_test on the distances of any registered measure."""
    import dynamo_ext as de
    from dynamo_ext.population.two_groups import two_group_population

    pop, labels = two_group_population(4, "alternative", gap=0.1, seed=0)
    est = de.DYNAMO(steps=40, state_size=16, max_sequences=100, random_state=0).fit(pop)
    res = est.group_test(labels, measure="theta", n_permutations=49)
    same = compare.group_test(est.pairwise_distances("theta"), labels, n_permutations=49, seed=0)
    assert res.p_value == same.p_value and res.pseudo_f == pytest.approx(same.pseudo_f)
    assert res.measure == "theta"
    cka = est.group_test(labels, measure="cka", n_permutations=49)  # a baseline, on the population's recording
    rec = pop.record(max_sequences=200)
    assert cka.p_value == compare.group_test(compare.distance_matrices(pop, rec, ["cka"])["cka"], labels,
                                             n_permutations=49, seed=0).p_value
    with pytest.raises(ValueError, match="'labels' must give one label per network"):
        est.group_test(labels[:3])
    with pytest.raises(ValueError, match="argument 'measure' must be one of"):
        est.group_test(labels, measure="no_such_measure")


def test_two_group_populations_hold_their_design():
    from dynamo_ext.population.two_groups import two_group_population

    null, labels = two_group_population(6, "null", seed=1)
    leaks = np.array([m.model.leak for m in null.members])
    sizes = np.array([m.model.state_size for m in null.members])
    assert labels == ["a"] * 6 + ["b"] * 6
    assert sizes[:6].max() <= 16 < 32 <= sizes[6:].min()  # the nuisance differs between the groups
    assert ((0.80 <= leaks) & (leaks <= 0.98)).all()
    alt, _ = two_group_population(6, "alternative", gap=0.06, seed=1)
    leaks = np.array([m.model.leak for m in alt.members])
    assert leaks[:6].max() <= 0.86 and leaks[6:].min() >= 0.92
    with pytest.raises(ValueError, match="'design'"):
        two_group_population(4, "other")
    with pytest.raises(ValueError, match="'gap'"):
        two_group_population(4, "alternative", gap=0.5)


def test_report_has_a_tests_table_for_every_label_set_and_measure(tmp_path):
    import dynamo_ext as de
    from dynamo_ext.population.two_groups import two_group_population
    from dynamo_ext.report.analysis import analyze
    from dynamo_ext.report.markdown import write_report

    pop, labels = two_group_population(4, "alternative", gap=0.1, seed=0)
    meta = de.fit(pop, steps=40, state_size=16, max_sequences=100, progress=False).meta
    m = analyze(meta, pop, labels_per_class=None, fidelity_inits=8, group_labels={"group": labels},
                n_permutations=99, measures=("cka", "procrustes", "weights"), include_poorly_emulated=True)
    rows = {(r["labels"], r["measure"]): r for r in m["baselines"]["tests"]}
    assert {mm for (lab, mm) in rows if lab == "group"} == {"dynamo", "dynamo_functional", "cka", "procrustes",
                                                          "weights"}
    assert not any(lab == "arch" for lab, _ in rows)  # one architecture: nothing to test
    assert "why" in rows[("group", "weights")]  # undefined across hidden sizes: said, not tested
    cka = rows[("group", "cka")]
    assert 0.01 <= cka["p_value"] <= 1.0 and cka["n_permutations"] == 99 and 0 <= cka["r2"] <= 1
    write_report(m, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "## Tests: do the groups differ on each measure?" in md and "group disp p" in md
    assert "Tests: do the groups differ" in (tmp_path / "report.html").read_text()
    with pytest.raises(ValueError, match="'group_labels' entry 'bad'"):
        analyze(meta, pop, labels_per_class=None, fidelity_inits=8, group_labels={"bad": labels[:3]},
                measures=("cka",))


@pytest.mark.slow
def test_dynamo_tests_hold_their_level_on_built_nulls_and_find_built_alternatives():
    """The ground truth of bench/group_tests.py at reduced size (8 networks per group, 300 fitting steps,
    8 null and 4 alternative draws): DYNAMO's functional reading rejects few nulls, whose groups differ
    in nuisances only (hidden size, input copy, embedding), and every alternative, whose groups differ
    in leak; CKA, which sees the nuisances, rejects most nulls."""
    import dynamo_ext as de
    from dynamo_ext.population.two_groups import two_group_population
    from dynamo_ext.uses.clustering import functional_distances

    rejected = {("null", "dynamo"): 0, ("null", "cka"): 0, ("alternative", "dynamo"): 0}
    for design, draws in (("null", 8), ("alternative", 4)):
        for seed in range(500, 500 + draws):
            pop, labels = two_group_population(8, design, seed=seed)
            meta = de.fit(pop, steps=300, seed=seed, progress=False).meta
            rec = pop.record(max_sequences=200)
            d = {"dynamo": functional_distances(meta, rec.x, len(pop)),
                 "cka": compare.distance_matrices(pop, recording=rec, measures=("cka",))["cka"]}
            for measure in ("dynamo", "cka"):
                if (design, measure) in rejected:
                    p = compare.group_test(d[measure], labels, n_permutations=199, seed=seed).p_value
                    rejected[(design, measure)] += p <= 0.05
    assert rejected[("null", "dynamo")] <= 2, rejected  # 8 draws at a 5% level: 3 or more has p < 0.01
    assert rejected[("alternative", "dynamo")] == 4, rejected
    assert rejected[("null", "cka")] >= 6, rejected
