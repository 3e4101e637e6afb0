"""The house: what the repository holds, the benchmark suite's scripts and where the docs quote them, and
docs that speak to users (no work periods or issue names)."""
import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# bench/ modules that other benchmarks import; every other script is quoted by a docs page
BENCH_HELPERS = {"bench/conftest.py", "bench/problems.py", "bench/stages.py"}
# words about how the work went rather than about the package (a user has neither work periods nor issues)
WORK_WORDS = re.compile(r'(?<!scope=")\bsessions?\b|\b(this|last|previous|earlier|that|next) rounds?\b'
                        r'|\bissues?\s+(#?\d+|"|\(|:)|\bthis (2-core )?machine\b(?! only)', re.I)


def _tracked():
    if not (ROOT / ".git").exists():  # an unpacked sdist holds no repository to check; a checkout always does
        pytest.skip("the source tree is not a git checkout")
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [f for f in out.splitlines() if (ROOT / f).exists()]


def _kind(path: str) -> str:
    """What a tracked file is: source, docs, tests, config or result; '' for anything else."""
    p = Path(path)
    if p.parts[0] in ("dynamo_ext", "csrc", "python") and p.suffix in (".py", ".h", ".cuh", ".cpp", ".cu"):
        return "source"
    if p.parts[0] == "bench" and (p.suffix in (".py", ".sh")):
        return "source"
    if path in ("setup.py", "CMakeLists.txt"):
        return "source"
    if p.parts[0] == "docs" and p.suffix in (".md", ".png") or path in ("README.md", "LICENSE"):
        return "docs"
    if p.parts[0] == "tests" and p.suffix in (".py", ".h", ".cpp"):
        return "tests"
    if path in ("pyproject.toml", "MANIFEST.in", "mkdocs.yml", ".gitignore") or p.parts[0] == ".ci":
        return "config"
    if p.parts[:2] == ("bench", "results") and p.suffix == ".json":
        return "result"
    return ""


def test_the_repository_tracks_only_source_docs_tests_config_and_quoted_results():
    files = _tracked()
    odd = [f for f in files if not _kind(f)]
    assert not odd, f"tracked files that are none of source, docs, tests, config or a result: {odd}"
    texts = "\n".join((ROOT / f).read_text(errors="ignore") for f in files
                      if _kind(f) in ("docs", "source") and not f.endswith(".png"))
    unquoted = [f for f in files if (_kind(f) == "result" or f.endswith(".png")) and Path(f).name not in texts]
    assert not unquoted, f"results or images that no docs page or script names: {unquoted}"


def test_bench_holds_benchmarks_each_saying_which_docs_page_quotes_it_and_one_studies_folder():
    files = [f for f in _tracked() if f.startswith("bench/") and f.endswith((".py", ".sh"))]
    folders = {Path(f).parent.as_posix() for f in files}
    assert folders <= {"bench", "bench/gpu", "bench/studies"}, folders
    for f in files:
        if f in BENCH_HELPERS:
            continue
        text = (ROOT / f).read_text()
        head = ast.get_docstring(ast.parse(text)) if f.endswith(".py") else text[:600].replace("\n# ", " ")
        quoted = re.search(r"Quoted in (docs/[^.]+\.md(?: and docs/[^.]+\.md)*)", head or "")
        assert quoted, f"{f}'s docstring says no 'Quoted in docs/<page>.md'"
        pages = quoted.group(1).split(" and ")
        for page in pages:
            assert Path(f).name in (ROOT / page).read_text(), f"{f} says {page} quotes it; it does not"


def test_docs_docstrings_and_comments_speak_to_users_not_of_work_periods_or_issues():
    hits = []
    for f in _tracked():
        if _kind(f) in ("source", "docs", "tests", "config") and not f.endswith(".png") and f != "tests/test_house.py":
            for i, line in enumerate((ROOT / f).read_text(errors="ignore").splitlines(), 1):
                if WORK_WORDS.search(line):
                    hits.append(f"{f}:{i}: {line.strip()[:100]}")
    assert not hits, "\n".join(hits)


@pytest.mark.parametrize("line, bad", [("measured in this session", True), ("the previous round's run", True),
                                       ('as issue "Comparing networks" asked', True),
                                       ("on this 2-core machine", True), ("127.0.0.1 (this machine only)", False),
                                       ('@pytest.fixture(scope="session")', False), ("round(x, 3)", False)])
def test_the_work_words_pattern_catches_what_it_should(line, bad):
    assert bool(WORK_WORDS.search(line)) is bad
