"""The report: the analysis of a fitted meta-model (metrics.json), its figures, report.md and report.html.

Modules: ``analysis`` (the numbers), ``schema`` (metrics.json's typed schema and version), ``tables`` (tables and verdicts shared
by both pages: who wins per label set and clustering method), ``figures``
(matplotlib PNGs), ``markdown`` (report.md), ``html`` (report.html, plotly,
offline). Imports run one way: analysis, tables <- figures <- markdown -> html.
"""
from .analysis import analyze, averaging_table, baseline_section, fixed_point_summary
from .tables import (DYNAMO_READINGS, FIDELITY_NOTE, REGRESSION_COLUMNS, REPARAM_COLUMNS, ari_table,
                     baseline_verdicts, few_label_columns)
from .figures import (ARCH_COLORS, MARKERS, TASK_COLORS, plot_attractors, plot_bifurcation, plot_distance_matrices, plot_embedding,
                      plot_few_labels, plot_fixed_points, plot_loss)
from .schema import SCHEMA_VERSION, Metrics, check_metrics, load_metrics
from .markdown import write_report
from .html import write_html

__all__ = [
    "ARCH_COLORS", "DYNAMO_READINGS", "FIDELITY_NOTE", "MARKERS", "TASK_COLORS", "REGRESSION_COLUMNS", "REPARAM_COLUMNS", "analyze",
    "ari_table", "averaging_table", "baseline_section", "baseline_verdicts", "few_label_columns",
    "fixed_point_summary", "Metrics", "SCHEMA_VERSION", "check_metrics", "load_metrics", "plot_attractors", "plot_bifurcation", "plot_distance_matrices", "plot_embedding",
    "plot_few_labels", "plot_fixed_points", "plot_loss", "write_html", "write_report",
]
