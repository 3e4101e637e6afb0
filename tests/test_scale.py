"""Populations of any size: the built continuum population, a fit whose recording exceeds its memory
budget (streamed from disk, same losses as in memory), and the per-model emulation check."""
import numpy as np
import pytest
import torch

import dynamo_ext as de
from dynamo_ext.meta.budget import recording_bytes
from dynamo_ext.meta.probes import relaxing_probes
from dynamo_ext.meta.config import FitConfig
from dynamo_ext.population.attractors import LatentAttractorRNN
from dynamo_ext.population.continuum import continuum_population, continuum_slopes


@pytest.fixture(scope="module")
def small_continuum():
    return continuum_population(6, size_range=(3, 12), seed=3)


def test_continuum_population_draws_continuous_parameters_deterministically(small_continuum):
    pop = small_continuum
    again = continuum_population(6, size_range=(3, 12), seed=3)
    assert pop.ids == again.ids == ["point-0", "bistable-1", "point-2", "bistable-3", "point-4", "bistable-5"]
    slopes = continuum_slopes(pop)
    torch.testing.assert_close(slopes, continuum_slopes(again))
    kinds = [m.arch for m in pop.members]
    for s, kind in zip(slopes.tolist(), kinds):
        assert (0.80 <= s <= 0.98) if kind == "point" else (1.02 <= s <= 1.10)
    assert len(set(slopes.tolist())) == 6  # continuous: no two alike
    sizes = [m.state_size for m in pop.members]
    assert all(3 <= d <= 12 for d in sizes) and len(set(sizes)) > 1
    # the slope is the latent's eigenvalue at the origin: one step from a small latent state scales it
    m = pop.members[0].model
    z = 1e-4 * m.embedding[:, 0][None].double()
    step = m.step(torch.zeros(1, 1, dtype=torch.float64), z)
    assert float((step @ m.embedding.double())[0, 0] / 1e-4) == pytest.approx(float(slopes[0]), rel=1e-6)
    assert continuum_population(6, seed=4).ids == pop.ids and not torch.equal(
        continuum_slopes(continuum_population(6, seed=4)), slopes)


def test_continuum_population_refuses_bad_settings():
    with pytest.raises(ValueError, match="'leak_range'"):
        continuum_population(4, leak_range=(0.5, 1.2))
    with pytest.raises(ValueError, match="'kinds'"):
        continuum_population(4, kinds=("line",))
    with pytest.raises(ValueError, match="'n_models'"):
        continuum_population(0)
    with pytest.raises(ValueError, match="not a built LatentAttractorRNN"):
        continuum_slopes(de.Population.from_modules([de.BaseRNN("gru", 1, 4, 1)], continuum_population(1).task))


def test_a_fit_over_its_memory_budget_streams_the_recording_with_the_same_losses(small_continuum, capsys):
    config = FitConfig(steps=12, batch_size=8, state_size=8, seed=1)
    need = recording_bytes(small_continuum, config, torch.float32)
    S, T = relaxing_probes(small_continuum, config).shape[:2]
    units = sum(m.state_size for m in small_continuum.members) + 6
    assert need == S * T * units * 8
    in_memory = de.fit(small_continuum, config, progress=False)
    assert "streamed_recording" not in in_memory.extra
    streamed = de.fit(small_continuum, config, memory_budget_gb=need / 2 ** 30 / 2, progress=True)
    err = capsys.readouterr().err
    assert "over memory_budget_gb" in err and "streaming it batch by batch" in err
    info = streamed.extra["streamed_recording"]
    assert info["bytes_on_disk"] > 0 and info["folder"] is None  # a temporary folder, removed
    torch.testing.assert_close(torch.tensor(streamed.history["loss"]), torch.tensor(in_memory.history["loss"]),
                               rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match="'memory_budget_gb'"):
        de.fit(small_continuum, config, memory_budget_gb=-1.0)


def test_a_streamed_recording_in_a_named_folder_stays_there(small_continuum, tmp_path):
    res = de.fit(small_continuum, steps=3, batch_size=4, state_size=4, memory_budget_gb=1e-9,
                 recording_dir=str(tmp_path / "rec"), progress=False)
    assert res.extra["streamed_recording"]["folder"] == str(tmp_path / "rec")
    rec = de.population.StreamedRecording(tmp_path / "rec")
    assert rec.ids == small_continuum.ids and rec.x.shape[1] == 2 * small_continuum.task.seq_len


def test_a_streamed_recording_over_its_disk_budget_keeps_fewer_sequences_and_says_so(small_continuum, tmp_path,
                                                                                      capsys):
    from dynamo_ext.meta.budget import MIN_STREAMED_SEQUENCES

    config = FitConfig(steps=3, batch_size=4, state_size=4, memory_budget_gb=1e-9)
    x = relaxing_probes(small_continuum, config)
    per_sequence = x.shape[1] * 4 * (sum(m.state_size for m in small_continuum.members) + len(small_continuum))
    assert len(x) > 2 * MIN_STREAMED_SEQUENCES
    kept = MIN_STREAMED_SEQUENCES + 7
    res = de.fit(small_continuum, config, disk_budget_gb=(kept + 0.5) * per_sequence / 2 ** 30,
                 recording_dir=str(tmp_path / "rec"), progress=True)
    assert "over disk_budget_gb" in capsys.readouterr().err
    info = res.extra["streamed_recording"]
    assert info["sequences"] == kept and info["probe_sequences"] == len(x)
    rec = de.population.StreamedRecording(tmp_path / "rec")
    assert len(rec.x) == kept and rec.disk_bytes() <= (kept + 0.5) * per_sequence + 4 * x[:kept].numel() + 65536
    torch.testing.assert_close(rec.x, x[:kept])  # the first probe sequences, as recorded in full
    full = de.fit(small_continuum, config, recording_dir=str(tmp_path / "full"), progress=False)
    assert full.extra["streamed_recording"]["sequences"] == len(x)  # the default budget holds them all
    with pytest.raises(ValueError, match="argument 'disk_budget_gb'.*at least 64"):
        de.fit(small_continuum, config, disk_budget_gb=10 * per_sequence / 2 ** 30,
               recording_dir=str(tmp_path / "refused"), progress=False)
    assert not (tmp_path / "refused").exists()  # refused before anything is written


def test_the_emulation_check_names_the_poorly_emulated_models(small_continuum, capsys):
    res = de.fit(small_continuum, steps=3, batch_size=4, state_size=4, progress=True, quality_threshold=0.99)
    rows = res.extra["emulation"]
    assert [r["id"] for r in rows] == small_continuum.ids
    expect = [r["id"] for r in rows if r["hidden_r2"] < 0.99]
    assert res.poorly_emulated == expect and expect  # 3 steps cannot emulate anything to 0.99
    assert f"{len(expect)} of 6 models below 0.99" in capsys.readouterr().err
    lenient = de.fit(small_continuum, steps=3, batch_size=4, state_size=4, progress=False, quality_threshold=-1e9)
    assert lenient.poorly_emulated == []
    skipped = de.fit(small_continuum, steps=3, batch_size=4, state_size=4, progress=False, quality_threshold=None)
    assert "emulation" not in skipped.extra and skipped.poorly_emulated == []
    with pytest.raises(ValueError, match="'quality_threshold'"):
        de.fit(small_continuum, steps=3, quality_threshold=2.0)


@pytest.mark.slow
def test_the_embedding_orders_a_continuum_population_by_its_slope():
    """48 built networks (hidden 8-64, nuisance input copies of every size): after a default-length fit
    the model embedding's first principal component is rank-correlated with the slope f'(0) (the ground
    truth), and the median held-out hidden R^2 is high. Reduced size of bench/bench_scale.py's quality run."""
    from scipy.stats import spearmanr

    pop = continuum_population(48, size_range=(8, 64), seed=11)
    res = de.fit(pop, steps=800, progress=False)
    theta = res.meta.theta.detach().double()
    pc1 = torch.linalg.svd(theta - theta.mean(0), full_matrices=False)[2][0]
    rho = abs(spearmanr((theta - theta.mean(0)) @ pc1, continuum_slopes(pop)).statistic)
    r2 = np.median([r["hidden_r2"] for r in res.extra["emulation"]])
    assert rho >= 0.85, rho
    assert r2 >= 0.9, r2


def test_a_half_precision_recording_fits_like_the_full_one(small_continuum, tmp_path):
    kw = dict(steps=10, batch_size=8, state_size=8, seed=2, progress=False)
    full = de.fit(small_continuum, **kw)
    half = de.fit(small_continuum, recording_dtype="float16", **kw)
    streamed = de.fit(small_continuum, recording_dtype="float16", memory_budget_gb=1e-9,
                      recording_dir=str(tmp_path / "rec"), **kw)
    a, b, c = (torch.tensor(r.history["loss"]) for r in (full, half, streamed))
    assert not torch.equal(a, b)  # the targets really are rounded
    torch.testing.assert_close(b, a, rtol=2e-3, atol=0)  # float16 keeps ~3 significant digits
    torch.testing.assert_close(c, a, rtol=2e-3, atol=0)  # on disk the raw states are rounded, in memory the standardised
    assert np.load(tmp_path / "rec" / "hidden_0.npy").dtype == np.float16
    cfg = FitConfig(recording_dtype="float16")
    assert recording_bytes(small_continuum, cfg, torch.float32) == recording_bytes(
        small_continuum, FitConfig(), torch.float32) * 6 // 8
    with pytest.raises(ValueError, match="'recording_dtype'"):
        de.fit(small_continuum, recording_dtype="bfloat16")


def test_a_recording_dir_holding_files_is_refused_before_any_work(small_continuum, tmp_path):
    (tmp_path / "mine.txt").write_text("a user's file")
    with pytest.raises(ValueError, match="'recording_dir' must be a new or empty folder"):
        de.fit(small_continuum, steps=2, memory_budget_gb=1e-9, recording_dir=str(tmp_path), progress=False)
    assert (tmp_path / "mine.txt").read_text() == "a user's file" and len(list(tmp_path.iterdir())) == 1
