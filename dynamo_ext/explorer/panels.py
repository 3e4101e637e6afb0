"""The explorer's panels (Dash HTML): a selection's numbers and figures, the comparison, the path, the group.

Every number is an element with its own id (``A-n_stable``, ``compare-cka``, ``scan-3-n_stable``, ...),
so that the page, its export and the browser test read the same values; exact thetas are written
in full in ``A-theta`` / ``B-theta``.
"""
from __future__ import annotations

import json
from typing import Dict, List, Optional

from dash import dcc, html

from ..dynamics.marks import BELOW_THRESHOLD, UNSEEN_SLOW_MODE
from ..uses.extrapolation import EXTRAPOLATION_LIMIT
from .figures import outputs_figure, points_figure, scan_figure

MARK_TEXT = {BELOW_THRESHOLD: "below the quality threshold: the meta-model does not emulate this model well "
                              "(held-out hidden R² under the fit's threshold); its readings stand for a poor emulation",
             UNSEEN_SLOW_MODE: "unseen slow mode: at one of its attractors the meta-model has a mode the map A_n does "
                               "not read that is slower than every mode it reads; read the Jacobian through A_n"}


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def number_table(prefix: str, rows: List[tuple]) -> html.Table:
    """A two-column table of (label, key, value); each value cell has id ``{prefix}-{key}``."""
    return html.Table([html.Tr([html.Td(label), html.Td(_fmt(value), id=f"{prefix}-{key}", className="num")])
                       for label, key, value in rows], className="numbers")


def graph(figure, config: Dict, gid: str) -> dcc.Graph:
    return dcc.Graph(id=gid, figure=figure, config=config, className="figure")


def _panel(side: str, title: str, theta: List[float], rows: List[tuple], graphs: List,
           warnings: Optional[List[str]] = None) -> html.Div:
    """A selection's panel: its title, its exact theta (hidden), its warnings (id ``{side}-marks``), its
    numbers, its figures."""
    marks = [html.Ul([html.Li(w) for w in warnings], id=f"{side}-marks", className="marks")] if warnings else []
    return html.Div([html.H4(f"{side}: {title}"), html.Pre(json.dumps(theta), id=f"{side}-theta", className="theta"),
                     *marks, number_table(side, rows), *graphs], className="panel")


def theta_panel(side: str, answer: Dict, config: Dict) -> html.Div:
    """What-if: the meta-model at an arbitrary theta, as an operable network."""
    rows = [("fixed points", "n_fixed_points", answer["n_fixed_points"]), ("stable", "n_stable", answer["n_stable"]),
            ("unstable", "n_unstable", answer["n_unstable"]), ("slow points", "n_slow_points", answer["n_slow_points"]),
            ("task accuracy", "accuracy", answer["accuracy"]),
            ("nearest base model", "nearest_model", answer["nearest_model"]),
            ("its distance (median NN distances)", "relative_distance", answer["relative_distance"]),
            ("computed in (s)", "seconds", answer["seconds"])]
    graphs = [graph(points_figure(answer["points"], answer["stable"], answer["trajectories"], "Fixed points (its PCs)"),
                    config, f"{side}-points-figure"),
              graph(outputs_figure(answer["outputs"], "Outputs, first probe"), config, f"{side}-outputs-figure")]
    title = f"the meta-model at theta ({', '.join(f'{v:.3f}' for v in answer['theta'])})"
    warnings = ([f"extrapolation: {answer['relative_distance']:.2f} median nearest-neighbour distances from the "
                 f"nearest base model ({answer['nearest_model']}), past the limit of {EXTRAPOLATION_LIMIT:g}"]
                if answer["extrapolation"] else [])
    return _panel(side, title, answer["theta"], rows, graphs, warnings)


def model_panel(side: str, answer: Dict, config: Dict) -> html.Div:
    """Drill-down: a base model beside the meta-model at its theta_n."""
    fid = answer["fidelity"]
    base, meta = fid.get("base", {}), fid.get("meta", {})
    rows = [("base test accuracy", "test_accuracy", answer["test_accuracy"]),
            ("meta-model test accuracy", "meta_test_accuracy", answer["meta_test_accuracy"]),
            ("hidden R² (held out)", "hidden_r2", answer["hidden_r2"]),
            ("output agreement", "output_agreement", answer["output_agreement"]),
            ("base: fixed points", "base-n_fixed_points", base.get("n_fixed_points")),
            ("base: stable", "base-n_stable", base.get("n_stable")),
            ("meta-model: fixed points", "meta-n_fixed_points", meta.get("n_fixed_points")),
            ("meta-model: stable", "meta-n_stable", meta.get("n_stable")),
            ("stable points matched", "n_matched", fid.get("n_matched")),
            ("largest matched distance (rel.)", "max_matched_distance_rel", fid.get("max_matched_distance_rel"))]
    graphs = [graph(points_figure(answer["base_points"], [True] * len(answer["base_points"]),
                                  answer["base_trajectories"], "Stable points (base PCs)",
                                  meta_points=answer["meta_points"]), config, f"{side}-points-figure"),
              graph(points_figure([], [], answer["meta_trajectories"], "Meta-model through A_n (base PCs)"), config,
                    f"{side}-meta-figure")]
    return _panel(side, f"base model {answer['id']} and the meta-model at its theta", answer["theta"], rows, graphs,
                  [MARK_TEXT[m] for m in answer.get("marks", [])])


def compare_panel(answer: Optional[Dict]) -> html.Div:
    if answer is None:
        return html.Div("Select A and B (the radio buttons above choose which a click sets) to compare them.",
                        className="hint")
    from ..compare.registry import REGISTRY

    rows = [("distance in theta", "theta_distance", answer["theta_distance"]),
            ("functional distance (DYNAMO)", "functional_distance", answer["functional_distance"])]
    rows += [(f"{REGISTRY[name].description if name in REGISTRY else name} of the base models", name, value)
             for name, value in answer["measures"].items()]
    return html.Div([html.H4("A and B"), number_table("compare", rows)])


def scan_panel(answer: Optional[Dict], config: Dict) -> html.Div:
    if answer is None:
        return html.Div("Draw a line in the theta plane, or scan from A to B.", className="hint")
    keys = ("n_fixed_points", "n_stable", "n_saddle_1", "n_unstable_more", "n_slow_points")
    head = html.Tr([html.Th("position")] + [html.Th(k) for k in keys])
    rows = [html.Tr([html.Td(r["index"])] + [html.Td(r[k], id=f"scan-{r['index']}-{k}") for k in keys])
            for r in answer["rows"]]
    return html.Div([html.Pre(json.dumps([answer["a"], answer["b"]]), id="scan-ends", className="theta"),
                     graph(scan_figure(answer["rows"]), config, "scan-figure"),
                     html.Div(html.Table([head] + rows, className="numbers"), className="wide")])


def group_panel(answer: Optional[Dict]) -> html.Div:
    if answer is None:
        return html.Div()
    return html.Div([html.H4(f"The averaged network of {answer['by']} = {answer['value']} "
                             f"({len(answer['members'])} models)"),
                     number_table("group", [("members' mean accuracy", "member_mean_accuracy",
                                             answer["member_mean_accuracy"]),
                                            ("averaged network's accuracy", "averaged_accuracy",
                                             answer["averaged_accuracy"])])])
