"""Spread across meta-model fits: fit(..., n_fits=k), uses.across_fits, DYNAMO(n_fits=k)."""
import numpy as np
import pytest
import torch

import dynamo_ext as de
from dynamo_ext.meta.spread import FitSpread
from dynamo_ext.population.two_groups import two_group_population
from dynamo_ext.uses.across_fits import (
    align_embeddings,
    co_assignment,
    consensus_clustering,
    consensus_distances,
    distance_agreement,
    embedding_spread,
    spread,
)

SMALL = dict(steps=60, state_size=16, max_sequences=100, progress=False)


@pytest.fixture(scope="module")
def two_groups():
    return two_group_population(5, "alternative", gap=0.1, seed=0)


@pytest.fixture(scope="module")
def three_fits(two_groups):
    return de.fit(two_groups[0], n_fits=3, seed=4, **SMALL)


def test_n_fits_gives_the_fits_of_consecutive_seeds_on_one_recording(two_groups, three_fits):
    assert isinstance(three_fits, FitSpread) and len(three_fits) == 3 and three_fits.seeds == [4, 5, 6]
    alone = de.fit(two_groups[0], seed=4, **SMALL)
    torch.testing.assert_close(three_fits[0].meta.theta, alone.meta.theta)  # the first is the single fit
    assert not torch.equal(three_fits[0].meta.theta, three_fits[1].meta.theta)
    assert "3 fits of 10 models" in repr(three_fits)
    with pytest.raises(ValueError, match="'n_fits' must be 1 with resume"):
        de.fit(two_groups[0], n_fits=2, resume=True, out="x", **SMALL)
    with pytest.raises(ValueError, match="'n_fits' must be an integer >= 1"):
        de.fit(two_groups[0], n_fits=0, **SMALL)


def test_n_fits_saves_each_fit_in_its_folder(two_groups, tmp_path):
    de.fit(two_groups[0], n_fits=2, out=tmp_path / "fits", **SMALL)
    loaded = [de.load_meta(tmp_path / "fits" / f"fit-{i}") for i in range(2)]
    assert not torch.equal(loaded[0].theta, loaded[1].theta)


def test_spread_reads_every_fit(two_groups, three_fits):
    pop, labels = two_groups
    sp = spread(three_fits, pop.task.x_train[:32], n_clusters=2, fixed_points=True, n_inits=16)
    assert sp.n_fits == 3 and sp.distances["functional"].shape == (3, 10, 10)
    for reading in ("theta", "functional"):
        a = sp.agreement[reading]
        assert a.shape == (3, 3) and np.allclose(np.diag(a), 1.0) and np.allclose(a, a.T)
    assert sp.labelings.shape == (3, 10) and sp.co_assignment.shape == (10, 10)
    assert np.allclose(np.diag(sp.co_assignment), 1.0) and len(sp.consensus_labels) == 10
    assert sp.n_stable.shape == (3, 10) and (sp.n_stable >= 0).all()
    summary = sp.summary()
    import json

    json.dumps(summary)
    assert len(summary["models"]) == 10 and "Spread(3 fits of 10 models" in repr(sp)
    with pytest.raises(ValueError, match="at least 2 fits"):
        spread([three_fits[0]])
    with pytest.raises(ValueError, match="'x' is required with fixed_points"):
        spread(three_fits, fixed_points=True)
    with pytest.raises(ValueError, match="'task' is required with 'averages'"):
        spread(three_fits, averages={"a": [0, 1]})
    with pytest.raises(ValueError, match="'n_clusters'"):
        spread(three_fits, n_clusters=0)


def test_agreement_and_consensus_on_known_matrices():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(12, 2))
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    other = np.sqrt(((rng.normal(size=(12, 2))[:, None] - rng.normal(size=(12, 2))[None]) ** 2).sum(-1))
    other = 0.5 * (other + other.T)
    np.fill_diagonal(other, 0)
    a = distance_agreement([d, 3.0 * d, other])
    assert a[0, 1] == pytest.approx(1.0) and abs(a[0, 2]) < 0.5
    np.testing.assert_allclose(consensus_distances([d, 3.0 * d]), d / d[np.triu_indices(12, 1)].mean())
    co = co_assignment([[0, 0, 1, 1], [1, 1, 0, 0], [0, 1, 1, 1]])
    assert co[0, 1] == pytest.approx(2 / 3) and co[2, 3] == 1.0
    assert list(consensus_clustering(co, 2)) in ([0, 0, 1, 1], [1, 1, 0, 0])


def test_affine_alignment_undoes_an_affine_change_of_coordinates():
    """theta is identified up to an affine map: fits that differ only by one align exactly (spread 0);
    noise added to one model's theta shows as that model's spread."""
    rng = np.random.default_rng(1)
    theta = rng.normal(size=(15, 2))
    fits = [theta, theta @ np.array([[2.0, 0.5], [-0.3, 0.7]]) + [1.0, -2.0], -theta * 0.1]
    aligned = align_embeddings(fits)
    assert np.abs(aligned - aligned[0]).max() < 1e-8
    assert embedding_spread(aligned).max() < 1e-8
    noisy = [f.copy() for f in fits]
    noisy[1][3] += 5.0 * np.std(noisy[1], 0)
    spread_ = embedding_spread(align_embeddings(noisy))
    assert int(np.argmax(spread_)) == 3


def test_estimator_with_n_fits_gives_consensus_readings_and_their_spread(two_groups):
    pop, labels = two_groups
    est = de.DYNAMO(steps=60, state_size=16, max_sequences=100, random_state=0, n_fits=2).fit(pop)
    assert isinstance(est.fits_, FitSpread) and est.meta_ is est.fits_.meta
    cons = est.pairwise_distances("functional")
    first = est.pairwise_distances("functional", consensus=False)
    assert not np.allclose(cons, first)
    res = est.group_test(labels, n_permutations=49)
    assert len(res.per_fit_p_values) == 2 and "consensus" in res.measure
    assert est.cluster(2, measure="theta").labels_.shape == (10,)
    assert est.spread(n_clusters=2).n_fits == 2
    single = de.DYNAMO(steps=20, state_size=8, max_sequences=50).fit(pop)
    with pytest.raises(ValueError, match="n_fits=1: one fit has no spread"):
        single.spread()


def test_report_of_several_fits_tests_each_fit_and_the_consensus(two_groups, three_fits, tmp_path):
    from dynamo_ext.report.analysis import analyze
    from dynamo_ext.report.markdown import write_report

    pop, labels = two_groups
    m = analyze(three_fits.meta, pop, fits=three_fits, group_labels={"group": labels}, measures=("cka",),
                n_permutations=19, labels_per_class=None, fidelity_inits=8, include_poorly_emulated=True)
    sp = m["spread"]
    assert sp["n_fits"] == 3 and "distances" not in sp and len(sp["consensus"]["functional"]) == 10
    rows = {(r["labels"], r["reading"]): r for r in sp["tests"]}
    assert len(rows[("group", "functional")]["per_fit_p_values"]) == 3
    assert 0 < rows[("group", "theta")]["consensus_p_value"] <= 1
    acc = sp["averaged_accuracy"]["all"]  # the whole population averaged, in each fit
    assert len(acc["per_fit"]) == 3 and acc["min"] <= acc["max"]
    write_report(m, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "DYNAMO's group tests on the consensus and on each fit" in md and (tmp_path / "spread.png").is_file()
