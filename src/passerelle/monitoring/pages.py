"""Monitoring pages: an endpoint's performance over time per version (measured, with its 95%
interval, and the estimate beside it), and the alert rules with their incidents.

Pages call the same service functions as the REST API; figures are plotly specifications built
here, so their shape is tested in Python.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response

from passerelle.core.web import PrincipalDep, SessionDep
from passerelle.monitoring import alerts, service
from passerelle.monitoring.data import window_text
from passerelle.monitoring.performance import HIGHER_IS_BETTER
from passerelle.web.charts import CONFIG, FONT, PALETTE
from passerelle.web.render import PageRoute, render

TEMPLATES = Path(__file__).parent / "templates"
WINDOWS = ("1h", "6h", "1d", "1w")
router = APIRouter(route_class=PageRoute, include_in_schema=False)


def mount_pages(app: FastAPI) -> None:
    """Add these pages and their templates (``monitoring/...``) to an app with the UI."""
    env: jinja2.Environment = app.state.templates
    loader = env.loader
    assert isinstance(loader, jinja2.ChoiceLoader)
    prefixes = next(x for x in loader.loaders if isinstance(x, jinja2.PrefixLoader))
    prefixes.mapping["monitoring"] = jinja2.FileSystemLoader(TEMPLATES)
    app.include_router(router)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def performance_figure(report: dict[str, Any], metric: str) -> dict[str, Any] | None:
    """One colour per version: the measured value with its interval as error bars (solid),
    the estimate over every prediction of the window (dashed)."""
    by_version: dict[int, list[dict[str, Any]]] = {}
    for w in report["windows"]:
        by_version.setdefault(w["version"], []).append(w)
    data = []
    for i, (version, rows) in enumerate(sorted(by_version.items())):
        color = PALETTE[i % len(PALETTE)]
        measured = [r for r in rows if r["metrics"].get(metric) is not None]
        if measured:
            values = [r["metrics"][metric] for r in measured]
            intervals = [
                r["intervals"].get(metric) or [v, v] for r, v in zip(measured, values, strict=True)
            ]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"v{version} measured",
                    "x": [_iso(r["window_start"]) for r in measured],
                    "y": values,
                    "error_y": {
                        "type": "data",
                        "symmetric": False,
                        "array": [hi - v for (_, hi), v in zip(intervals, values, strict=True)],
                        "arrayminus": [
                            v - lo for (lo, _), v in zip(intervals, values, strict=True)
                        ],
                        "color": color,
                    },
                    "line": {"color": color, "width": 2},
                    "marker": {"color": color},
                    "customdata": [r["labelled"] for r in measured],
                    "hovertemplate": f"%{{x}} UTC<br>v{version} {metric}: %{{y:.4g}}"
                    " (%{customdata} labelled)<extra></extra>",
                }
            )
        estimated = [
            r
            for r in rows
            if ((r.get("estimate") or {}).get("metrics") or {}).get(metric) is not None
        ]
        if estimated:
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"v{version} estimated",
                    "x": [_iso(r["window_start"]) for r in estimated],
                    "y": [r["estimate"]["metrics"][metric] for r in estimated],
                    "line": {"color": color, "width": 2, "dash": "dash"},
                    "marker": {"color": color, "symbol": "circle-open"},
                    "hovertemplate": f"%{{x}} UTC<br>v{version} estimated {metric}: "
                    "%{y:.4g}<extra></extra>",
                }
            )
    if not data:
        return None
    axis = {"gridcolor": "#e8ebef", "zeroline": False, "linecolor": "#c9ced6"}
    layout = {
        "title": {"text": f"{metric} per window", "font": {"size": 13}, "x": 0, "xanchor": "left"},
        "font": FONT,
        "margin": {"l": 50, "r": 16, "t": 36, "b": 40},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "height": 320,
        "xaxis": {
            **axis,
            "type": "date",
            "title": {"text": "UTC"},
            "range": [_iso(report["since"]), _iso(report["until"])],
        },
        "yaxis": axis,
        "showlegend": True,
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
    }
    return {"data": data, "layout": layout, "config": CONFIG}


@router.get("/endpoints/{name}/performance")
def performance_page(
    request: Request,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    window: Annotated[str, Query(max_length=40)] = "1d",
    since: Annotated[str | None, Query(max_length=40)] = None,
    metric: Annotated[str | None, Query(max_length=60)] = None,
    project: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    report = service.performance_report(
        session,
        principal,
        request.app.state.serving.log,
        name,
        window=window,
        since=since,
        project=project,
    )
    chosen = metric if metric in report["metrics"] else report["metrics"][0]
    context = {
        "report": report,
        "name": name,
        "metric": chosen,
        "higher_is_better": HIGHER_IS_BETTER.get(chosen, True),
        "window": window,
        "windows": WINDOWS,
        "since": since,
        "figure": performance_figure(report, chosen),
        "endpoint_url": "/endpoints/" + quote(name, safe=""),
        "url": "/endpoints/" + quote(name, safe="") + "/performance",
        "rows": sorted(report["windows"], key=lambda w: (-w["window_start"], w["version"])),
    }
    return render(request, "monitoring/performance.html", context, principal=principal)


@router.get("/alerts")
def alerts_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    endpoint: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    rules = alerts.list_rules(session, principal, endpoint or None)
    for r in rules:
        r["window_text"] = window_text(r["window_ms"])
    names = {r["id"]: r["name"] for r in rules}
    incidents = [i for i in alerts.list_incidents(session, principal) if i["rule_id"] in names]
    context = {
        "rules": rules,
        "incidents": incidents,
        "rule_names": names,
        "endpoint": endpoint,
        "firing": sum(r["state"] == "firing" for r in rules),
    }
    return render(request, "monitoring/alerts.html", context, principal=principal)
