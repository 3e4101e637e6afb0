"""The explorer: every number it shows for a theta is the API's for the same theta, bad input is refused
before a server starts, the server reads no file; and, in headless Chromium, real clicks on a model and on an
empty place, a drawn path and a shared URL update the page with those numbers."""
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import dynamo_ext as de

pytest.importorskip("dash", reason="Dash is not installed (the [explore] extra)")
from dynamo_ext.explorer import Explorer, check_port  # noqa: E402
from dynamo_ext.explorer.app import make_app  # noqa: E402


@pytest.fixture(scope="module")
def explorer(tiny_population, tiny_fit):
    return Explorer(tiny_fit.meta, tiny_population)


def _api_at_theta(meta, task, probes, theta):
    theta = torch.as_tensor(theta, dtype=torch.float64).to(meta.theta.dtype)
    with torch.no_grad():
        z = meta(probes, theta=theta)[0]
    fps = de.find_fixed_points(meta, theta=theta, trajectories=z, n_inits=256, seed=0)
    return {"n_fixed_points": len(fps), "n_stable": int(fps.is_stable.sum()),
            "accuracy": de.population.evaluate(meta.at(theta), task)}


def test_every_answer_is_the_apis_for_the_same_theta(explorer, tiny_population, tiny_fit):
    from dynamo_ext.compare import linear_cka
    from dynamo_ext.dynamics.attractor_fidelity import topology
    from dynamo_ext.dynamics.path_scan import scan
    from dynamo_ext.uses.clustering import functional_distances

    meta, pop = tiny_fit.meta, tiny_population
    theta = [0.05, -0.1]
    got = explorer.at_theta(theta)
    want = _api_at_theta(meta, pop.task, explorer.probes, theta)
    assert {k: got[k] for k in want} == want and got["n_fixed_points"] == got["n_stable"] + got["n_unstable"]
    assert explorer.at_theta(theta) is got  # cached per theta
    model = explorer.at_model(pop.ids[1])
    top = topology(meta, pop, 1, n_inits=256, seed=0)
    assert model["fidelity"] == top and model["hidden_r2"] == explorer.emulation[pop.ids[1]]["hidden_r2"]
    cmp = explorer.compare(pop.ids[0], pop.ids[2])
    d = functional_distances(meta, explorer.probes, len(pop))
    assert cmp["functional_distance"] == pytest.approx(d[0, 2], rel=1e-9)
    assert cmp["theta_distance"] == pytest.approx(float((meta.theta.detach()[0] - meta.theta.detach()[2]).norm()), rel=1e-6)
    with torch.no_grad():
        hs = [pop.members[i].model.record(explorer.probes)[0] for i in (0, 2)]
    assert cmp["measures"]["cka"] == pytest.approx(1.0 - linear_cka(*hs))  # every per-pair measure of the registry
    assert set(cmp["measures"]) == {"cka", "svcca", "procrustes"} and explorer.compare(pop.ids[0], theta)["measures"] == {}
    path = explorer.path(pop.ids[0], theta, steps=4)
    w = torch.linspace(0, 1, 4, dtype=torch.float64)[:, None]
    thetas = ((1 - w) * meta.theta.detach()[0].double() + w * torch.tensor(theta, dtype=torch.float64))
    assert path["rows"] == scan(meta, thetas.to(meta.theta.dtype), probe_x=explorer.probes, n_inits=256, noise=0.0,
                                seed=0).table()
    group = explorer.group("arch", "gru")
    assert group["averaged_accuracy"] == de.population.evaluate(de.average(meta, [1]), pop.task)
    xy = explorer.to_plane(meta.theta.detach()[1].double())
    torch.testing.assert_close(explorer.to_theta(xy), meta.theta.detach()[1].double())
    assert np.allclose(explorer.plane("mds")["xy"], explorer.mds())
    from dynamo_ext.uses.clustering import classical_mds  # the map of the distances the API gives

    np.testing.assert_allclose(explorer.mds(), classical_mds(d, 2), atol=1e-6)


def test_answers_carry_their_marks(explorer, tiny_population, tiny_fit):
    """A click at a base model's theta is no extrapolation; far from every base model it is; a model below
    the quality threshold is marked, and its panel shows the mark."""
    from dynamo_ext.explorer.panels import model_panel, theta_panel
    from dynamo_ext.uses.extrapolation import support

    meta = tiny_fit.meta
    at_model = explorer.at_theta(meta.theta.detach()[0].double().tolist())
    assert at_model["nearest_model"] == tiny_population.ids[0] and at_model["relative_distance"] < 1e-6
    assert not at_model["extrapolation"]
    far_theta = (meta.theta.detach().double().abs().max() * 50 + 10) * torch.ones(meta.embedding_dim)
    far = explorer.at_theta(far_theta.tolist())
    assert far["extrapolation"] and far == {**far, **support(meta, far_theta.to(meta.theta.dtype))}
    assert "extrapolation" in str(theta_panel("B", far, {}))
    strict = Explorer(meta, tiny_population, quality_threshold=1.0)
    answer = strict.at_model(tiny_population.ids[0])
    assert "below quality threshold" in answer["marks"] and "A-marks" in str(model_panel("A", answer, {}))
    lenient = Explorer(meta, tiny_population, quality_threshold=None)
    assert "below quality threshold" not in lenient.at_model(tiny_population.ids[0])["marks"]


def test_bad_input_is_refused_before_a_server_starts(explorer, tiny_population, tiny_fit, tmp_path, capsys):
    from dynamo_ext.cli import main

    other = de.Population(tiny_population.task, tiny_population.members[1:])
    with pytest.raises(ValueError, match="argument 'meta' was fitted to the models"):
        Explorer(tiny_fit.meta, other)
    with pytest.raises(ValueError, match="must be a finite theta of 2 numbers"):
        explorer.at_theta([0.1])
    with pytest.raises(ValueError, match="argument 'point' must be one of the model ids"):
        explorer.resolve("nobody")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValueError, match=f"argument 'port': 127.0.0.1:{port} cannot be served"):
            check_port("127.0.0.1", port)
        tiny_population.save(tmp_path / "pop")
        de.save_meta(tiny_fit.meta, tmp_path / "meta")
        assert main(["explore", str(tmp_path / "pop"), str(tmp_path / "meta"), "--port", str(port)]) == 2
        assert "cannot be served" in capsys.readouterr().err
    assert main(["explore", str(tmp_path / "missing"), str(tmp_path / "meta")]) == 2
    err = capsys.readouterr().err
    assert "population folder" in err and "does not exist" in err
    other.save(tmp_path / "other")
    assert main(["explore", str(tmp_path / "other"), str(tmp_path / "meta")]) == 2
    assert "was fitted to the models" in capsys.readouterr().err


def test_the_server_reads_no_file(explorer):
    client = make_app(explorer).server.test_client()
    assert client.get("/").status_code == 200
    for path in ("/assets/../../../etc/passwd", "/assets/app.css", "/assets/%2e%2e/%2e%2e/etc/passwd"):
        response = client.get(path)
        assert response.status_code == 404 and b"root:" not in response.data, path
    page = client.get("/../../etc/passwd")  # any other path is the page itself (its URL holds the view)
    assert b"root:" not in page.data and b"DYNAMO explorer" in page.data


# -- in a real browser ---------------------------------------------------------------------------

PIXEL_JS = """const gd = document.querySelector('#plane .js-plotly-plot');
const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, drag = gd.querySelector('.nsewdrag').getBoundingClientRect();
const box = gd.getBoundingClientRect();
return [xa.l2p(arguments[0]) + xa._offset + box.left - drag.left - drag.width / 2,
        ya.l2p(arguments[1]) + ya._offset + box.top - drag.top - drag.height / 2];"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_clicks_a_drawn_path_and_a_shared_url_show_the_apis_numbers(explorer, tiny_population, tiny_fit, tmp_path):
    from test_report_browser import OVERFLOW_JS, _driver
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from dynamo_ext.dynamics.attractor_fidelity import topology

    driver = _driver(tmp_path)  # skips where Chromium is missing
    port = _free_port()
    app = make_app(explorer)
    threading.Thread(target=lambda: app.run(host="127.0.0.1", port=port, debug=False), daemon=True).start()
    shots = Path(os.environ.get("DYNAMO_EXPLORER_SCREENSHOTS", tmp_path))
    meta, pop = tiny_fit.meta, tiny_population
    text = lambda i: driver.find_element(By.ID, i).text  # noqa: E731
    wait = WebDriverWait(driver, 60)
    try:
        for _ in range(50):
            try:
                driver.get(f"http://127.0.0.1:{port}/")
                break
            except Exception:
                time.sleep(0.2)
        wait.until(lambda d: d.execute_script("return document.querySelectorAll('#plane .scatterlayer .trace')"
                                              ".length") >= 4)
        drag = driver.find_element(By.CSS_SELECTOR, "#plane .nsewdrag")

        def click(xy):
            dx, dy = driver.execute_script(PIXEL_JS, *xy)
            t0 = time.perf_counter()
            ActionChains(driver).move_to_element_with_offset(drag, dx, dy).click().perform()
            return t0

        # a model: the drill-down shows topology()'s counts and the emulation
        t0 = click(explorer.to_plane(meta.theta.detach()[1].double()))
        wait.until(lambda d: d.find_elements(By.ID, "A-base-n_stable"))
        model_seconds = time.perf_counter() - t0
        top = topology(meta, pop, 1, n_inits=256, seed=0)
        assert int(text("A-base-n_stable")) == top["base"]["n_stable"]
        assert int(text("A-meta-n_stable")) == top["meta"]["n_stable"] and int(text("A-n_matched")) == top["n_matched"]
        assert float(text("A-hidden_r2")) == pytest.approx(explorer.emulation[pop.ids[1]]["hidden_r2"], abs=1e-4)
        marks = explorer.at_model(pop.ids[1])["marks"]  # the page shows the API's marks, or none
        shown = driver.find_elements(By.ID, "A-marks")
        assert bool(shown) == bool(marks)
        if marks:
            assert ("below the quality threshold" in shown[0].text) == ("below quality threshold" in marks)
        # an empty place: the what-if panel shows the API's numbers at that theta
        driver.find_element(By.CSS_SELECTOR, "#target input[value='B']").click()
        xs, ys = zip(*explorer.plane()["xy"])
        t0 = click([max(xs) + 0.25 * (max(xs) - min(xs) + 0.3), max(ys) + 0.25 * (max(ys) - min(ys) + 0.3)])
        wait.until(lambda d: d.find_elements(By.ID, "B-n_stable"))
        theta_seconds = time.perf_counter() - t0
        import json

        theta = json.loads(driver.find_element(By.ID, "B-theta").get_attribute("textContent"))
        want = _api_at_theta(meta, pop.task, explorer.probes, theta)
        assert int(text("B-n_fixed_points")) == want["n_fixed_points"] and int(text("B-n_stable")) == want["n_stable"]
        assert float(text("B-accuracy")) == pytest.approx(want["accuracy"], abs=1e-4)
        far = explorer.at_theta(theta)
        assert text("B-nearest_model") == far["nearest_model"]
        assert bool(driver.find_elements(By.ID, "B-marks")) == far["extrapolation"]
        if far["extrapolation"]:
            assert "extrapolation" in text("B-marks")
        cmp = explorer.compare(pop.ids[1], theta)
        wait.until(lambda d: d.find_elements(By.ID, "compare-functional_distance"))
        assert float(text("compare-functional_distance")) == pytest.approx(cmp["functional_distance"], abs=1e-4)
        # a drawn path: the scan's rows are the API's along the drawn line
        driver.find_element(By.ID, "draw").click()
        time.sleep(0.5)
        a, b = driver.execute_script(PIXEL_JS, min(xs), min(ys)), driver.execute_script(PIXEL_JS, max(xs), max(ys))
        ActionChains(driver).move_to_element_with_offset(drag, *a).click_and_hold() \
            .move_by_offset((b[0] - a[0]) / 2, (b[1] - a[1]) / 2).move_by_offset((b[0] - a[0]) / 2, (b[1] - a[1]) / 2) \
            .release().perform()
        wait.until(lambda d: d.find_elements(By.ID, "scan-10-n_stable"))
        ends = json.loads(driver.find_element(By.ID, "scan-ends").get_attribute("textContent"))
        rows = explorer.path(ends[0], ends[1])["rows"]
        assert [int(text(f"scan-{r['index']}-n_stable")) for r in rows] == [r["n_stable"] for r in rows]
        assert [int(text(f"scan-{r['index']}-n_fixed_points")) for r in rows] == [r["n_fixed_points"] for r in rows]
        driver.save_screenshot(str(shots / "explorer-page.png"))
        driver.set_window_size(1280, 3000)  # every panel inside the viewport for its own screenshot
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(1.0)
        for element, name in (("panel-A", "model"), ("panel-B", "what-if"), ("scan", "path")):
            driver.find_element(By.ID, element).screenshot(str(shots / f"explorer-{name}.png"))
        driver.set_window_size(1280, 1000)
        # the view as a URL: a fresh page shows the same selections
        url = driver.current_url
        assert "a=model%3A" in url and "b=theta%3A" in url
        driver.get(url)
        wait.until(lambda d: d.find_elements(By.ID, "B-n_stable") and d.find_elements(By.ID, "A-base-n_stable"))
        assert json.loads(driver.find_element(By.ID, "B-theta").get_attribute("textContent")) == theta
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        assert driver.execute_script(OVERFLOW_JS) == []
        print(f"page updated {model_seconds:.2f} s after a model click, {theta_seconds:.2f} s after a click elsewhere")
        assert model_seconds < 10 and theta_seconds < 10  # generous: the figures are reported, not asserted at 1 s
    finally:
        driver.quit()


def test_other_fits_show_as_each_models_spread(explorer, tiny_population, tiny_fit):
    """With fits, the theta plane carries where every fit puts each model, mapped affinely into this
    meta-model's coordinates (the meta-model itself maps onto its own points), and the figure draws it."""
    from dynamo_ext.explorer.figures import plane_figure

    other = de.fit(tiny_population, steps=60, batch_size=32, state_size=16, max_sequences=200, seed=7,
                   progress=False)
    ex = Explorer(tiny_fit.meta, tiny_population, fits=[tiny_fit, other])
    plane = ex.plane()
    assert len(plane["spread"]["xy"]) == len(tiny_population) and len(plane["spread"]["xy"][0]) == 2
    np.testing.assert_allclose([pts[0] for pts in plane["spread"]["xy"]], plane["xy"], atol=1e-8)
    assert ex.plane("mds")["spread"] is None and explorer.plane()["spread"] is None
    fig = plane_figure(plane, "arch", {"A": None, "B": None})
    assert any(t.name == "spread across fits" for t in fig.data)


def test_a_large_population_is_drawn_with_webgl_and_a_small_one_with_svg():
    from dynamo_ext.explorer.figures import WEBGL_MODELS, plane_figure

    def plane(n):
        return {"kind": "theta", "xy": [[i / n, (i % 7) / 7] for i in range(n)], "ids": [f"m{i}" for i in range(n)],
                "labels": {"arch": ["rnn", "gru"] * (n // 2)}, "hidden_r2": [0.9] * n,
                "output_agreement": [0.9] * n, "axes": ["theta 1", "theta 2"]}

    big = plane_figure(plane(WEBGL_MODELS + 2), "arch", {})
    small = plane_figure(plane(10), "arch", {})
    assert {t.type for t in big.data if t.name.startswith("arch")} == {"scattergl"}
    assert {t.type for t in small.data if t.name.startswith("arch")} == {"scatter"}
    assert sum(len(t.x) for t in big.data if t.name.startswith("arch")) == WEBGL_MODELS + 2
