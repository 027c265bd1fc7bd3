"""Monitoring pages: an endpoint's performance over time per version (measured, with its 95%
interval, and the estimate beside it), and the alert rules with their incidents.

Pages call the same service functions as the REST API; figures are plotly specifications built
in ``charts`` (shared with the offline report), so their shape is tested in Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response

from passerelle.core.web import PrincipalDep, SessionDep
from passerelle.monitoring import alerts, service
from passerelle.monitoring.charts import performance_figure
from passerelle.monitoring.data import window_text
from passerelle.monitoring.performance import HIGHER_IS_BETTER
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
