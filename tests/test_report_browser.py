"""report.html in a real browser: headless Chromium (Debian's chromium and chromium-driver, driven by
selenium) opens a freshly written report and the DOM after load is checked: every plotly figure drew,
no console errors, nothing wider than the page. Skipped, with the reason, where Chromium, its driver
or selenium is missing (``.ci/run`` installs them)."""
import shutil

import pytest

from dynamo_ext.report import analyze, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WIDTH, HEIGHT = 1280, 1000


def _driver(tmp_path):
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the [test] extra)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                f"--window-size={WIDTH},{HEIGHT}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


# Per plotly figure: did it draw (its SVG and at least one trace), and how far right does it reach?
FIGURES_JS = """
return Array.from(document.querySelectorAll('.plotly-graph-div')).map(d => ({
  svg: d.querySelectorAll('svg.main-svg').length,
  traces: d.querySelectorAll('.scatterlayer .trace, .heatmaplayer .hm, .heatmaplayer image').length,
  right: d.getBoundingClientRect().right}));
"""
# Elements reaching past the viewport's right edge (outside the tables' own scroll boxes).
OVERFLOW_JS = """
const w = document.documentElement.clientWidth;
return Array.from(document.body.querySelectorAll('*'))
  .filter(e => !e.closest('.wide') || e.classList.contains('wide'))
  .filter(e => e.getBoundingClientRect().right > w + 1)
  .map(e => e.tagName + '.' + (e.className.baseVal !== undefined ? e.className.baseVal : e.className));
"""


@pytest.mark.slow
def test_report_html_draws_every_figure_without_errors_and_fits_the_page(tiny_population, tiny_fit, tmp_path):
    metrics = analyze(tiny_fit.meta, tiny_population, labels_per_class=(1, 5, 20), fidelity_inits=16)
    write_report(metrics, tmp_path)
    page = tmp_path / "report.html"
    n_figures = 1 + bool(metrics["baselines"]["distances"]) + bool(metrics["baselines"]["few_labels"])
    assert n_figures == 3 and len(metrics["baselines"]["distances"]) > 4  # a distance figure that must wrap

    driver = _driver(tmp_path)
    try:
        driver.get(page.as_uri())
        driver.set_script_timeout(30)
        driver.execute_async_script(
            "const done = arguments[0];"
            "const ready = () => document.readyState === 'complete' && "
            "  document.querySelectorAll('.plotly-graph-div .main-svg').length > 0;"
            "const t = setInterval(() => { if (ready()) { clearInterval(t); setTimeout(done, 500); } }, 50);")
        figures = driver.execute_script(FIGURES_JS)
        overflow = driver.execute_script(OVERFLOW_JS)
        page_width = driver.execute_script("return [document.documentElement.scrollWidth, "
                                           "document.documentElement.clientWidth];")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()

    assert len(figures) == n_figures, figures
    for f in figures:
        assert f["svg"] >= 1 and f["traces"] >= 1, f"a plotly figure did not draw: {figures}"
        assert f["right"] <= page_width[1] + 1, f"a figure is wider than the page: {figures}, page {page_width}"
    assert not errors, f"console errors: {errors}"
    assert page_width[0] <= page_width[1], f"the page scrolls sideways: {page_width}; too wide: {overflow[:10]}"
    assert not overflow, f"elements wider than the page: {overflow[:10]}"
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_few_label_axis_ticks_only_the_measured_label_counts():
    from dynamo_ext.report.html import few_label_figure

    metrics = {"baselines": {"few_labels": [
        {"task": "t", "labels_per_class": k, "adapt_accuracy": 0.5, "scratch_accuracy": 0.2} for k in (1, 5, 20)]}}
    axis = few_label_figure(metrics).layout.xaxis
    assert axis.type == "log" and list(axis.tickvals) == [1, 5, 20] and list(axis.ticktext) == ["1", "5", "20"]
