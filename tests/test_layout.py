"""The package's layout: folders by the method's parts, small modules with no import circle, and the
flat layout's module paths (dynamo_ext.zoo, dynamo_ext.fit, ...) still importable with their names."""
import ast
import importlib
from pathlib import Path

import pytest

import dynamo_ext as de

PACKAGE = Path(de.__file__).parent
MAX_LINES = 300

# The public names of the modules that were split, as they stood in the flat layout.
OLD_NAMES = {
    "zoo": ("ARCHS", "RNN_ARCHS", "MANIFEST", "DEFAULT_LR", "FAMILY_ARCHS", "DEFAULT_ARCHS", "DEFAULT_WEIGHT_DECAY",
            "family_of", "layer_channels_of", "build_base_model", "BaseRNN", "TrainConfig", "task_loss", "evaluate",
            "train_base_model", "Member", "Recording", "Population", "param_dtype", "check_shared_inputs",
            "train_population"),
    "fit": ("META_WEIGHTS", "META_CONFIG", "FitConfig", "FitResult", "Targets", "ModelRows", "dynamo_loss",
            "relax_steps", "relaxing_probes", "make_optimizer", "train_loop", "refine_embeddings", "save_meta",
            "load_meta", "load_history"),
    "fixed_points": ("SUPPORTED", "FUSED", "NoFusedCell", "CellWeights", "cell_weights", "FixedPoints",
                     "find_fixed_points", "ScanResult", "embedding_path", "scan"),
    "baselines": ("MEASURES", "PEER_MEASURES", "ALL_MEASURES", "Representation", "linear_cka", "svcca",
                  "procrustes_distance", "weight_distance", "output_disagreement", "distance_matrices",
                  "naive_weight_average", "OutputEnsemble", "train_scratch"),
    "report": ("ARCH_COLOURS", "MARKERS", "TASK_COLOURS", "plot_embedding", "plot_distance_matrices",
               "few_label_columns", "plot_few_labels", "plot_loss", "REGRESSION_COLUMNS", "REPARAM_COLUMNS",
               "DYNAMO_READINGS", "baseline_verdicts", "ari_table", "FIDELITY_NOTE", "write_report",
               "plot_fixed_points", "plot_bifurcation", "plot_attractors"),
    "meta": ("CELLS", "BACKENDS", "HiddenMap", "MetaModel", "MetaRNN", "EmbeddedModel"),
    "tasks": ("TASKS", "TaskData", "load_task", "accuracy"), "cnn": ("BaseCNN", "RecordedCNN", "FAMILIES"),
    "step": ("layer_step", "step_function", "run_steps", "autograd_jacobian"), "ctrnn": ("CTRNN",),
    "streaming": ("StreamedRecording", "record_to_disk"), "meta_cnn": ("MetaCNN",),
    "checkpoint": ("CHECKPOINT", "save_training_state", "load_training_state"), "distributed": ("wrap", "Shard"),
    "evaluate": ("emulation", "r2"), "embed": ("embed",), "average": ("average", "resolve_ids"),
    "cluster": ("cluster", "functional_distances", "compare_measures"), "adapt": ("adapt", "compare_few_labels"),
    "reparameterize": ("reparameterize", "reparameterization_check", "ALL_KINDS"),
    "fidelity": ("fidelity", "fidelity_table"), "peers": ("dsa_distances", "dsa_settings"),
    "analysis": ("analyze",), "report_html": ("write_html",), "hidden_loss": ("grouped_hidden_loss",),
    "neurogym_tasks": ("neurogym_task",),
}


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _dotted(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("old", sorted(OLD_NAMES))
def test_the_flat_layouts_module_paths_still_import_with_their_names(old):
    module = importlib.import_module(f"dynamo_ext.{old}")
    missing = [n for n in OLD_NAMES[old] if not hasattr(module, n)]
    assert not missing, f"dynamo_ext.{old} (now {module.__name__}) lacks {missing}"
    exec(f"from dynamo_ext.{old} import {OLD_NAMES[old][0]}", {})  # the from-import form too


def test_every_name_of_the_top_level_all_resolves():
    missing = [n for n in de.__all__ if not hasattr(de, n)]
    assert not missing
    assert de.fixed_points.find_fixed_points is de.find_fixed_points and de.baselines is de.compare


def test_folders_follow_the_methods_parts_and_every_module_says_what_it_holds():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert {"population", "meta", "uses", "dynamics", "compare", "report"} <= folders
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top <= {"__init__", "_checks", "_extension", "_io", "_legacy", "ops", "reference", "cli", "demo"}, top
    for path in _modules():
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc) > 40, f"{path.relative_to(PACKAGE)} has no opening docstring worth the name"


def test_no_module_is_over_300_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


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
