"""The analysis of a fitted meta-model over its population: the numbers of metrics.json.

- population: each base model's facts (id, arch, hidden_size, seed, test_accuracy);
- emulation: per model, output agreement, hidden R^2 and the meta-model's
  accuracy at theta_n (dynamo_ext.meta.evaluate);
- averaging: per architecture (per task and architecture in a multi-task
  population; and for the whole population of one task), the accuracy of the
  meta-model at the mean embedding against the members' mean accuracy, naive
  weight averaging of the same members (where they share one size) and their
  output ensemble; for CNNs, per activation and width;
- clustering: k-means of the embeddings with k = number of architectures
  (tasks in a multi-task population), scored against those labels (ARI, NMI,
  silhouette);
- baselines: every measure of dynamo_ext.compare and DYNAMO clustered the
  same way and scored against the task and architecture labels, their
  distance matrices, and adapt against training from scratch on 1, 5 and 20
  labels per class (dynamo_ext.adapt);
- fidelity (RNNs only; dynamo_ext.fidelity): per model, the fixed points of base model n
  and of the meta-model at theta_n at zero input side by side (counts by number of
  unstable directions, stable points matched through A_n, leading eigenvalue moduli)
  and, for pulse tasks, memory over long silences and long sequences;
- fixed_points (RNNs only): the meta-model's side of that, per model (counts by type).

CNN populations (dynamo_ext.population.base_cnn) get the same sections: their "hidden
states" are the pooled layer activations and "architecture" is the activation.
"""
from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence

import torch

from .spread_section import spread_section, spread_tests
from .tests_section import group_tests
from ..dynamics.marks import BELOW_THRESHOLD, QUALITY_THRESHOLD, model_marks
from ..compare.distances import check_measures, distance_matrices, plan_measures
from ..compare.registry import measure_names
from ..dynamics.attractor_fidelity import fidelity, fixed_point_summary
from ..meta.config import FitConfig
from ..meta.evaluate import emulation
from ..population.disk_recording import recording_within
from ..meta.rnn import MetaModel, MetaRNN
from ..population.population import Population
from ..uses.adaptation import compare_few_labels
from ..uses.averaging import averaging_table
from .schema import SCHEMA_VERSION, Metrics
from ..uses.clustering import cluster, compare_measures

DEFAULT_MEMORY_BUDGET_GB = FitConfig.memory_budget_gb


def analyze(meta: MetaModel, population: Population, seed: int = 0, baselines: bool = True,
            labels_per_class: Optional[Sequence[int]] = (1, 5, 20), fidelity_inits: int = 256,
            fixed_point_inputs: Optional[torch.Tensor] = None, measures: Optional[Sequence[str]] = None,
            time_budget_s: Optional[float] = 900.0, group_labels: Optional[Dict[str, Sequence]] = None,
            n_permutations: int = 999, quality_threshold: Optional[float] = QUALITY_THRESHOLD,
            include_poorly_emulated: bool = False, fits=None,
            memory_budget_gb: Optional[float] = DEFAULT_MEMORY_BUDGET_GB, distributed: bool = False) -> Metrics:
    """Compute the metrics of ``metrics.json`` (see the module docstring; their schema:
    ``report.schema.Metrics``, version ``SCHEMA_VERSION``).

    Args:
        baselines: compute the "baselines" section (distance matrices of
            every measure, their clustering scores, few-label comparison).
        labels_per_class: the few-label comparison's sizes (None: skip it).
        measures: the baselines' measures, registered names (``compare.measure_names()``; default
            ``compare.MEASURES``; "dsa", the peer, is opt-in: the [peers] extra, minutes per population).
        time_budget_s: the baselines' measures whose estimated all-pairs time does not fit what
            is left of this budget (seconds) are skipped, and named with their estimate and why in
            ``metrics["baselines"]["skipped"]`` (``compare.distances.plan_measures``); the fidelity
            section, given the same budget of its own, runs on an evenly spaced sample of the models
            where all of them would not fit (``metrics["fidelity_sample"]``); None: run all.
        fidelity_inits: fixed-point starts per model, for the base and for
            the meta-model each (the fidelity section).
        group_labels: label sets to test, name -> N labels (e.g. {"lr": [...]}), beside the task and
            architecture labels: the "tests" rows of the baselines section run PERMANOVA and PERMDISP
            (``compare.group_test``) of every label set on every measure's distances.
        n_permutations: the label permutations of those tests.
        quality_threshold: models whose held-out hidden R^2 is below it are marked ("marks": id -> marks,
            ``dynamics.marks``, with the unseen-slow-mode marks of the fidelity section) and left out of
            the group tests unless ``include_poorly_emulated``.
        fits: several fits of this population (a FitSpread of ``fit(..., n_fits=k)``, or their
            FitResults or meta-models; ``meta`` is one of them, usually the first): the "spread"
            section (``spread_section``) gives every reading's agreement across them, per-model spread
            and the consensus readings, and the group tests run on each fit and on the consensus.
        memory_budget_gb: the baselines' recording (hidden states on 200 probe sequences) is held in
            memory where it takes at most a quarter of this budget (GiB), and otherwise written to a
            temporary folder, read from it as the measures need it and removed at the end
            (``population.disk_recording.recording_within``); None: always in memory. The default is
            ``fit``'s (``FitConfig.memory_budget_gb``).
        distributed: under torchrun (an initialised torch.distributed process group), the all-pairs
            baselines' pairs of blocks are split over the ranks (``compare.all_pairs``); every rank
            computes the rest and returns the same metrics.
        fixed_point_inputs: the constant input x* [I] (or [1, I]) of the fidelity section's fixed
            points (default zeros: silence, which is inside the pulse tasks; pass an
            input of the task where zero is not).

    Raises:
        ValueError: if the meta-model was not fitted to this population
            (different model ids), an unknown measure, or one that does not apply to the
            population's family ("dsa" for a CNN population).
    """
    measures = measure_names(default=True, dynamo=False) if measures is None else tuple(measures)
    check_measures(measures, population.family)
    if meta.model_ids[:len(population)] != population.ids:
        raise ValueError(f"argument 'meta' was fitted to models {meta.model_ids}, "
                         f"not to this population {population.ids}")
    _check_group_labels(group_labels, len(population))
    t0 = time.perf_counter()
    metrics: Metrics = {"schema_version": SCHEMA_VERSION, "task": ", ".join(population.tasks),
                        "output_kind": population.task.output_kind,
                     "family": population.family,
                     "population": [m.info() for m in population.members],
                     "emulation": emulation(meta, population)}
    metrics["averaging"] = averaging_table(meta, population)
    by = "task" if population.is_multitask else "arch"
    labels = population.labels(by)
    k = len(set(labels))
    clus = cluster(meta, k, labels_true=labels, seed=seed, n=len(population))  # embedded newcomers follow
    metrics["clustering"] = {"k": k, "labels_by": by, "ari": clus.ari, "nmi": clus.nmi,
                             "silhouette": clus.silhouette, "assignments": clus.assignments}
    marks = {row["id"]: model_marks(row, quality_threshold=quality_threshold) for row in metrics["emulation"]}
    poor = [i for i, m in enumerate(population.ids) if BELOW_THRESHOLD in marks[m]]
    if baselines:
        metrics["baselines"] = baseline_section(meta, population, seed=seed, labels_per_class=labels_per_class,
                                                measures=measures, time_budget_s=time_budget_s,
                                                group_labels=group_labels, n_permutations=n_permutations,
                                                exclude=[] if include_poorly_emulated else poor,
                                                memory_budget_gb=memory_budget_gb, distributed=distributed)
    if fits is not None:
        metrics["spread"] = _spread(metrics, fits, population, meta, k, labels, seed, group_labels, n_permutations,
                                    exclude=[] if include_poorly_emulated else [population.ids[i] for i in poor])
    metrics["embedding"] = {mid: row for mid, row in zip(meta.model_ids, meta.theta.detach().tolist())}
    if isinstance(meta, MetaRNN):  # a CNN's layer-to-layer map has no fixed points to report
        _dynamics(metrics, meta, population, fidelity_inits, fixed_point_inputs, seed, marks, time_budget_s)
    metrics["quality_threshold"] = quality_threshold
    metrics["marks"] = {mid: m for mid, m in marks.items() if m}
    metrics["timing_s"] = {"analyze": round(time.perf_counter() - t0, 2), **metrics.get("timing_s", {})}
    return metrics


def _spread(metrics: Metrics, fits, population: Population, meta: MetaModel, k: int, labels, seed: int,
            group_labels, n_permutations: int, exclude) -> Dict:
    """The "spread" section: every reading across the fits, and the group tests per fit and on the
    consensus for the label sets the baselines section tested."""
    groups = {row["label"]: row["members"] for row in metrics["averaging"]
              if len({population.task_of(population.ids.index(i)).name for i in row["members"]}) == 1}
    spread = spread_section(fits, population, k, labels, seed=seed, fixed_points=isinstance(meta, MetaRNN),
                            averages=groups)
    if metrics.get("baselines"):
        tests = {r["labels"] for r in metrics["baselines"]["tests"]}
        label_sets = {name: lab for name, lab in {**{"task": population.labels("task"),
                                                     "arch": population.labels("arch")},
                                                  **(group_labels or {})}.items() if name in tests}
        spread["tests"] = spread_tests(spread, label_sets, n_permutations, seed, exclude=exclude, ids=population.ids)
    spread.pop("distances")  # k matrices: the tests have read them; the consensus stays
    return spread


def _dynamics(metrics: Metrics, meta: MetaRNN, population: Population, fidelity_inits: int,
              fixed_point_inputs, seed: int, marks: Dict, time_budget_s: Optional[float]) -> None:
    """The fidelity and fixed-point sections, and the unseen-slow-mode marks they give; over
    ``time_budget_s``, on an evenly spaced sample of the models (``fidelity_sample``)."""
    t1 = time.perf_counter()
    metrics["fidelity"] = fidelity_within(meta, population, fidelity_inits, fixed_point_inputs, seed, time_budget_s,
                                          metrics)
    if fixed_point_inputs is not None:
        metrics["fixed_point_input"] = fixed_point_inputs.detach().reshape(-1).tolist()
    metrics["fixed_points"] = fixed_point_summary(metrics["fidelity"])
    for row in metrics["fidelity"]:
        marks[row["id"]] += [m for m in model_marks({}, row) if m not in marks[row["id"]]]
    metrics["timing_s"] = {"fidelity": round(time.perf_counter() - t1, 2)}


# the models timed first to estimate the fidelity section's time
FIDELITY_PROBE_MODELS = 4


def fidelity_within(meta: MetaRNN, population: Population, n_inits: int, inputs, seed: int,
                    time_budget_s: Optional[float], metrics: Metrics) -> List[Dict]:
    """The fidelity rows of every model, or, where their time estimated from the first
    ``FIDELITY_PROBE_MODELS`` (evenly spaced) exceeds ``time_budget_s``, of an evenly spaced sample of
    the models that fits it; ``metrics["fidelity_sample"]`` then names the sample (models, of,
    estimated seconds for all, why), which the report states."""
    n = len(population)
    probe = _evenly_spaced(n, min(FIDELITY_PROBE_MODELS, n))
    t = time.perf_counter()
    rows = dict(zip(probe, fidelity(meta, population, n_inits=n_inits, inputs=inputs, seed=seed, models=probe)))
    per_model = (time.perf_counter() - t) / len(probe)
    estimate = per_model * n
    chosen = list(range(n))
    if time_budget_s is not None and estimate > time_budget_s:
        chosen = sorted(set(_evenly_spaced(n, int(time_budget_s / max(per_model, 1e-9)))) | set(probe))
        metrics["fidelity_sample"] = {"models": len(chosen), "of": n, "estimated_s_all": round(estimate, 1),
                                      "why": f"estimated {estimate:.0f} s for all {n} models, over the "
                                             f"{time_budget_s:g} s budget: {len(chosen)} evenly spaced models"}
    more = [i for i in chosen if i not in rows]
    rows.update(zip(more, fidelity(meta, population, n_inits=n_inits, inputs=inputs, seed=seed, models=more)))
    return [rows[i] for i in chosen]


def _evenly_spaced(n: int, k: int) -> List[int]:
    """k distinct indices spread evenly over range(n) (all of them when k >= n)."""
    if k >= n:
        return list(range(n))
    return sorted({int(round(i * (n - 1) / max(k - 1, 1))) for i in range(k)})


def baseline_section(meta: MetaModel, population: Population, seed: int = 0,
                     labels_per_class: Optional[Sequence[int]] = (1, 5, 20), max_sequences: int = 200,
                     measures: Optional[Sequence[str]] = None, time_budget_s: Optional[float] = None,
                     group_labels: Optional[Dict[str, Sequence]] = None, n_permutations: int = 999,
                     exclude: Sequence[int] = (),
                     memory_budget_gb: Optional[float] = DEFAULT_MEMORY_BUDGET_GB, distributed: bool = False) -> Dict:
    """DYNAMO beside the baselines (dynamo_ext.compare) on the same recording: distance matrices,
    clustering scores by task and by architecture, and the few-label comparison per task.

    Every measure comes from the registry (``compare.registry``): DYNAMO's readings first ("dynamo",
    the Euclidean distance of theta, and "dynamo_functional", the meta-model's states and outputs at
    theta_i against theta_j on the same probe inputs), then ``measures``. Measures over ``time_budget_s`` (``plan_measures``) are
    skipped and listed in ``section["skipped"]``. ``section["tests"]``: ``group_tests`` of the task and
    architecture labels (where they form at least 2 groups) and of ``group_labels``, without the models
    of ``exclude`` (indices; the report's poorly emulated models). The recording is held in memory or
    read from a temporary folder as ``memory_budget_gb`` allows, and the all-pairs products split over
    the ranks with ``distributed`` (see ``analyze``)."""
    measures = measure_names(default=True, dynamo=False) if measures is None else measures
    check_measures(measures, population.family)
    _check_group_labels(group_labels, len(population))
    with recording_within(population, max_sequences, memory_budget_gb) as rec:
        measures, skipped = plan_measures(rec, measures, time_budget_s)
        readings = [m for m in measure_names(dynamo=True) if m not in measures]  # DYNAMO's, always, first
        distances = distance_matrices(population, recording=rec, measures=[*readings, *measures], meta=meta,
                                      distributed=distributed)
        dsa = _dsa_settings(rec) if "dsa" in measures else None  # the settings dsa_distances used, for the report

    labels = {"task": population.labels("task"), "arch": population.labels("arch")}
    tests = {name: lab for name, lab in labels.items() if 2 <= len(set(lab)) < len(lab)}
    tests.update({name: list(lab) for name, lab in (group_labels or {}).items()})
    section = {"clustering": compare_measures(distances, labels, seed=seed),
               "tests": group_tests(distances, tests, n_permutations=n_permutations, seed=seed,
                                    exclude=[population.ids[i] for i in exclude], ids=population.ids),
               "distances": {name: d.tolist() for name, d in distances.items()},
               "ids": population.ids, "skipped": skipped}
    if dsa is not None:
        section["dsa_settings"] = dsa
    if labels_per_class:
        section["few_labels"] = [{"task": name, **row} for name, task in population.tasks.items()
                                 for row in compare_few_labels(meta, task, labels_per_class, seed=seed)]
    return section


def _dsa_settings(recording) -> Dict:
    from ..compare.dsa import dsa_settings

    return dsa_settings(recording)


def _check_group_labels(group_labels: Optional[Dict[str, Sequence]], n: int) -> None:
    for name, lab in (group_labels or {}).items():
        if len(lab) != n:
            raise ValueError(f"argument 'group_labels' entry {name!r} must give one label per base model "
                             f"({n}), got {len(lab)}")
