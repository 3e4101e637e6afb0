"""The schema of metrics.json: one typed description that ``analyze`` writes and the renderers read.

``Metrics`` (a TypedDict) names every section and its rows; ``SCHEMA_VERSION`` is written into the
file (``schema_version``) and checked when it is read back (``load_metrics``, ``check_metrics``), so
that report.md, report.html and the CLI refuse a file of another version or one missing a section
they need, naming it, instead of failing on a missing key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, TypedDict, Union

SCHEMA_VERSION = 1


class PopulationRow(TypedDict, total=False):
    """One base model (``Member.info``): id, arch, hidden_size, seed, test_accuracy; task (pulse tasks)."""

    id: str
    arch: str
    hidden_size: int
    seed: Optional[int]
    test_accuracy: float
    task: str


class EmulationRow(TypedDict, total=False):
    """How well the meta-model at theta_n emulates model n on held-out inputs (``meta.evaluate.emulation``);
    real outputs add output_r2, output_mse and the base's and meta-model's fit to the targets."""

    id: str
    output_agreement: float
    hidden_r2: float
    meta_test_accuracy: float
    output_r2: float
    output_mse: float


class AveragingRow(TypedDict):
    """A group's members against the meta-model at their mean embedding (``analysis.averaging_table``)."""

    label: str
    task: str
    members: List[str]
    member_mean_accuracy: float
    averaged_accuracy: float
    naive_weight_average_accuracy: Optional[float]
    ensemble_accuracy: float
    theta_bar: List[float]


class Clustering(TypedDict):
    """k-means of the embeddings scored against the labels ``labels_by`` ("arch" or "task")."""

    k: int
    labels_by: str
    ari: Optional[float]
    nmi: Optional[float]
    silhouette: Optional[float]
    assignments: List[int]


class Baselines(TypedDict, total=False):
    """DYNAMO beside the baselines (``analysis.baseline_section``): clustering rows per measure, the
    distance matrices (N by N), the ids, the measures skipped by the time budget, DSA's settings, the
    few-label rows, (demo) the reparameterization check, and the group tests (``analysis.group_tests``:
    per label set and measure, PERMANOVA's p-value and R^2 and PERMDISP's p-value)."""

    clustering: List[Dict]
    tests: List[Dict]
    distances: Dict[str, List[List[float]]]
    ids: List[str]
    skipped: List[Dict]
    dsa_settings: Dict
    few_labels: List[Dict]
    reparameterization: Dict


class FixedPointRow(TypedDict):
    """The meta-model's fixed points at theta_n (zero input), by type."""

    id: str
    n_fixed_points: int
    n_stable: int
    n_unstable: int
    n_slow_points: int


class Metrics(TypedDict, total=False):
    """metrics.json. Always: schema_version, task, output_kind, family, population, emulation,
    averaging, clustering, embedding (id -> theta), timing_s (seconds per stage). With the
    baselines: baselines. RNNs: fidelity (``dynamics.attractor_fidelity.fidelity`` rows), fixed_points,
    fixed_point_input (when not zero). marks: id -> the marks of the models whose readings cannot be
    trusted as they stand (``dynamics.marks``), with the quality_threshold they were judged by. The demo
    adds settings, attractor_figures and scan."""

    schema_version: int
    task: str
    output_kind: str
    family: str
    population: List[PopulationRow]
    emulation: List[EmulationRow]
    averaging: List[AveragingRow]
    clustering: Clustering
    baselines: Baselines
    embedding: Dict[str, List[float]]
    fidelity: List[Dict]
    fidelity_sample: Dict
    fixed_points: List[FixedPointRow]
    fixed_point_input: List[float]
    timing_s: Dict[str, float]
    marks: Dict[str, List[str]]
    quality_threshold: Optional[float]
    settings: Dict
    attractor_figures: List[Dict]
    scan: Dict


REQUIRED = ("schema_version", "task", "output_kind", "family", "population", "emulation", "averaging",
            "clustering", "embedding")


def check_metrics(metrics: Dict, what: str = "metrics") -> Metrics:
    """``metrics`` as Metrics, after checking its version and required sections.

    Raises:
        ValueError: not a dict, another schema version, or a required section missing (named).
    """
    if not isinstance(metrics, dict):
        raise ValueError(f"{what} must be a dict (metrics.json), got {type(metrics).__name__}")
    version = metrics.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{what} has schema_version {version!r}; this version of dynamo_ext reads "
                         f"{SCHEMA_VERSION} (run `dynamo-ext analyze` again to write it)")
    missing = [k for k in REQUIRED if k not in metrics]
    if missing:
        raise ValueError(f"{what} lacks the sections {missing} (dynamo_ext.report.schema.Metrics)")
    return metrics  # type: ignore[return-value]


def load_metrics(path: Union[str, Path]) -> Metrics:
    """Read and check a metrics.json written by ``analyze`` / ``write_report``.

    Raises:
        ValueError: a missing or unparsable file, or one ``check_metrics`` refuses.
    """
    from .. import _io

    return check_metrics(_io.read_json(path, "metrics file"), f"metrics file {str(path)!r}")
