"""The explorer's Dash app: the embedding plane, two selections (A and B), their comparison, a path, a group.

A click on a model selects it (drill-down), a click anywhere else in the theta plane selects that theta
(what-if); the radio buttons choose whether a click sets A or B. A line drawn in the plane ("draw a
path") or the "scan A -> B" button scans the fixed points along it. The selections, the coloring and
the plane are kept in the page's URL, so a view can be shared; figures download as PNG or SVG from
their toolbar, the numbers as JSON and the models as CSV. Everything is computed by ``Explorer``.
"""
from __future__ import annotations

import json
from typing import Dict, Optional
from urllib.parse import parse_qs, urlencode

import dash
from dash import Input, Output, State, ctx, dcc, html

from . import panels
from .figures import plane_figure
from .model import Explorer

CSS = ("body{font-family:sans-serif;margin:0 auto;max-width:1240px;padding:0 12px;box-sizing:border-box}"
       ".row{display:flex;flex-wrap:wrap;gap:12px;align-items:center;margin:6px 0}"
       ".cols{display:flex;flex-wrap:wrap;gap:12px}.cols>div{flex:1 1 420px;min-width:0}"
       ".panel,.figure{max-width:100%}.numbers{border-collapse:collapse;font-size:13px}"
       ".numbers td,.numbers th{border:1px solid #ddd;padding:2px 6px}.num{text-align:right}"
       ".theta{display:none}.hint{color:#666;font-size:13px}.marks{color:#b00020;font-size:13px}.wide{overflow-x:auto;max-width:100%}"
       ".control{min-width:180px}")


def _encode(point: Optional[Dict]) -> Optional[str]:
    if point is None:
        return None
    return f"model:{point['id']}" if point["kind"] == "model" else "theta:" + ",".join(repr(v) for v in point["theta"])


def _decode(text: Optional[str], explorer: Explorer) -> Optional[Dict]:
    """A selection from the URL; None where it does not name a model or a finite theta."""
    if not text:
        return None
    kind, _, value = text.partition(":")
    try:
        if kind == "model":
            return {"kind": "model", "id": explorer.resolve(value)["id"]}
        if kind == "theta":
            return {"kind": "theta", "theta": explorer.resolve([float(v) for v in value.split(",")])["theta"].tolist()}
    except ValueError:
        return None
    return None


def _answer(explorer: Explorer, point: Optional[Dict]) -> Optional[Dict]:
    if point is None:
        return None
    return explorer.at_model(point["id"]) if point["kind"] == "model" else explorer.at_theta(point["theta"])


def _config(fmt: str) -> Dict:
    return {"toImageButtonOptions": {"format": fmt, "scale": 2}, "displaylogo": False,
            "modeBarButtonsToAdd": ["drawline", "eraseshape"]}


def make_app(explorer: Explorer) -> dash.Dash:
    """The Dash app of ``explorer`` (serve it with ``app.run``; ``dynamo_ext.explorer.explore`` does).
    It reads no file: static assets are off, and the population and meta-model are in memory. The page
    (``layout``) is apart from what answers it (``_view_callbacks``, ``_panel_callbacks``,
    ``_scan_and_group_callbacks``, ``_export_callback``)."""
    app = dash.Dash(__name__, title="DYNAMO explorer", assets_folder="/nonexistent-dynamo-explorer-assets",
                    assets_ignore=".*", include_assets_files=False, serve_locally=True,
                    suppress_callback_exceptions=True)
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + CSS + "</style>")
    app.layout = layout(explorer)
    _view_callbacks(app, explorer)
    _panel_callbacks(app, explorer)
    _scan_and_group_callbacks(app, explorer)
    _export_callback(app, explorer)
    return app


def layout(explorer: Explorer) -> html.Div:
    """The page: the controls, the embedding plane, the A and B panels, their comparison, the scan and the
    group average (every element empty until a callback fills it)."""
    return html.Div([
        dcc.Location(id="url", refresh=False),
        dcc.Store(id="sel", data={"A": None, "B": None}),
        html.H2("DYNAMO explorer"),
        html.Div([html.Span(f"{explorer.n} base models, embedding dimension {explorer.meta.embedding_dim}, "
                            f"meta-model state size {explorer.meta.state_size}; task {explorer.task.name}",
                            className="hint")], className="row"),
        html.Div([
            html.Label(["color by ", dcc.Dropdown(sorted(explorer.labels), "arch", id="color-by", clearable=False,
                                                  className="control")]),
            dcc.RadioItems([{"label": "theta plane", "value": "theta"},
                            {"label": "functional distances (MDS)", "value": "mds"}], "theta", id="plane-kind",
                           inline=True),
            dcc.RadioItems([{"label": "click sets A", "value": "A"}, {"label": "click sets B", "value": "B"}], "A",
                           id="target", inline=True),
            html.Button("draw a path", id="draw", n_clicks=0),
            html.Button("scan A → B", id="scan-ab", n_clicks=0),
            dcc.RadioItems(["png", "svg"], "png", id="export-format", inline=True),
            html.Button("numbers (JSON)", id="export-json"), html.Button("models (CSV)", id="export-csv"),
            dcc.Download(id="download"),
        ], className="row"),
        dcc.Graph(id="plane", config=_config("png"), className="figure"),
        html.Div([dcc.Loading(html.Div(id="panel-A")), dcc.Loading(html.Div(id="panel-B"))], className="cols"),
        html.Div(id="compare"),
        dcc.Loading(html.Div(id="scan"), id="scan-loading"),
        html.Div([html.Label(["average the group ", dcc.Dropdown(id="group-value", className="control")])],
                 className="row"),
        html.Div(id="group"),
    ])


def _point(sel, side):
    p = sel.get(side)
    return None if p is None else (p["id"] if p["kind"] == "model" else p["theta"])


def _view_callbacks(app: dash.Dash, explorer: Explorer) -> None:
    """The view's state (selections, coloring, plane; the URL that shares it) and the plane drawn from it."""
    labels = sorted(explorer.labels)

    @app.callback(Output("sel", "data"), Output("url", "search"), Output("color-by", "value"),
                  Output("plane-kind", "value"),
                  Input("url", "search"), Input("plane", "clickData"), Input("color-by", "value"),
                  Input("plane-kind", "value"), State("target", "value"), State("sel", "data"))
    def state(search, click, color, kind, target, sel):
        """The one place the view's state changes: from the URL (a shared view) or from the page."""
        if ctx.triggered_id == "url":
            q = {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items()}
            sel = {"A": _decode(q.get("a"), explorer), "B": _decode(q.get("b"), explorer)}
            color = q.get("color") if q.get("color") in labels else color
            kind = q.get("plane") if q.get("plane") in ("theta", "mds") else kind
            return sel, dash.no_update, color, kind
        if ctx.triggered_id == "plane" and click:
            p = click["points"][0]
            if p.get("customdata") is not None:
                sel = {**sel, target: {"kind": "model", "id": p["customdata"]}}
            elif kind == "theta" and p.get("curveNumber") == 0:  # the click grid
                sel = {**sel, target: {"kind": "theta", "theta": explorer.to_theta([p["x"], p["y"]]).tolist()}}
        query = {k: v for k, v in (("a", _encode(sel["A"])), ("b", _encode(sel["B"])), ("color", color),
                                    ("plane", kind)) if v is not None}
        return sel, "?" + urlencode(query), color, kind

    @app.callback(Output("plane", "figure"), Input("plane-kind", "value"), Input("color-by", "value"),
                  Input("sel", "data"), Input("draw", "n_clicks"))
    def plane(kind, color, sel, draws):
        marks = {}
        for side in "AB":
            point = sel.get(side)
            if point is not None and kind == "theta":
                theta = explorer.resolve(point["id"] if point["kind"] == "model" else point["theta"])["theta"]
                marks[side] = {"plane": explorer.to_plane(theta)}
        return plane_figure(explorer.plane(kind), color, marks, drawing=bool(draws and draws % 2))


def _panel_callbacks(app: dash.Dash, explorer: Explorer) -> None:
    """The A and B panels (a model's drill-down or a what-if theta) and their comparison."""
    for side in "AB":
        @app.callback(Output(f"panel-{side}", "children"), Input("sel", "data"), Input("export-format", "value"))
        def panel(sel, fmt, side=side):
            answer = _answer(explorer, sel.get(side))
            if answer is None:
                return html.Div(f"{side}: click a model (drill-down) or an empty place in the theta plane "
                                f"(what-if).", className="hint")
            build = panels.model_panel if sel[side]["kind"] == "model" else panels.theta_panel
            return build(side, answer, _config(fmt))

    @app.callback(Output("compare", "children"), Input("sel", "data"))
    def compare(sel):
        if sel.get("A") is None or sel.get("B") is None:
            return panels.compare_panel(None)
        return panels.compare_panel(explorer.compare(_point(sel, "A"), _point(sel, "B")))


def _scan_and_group_callbacks(app: dash.Dash, explorer: Explorer) -> None:
    """The fixed points along A -> B or a drawn path, and the average of a group of models."""
    @app.callback(Output("scan", "children"), Input("scan-ab", "n_clicks"), Input("plane", "relayoutData"),
                  State("sel", "data"), State("plane-kind", "value"), State("export-format", "value"),
                  prevent_initial_call=True)
    def scan(n_clicks, relayout, sel, kind, fmt):
        if ctx.triggered_id == "scan-ab":
            if sel.get("A") is None or sel.get("B") is None:
                return panels.scan_panel(None, _config(fmt))
            return panels.scan_panel(explorer.path(_point(sel, "A"), _point(sel, "B")), _config(fmt))
        shapes = (relayout or {}).get("shapes") or []
        lines = [s for s in shapes if s.get("type") == "line"]
        if kind != "theta" or not lines:
            return dash.no_update
        s = lines[-1]
        a, b = explorer.to_theta([s["x0"], s["y0"]]), explorer.to_theta([s["x1"], s["y1"]])
        return panels.scan_panel(explorer.path(a.tolist(), b.tolist()), _config(fmt))

    @app.callback(Output("group-value", "options"), Input("color-by", "value"))
    def group_options(color):
        return [{"label": f"{color} = {v}", "value": v} for v in sorted({str(x) for x in explorer.labels[color]})]

    @app.callback(Output("group", "children"), Input("group-value", "value"), State("color-by", "value"))
    def group(value, color):
        return panels.group_panel(None if value is None else explorer.group(color, value))


def models_csv(explorer: Explorer) -> str:
    """Every base model's labels, emulation figures and theta, one CSV row each."""
    plane = explorer.plane("theta")
    head = ["id", *sorted(plane["labels"]), "hidden_r2", "output_agreement", "theta"]
    lines = [",".join(head)] + [",".join([mid, *(str(plane["labels"][k][i]) for k in sorted(plane["labels"])),
                                          repr(plane["hidden_r2"][i]), repr(plane["output_agreement"][i]),
                                          " ".join(map(repr, explorer.thetas[i].tolist()))])
                                for i, mid in enumerate(plane["ids"])]
    return "\n".join(lines) + "\n"


def _export_callback(app: dash.Dash, explorer: Explorer) -> None:
    """The downloads: every model as CSV, or the numbers of A, B and their comparison as JSON."""
    @app.callback(Output("download", "data"), Input("export-json", "n_clicks"), Input("export-csv", "n_clicks"),
                  State("sel", "data"), prevent_initial_call=True)
    def export(_json, _csv, sel):
        if ctx.triggered_id == "export-csv":
            return dcc.send_string(models_csv(explorer), "dynamo-models.csv")
        both = sel.get("A") is not None and sel.get("B") is not None
        data = {side: _answer(explorer, sel.get(side)) for side in "AB"}
        data["compare"] = explorer.compare(_point(sel, "A"), _point(sel, "B")) if both else None
        return dcc.send_string(json.dumps(data, indent=1), "dynamo-explorer.json")
