"""The report: the analysis of a fitted meta-model (metrics.json), its figures, report.md and report.html.

Modules: ``analysis`` (the numbers), ``schema`` (metrics.json's typed schema and version), ``tables`` (tables and verdicts shared
by both pages: who wins per label set and clustering method), ``figures``
(matplotlib PNGs), ``markdown`` (report.md), ``html`` (report.html, plotly,
offline). Imports run one way: analysis, tables <- figures <- markdown -> html; ``analysis``
and ``schema`` load with the package, the rendering modules when first used.
"""
from .analysis import analyze, baseline_section
from .schema import SCHEMA_VERSION, Metrics, check_metrics, load_metrics

# The rendering modules load when first used (PEP 562): ``analyze`` is computation, and importing it loads
# neither matplotlib nor plotly.
_RENDERING = {"tables": ("FIDELITY_NOTE", "REGRESSION_COLUMNS", "REPARAM_COLUMNS", "ari_table", "baseline_verdicts",
                         "few_label_columns"),
              "figures": ("ARCH_COLORS", "MARKERS", "TASK_COLORS", "plot_attractors", "plot_bifurcation",
                          "plot_distance_matrices", "plot_embedding", "plot_few_labels", "plot_fixed_points",
                          "plot_loss"),
              "markdown": ("write_report",), "html": ("write_html",)}
_RENAMED = {"ARCH_COLOURS": "ARCH_COLORS", "TASK_COLOURS": "TASK_COLORS"}  # British spellings, for one release


def __getattr__(name):
    import importlib

    if name in _RENAMED:
        import warnings

        warnings.warn(f"dynamo_ext.report.{name} is dynamo_ext.report.{_RENAMED[name]}; the British spelling will "
                      f"be removed in the next release", DeprecationWarning, stacklevel=2)
        return __getattr__(_RENAMED[name])
    for module, names in _RENDERING.items():
        if name in names:
            return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ARCH_COLORS", "FIDELITY_NOTE", "MARKERS", "TASK_COLORS", "REGRESSION_COLUMNS", "REPARAM_COLUMNS", "analyze",
    "ari_table", "baseline_section", "baseline_verdicts", "few_label_columns",
    "Metrics", "SCHEMA_VERSION", "check_metrics", "load_metrics", "plot_attractors", "plot_bifurcation", "plot_distance_matrices", "plot_embedding",
    "plot_few_labels", "plot_fixed_points", "plot_loss", "write_html", "write_report",
]
