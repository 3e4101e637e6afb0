"""The package's layout: folders by the method's parts, modules with no import circle, packages that bind
functions rather than modules of the same name, and the one deprecated spelling."""
import ast
from pathlib import Path

import pytest

import dynamo_ext as de

PACKAGE = Path(de.__file__).parent

def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _dotted(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_name_of_the_top_level_all_resolves():
    missing = [n for n in de.__all__ if not hasattr(de, n)]
    assert not missing


def test_the_british_linearisation_answers_with_one_deprecation_warning_and_old_layout_names_are_gone():
    import dynamo_ext.dynamics as dyn

    with pytest.warns(DeprecationWarning, match="dynamics.linearization"):
        assert dyn.linearisation.compare_linearization is dyn.linearization.compare_linearization
    for old in ("baselines", "fixed_points", "zoo", "tasks", "peers", "analysis"):
        with pytest.raises(AttributeError, match=f"no attribute '{old}'"):
            getattr(de, old)


def test_a_function_at_the_top_level_is_not_also_a_module_path():
    import sys

    for name in ("embed", "average", "cluster", "adapt", "reparameterize", "fit", "spread", "fidelity"):
        assert callable(getattr(de, name)) and f"dynamo_ext.{name}" not in sys.modules, name
    for package in (de.uses, de.dynamics, de.compare, de.meta, de.population):
        for name in package.__all__:  # a module it binds holds no function of its own name (``uses.cluster``)
            value = getattr(package, name)
            assert not (isinstance(value, type(sys)) and callable(getattr(value, name, None))), \
                f"{package.__name__}.{name} is a module where users expect the function"


def test_folders_follow_the_methods_parts_and_every_module_says_what_it_holds():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert {"population", "meta", "uses", "dynamics", "compare", "report"} <= folders
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top <= {"__init__", "_checks", "_extension", "_version", "_io", "_figures", "ops", "estimator", "reference", "cli", "demo"}, top
    for path in _modules():
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc) > 40, f"{path.relative_to(PACKAGE)} has no opening docstring worth the name"


def test_no_import_circle_between_modules():
    graph = {}
    for path in _modules():
        name = _dotted(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):  # lazy imports in functions count too
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    deps.add(sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).is_file()
                             or (PACKAGE.parent / sub.replace(".", "/")).is_dir() else target)
        graph[name] = {d for d in deps if d != name}
    # a package's __init__ importing its own submodules is not a circle; drop edges into one's own package
    for name in graph:
        graph[name] = {d for d in graph[name] if not name.startswith(d + ".")}
    state = {}

    def visit(n, stack):
        state[n] = "open"
        for d in graph.get(n, ()):
            if state.get(d) == "open":
                raise AssertionError(" -> ".join(stack + [n, d]))
            if d not in state:
                visit(d, stack + [n])
        state[n] = "done"

    for n in graph:
        if n not in state:
            visit(n, [])


def test_metrics_json_has_one_typed_schema_with_a_version(tmp_path):
    import json

    from dynamo_ext.report import schema

    assert set(schema.REQUIRED) <= set(schema.Metrics.__annotations__)
    good = {k: [] for k in schema.REQUIRED} | {"schema_version": schema.SCHEMA_VERSION}
    assert schema.check_metrics(good) is good
    (tmp_path / "metrics.json").write_text(json.dumps({**good, "schema_version": 0}))
    with pytest.raises(ValueError, match="metrics.json' has schema_version 0; this version of dynamo_ext reads 1"):
        schema.load_metrics(tmp_path / "metrics.json")
    del good["clustering"]
    with pytest.raises(ValueError, match=r"lacks the sections \['clustering'\]"):
        schema.check_metrics(good)


def test_every_subpackage_is_listed_for_the_wheel():
    import re

    # read without tomllib (Python 3.11+), since the package supports 3.10
    line = re.search(r"^packages = \[(.*)\]$", (PACKAGE.parent / "pyproject.toml").read_text(), re.M)
    listed = set(re.findall(r'"([\w.]+)"', line.group(1)))
    found = {_dotted(p) for p in PACKAGE.rglob("__init__.py")}
    assert found <= listed, f"pyproject.toml [tool.setuptools] packages lacks {sorted(found - listed)}"
