"""README.md's API example runs as printed, with its sizes shrunk (epochs, steps, seeds, widths) so
that it takes seconds: a renamed function or a changed signature fails here first."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SHRINK = [("epochs=20", "epochs=1"), ("steps=2000", "steps=20"), ("n_seeds=2", "n_seeds=1"),
          ("hidden_sizes=(48, 64)", "hidden_sizes=(8,)"), ("state_size=64", "state_size=8"),
          ('"gru", 40, task', '"gru", 8, task')]


def _api_block() -> str:
    text = README.read_text()
    section = text[text.index("## The API in 20 lines"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_api_example_is_about_20_lines_and_names_the_main_calls():
    code = _api_block()
    assert len(code.splitlines()) <= 25
    for call in ("de.train_population", "de.fit", "de.average", "de.cluster", "de.embed", "de.adapt",
                 "de.find_fixed_points", "de.report.analyze"):
        assert call in code, call


@pytest.mark.slow
def test_the_readme_api_example_runs(tmp_path, monkeypatch):
    code = _api_block()
    for old, new in SHRINK:
        assert old in code, f"README's example no longer says {old!r}: update SHRINK"
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    code = code.replace("de.report.analyze(meta, pop)", "de.report.analyze(meta, pop, fidelity_inits=16)")
    scope = {}
    exec(compile(code, str(README), "exec"), scope)
    assert (tmp_path / "population" / "manifest.json").is_file() and (tmp_path / "meta" / "meta.json").is_file()
    assert (tmp_path / "report" / "report.md").is_file() and (tmp_path / "report" / "report.html").is_file()
    assert scope["theta"].shape == (3, 2) and len(scope["fps"]) >= 1
