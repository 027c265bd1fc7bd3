"""The drift page of an endpoint: each feature's verdict, its drift over time, and the
reference and current distributions side by side.

The page calls the drift service like the REST API does. Its templates extend the UI's
``base.html`` through an environment of their own, so the page adds no entry to the shared
template registry.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.web import COOKIE_NAME, PrincipalDep, SessionDep
from passerelle.monitoring.drift import charts, service
from passerelle.serving import service as serving
from passerelle.web.render import PAGE_HEADERS, PageRoute, make_environment

TEMPLATES = Path(__file__).parent / "templates"
PERIODS = ("24h", "7d", "30d")

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return make_environment({"drift": TEMPLATES})


def page_context(body: dict[str, Any]) -> dict[str, Any]:
    """What the page shows, from a drift answer: rows of the table and the figures."""
    columns = [*body["columns"], *([body["prediction"]] if body.get("prediction") else [])]
    rows = [
        {
            **c,
            "flagged_by": [s["test"] for s in [c["drift"], *c["checks"]] if s["drifted"]],
        }
        for c in columns
    ]
    figures = charts.drift_over_time(body)
    distributions = [(c["column"], f) for c in columns if (f := charts.distribution(c)) is not None]
    return {"d": body, "rows": rows, "over_time": figures, "distributions": distributions}


def version_choices(
    session: Session, principal: Principal, name: str, project: str | None, chosen: int | None
) -> list[tuple[int | None, str]]:
    """The page's choice of traffic: all of it, or one of the versions the endpoint routes to
    (and the one asked for, routed or not), each with its role."""
    endpoint = serving.get_endpoint(session, principal, name, Action.READ, project)
    roles: dict[int, str] = {}
    if endpoint.primary_version is not None:
        roles[endpoint.primary_version] = "primary"
    if endpoint.canary_version is not None:
        roles.setdefault(endpoint.canary_version, "canary")
    for shadow in endpoint.shadow_versions or []:
        roles.setdefault(shadow, "shadow")
    if chosen is not None:
        roles.setdefault(chosen, "not routed")
    return [(None, "all traffic")] + [(v, f"v{v} ({role})") for v, role in sorted(roles.items())]


@router.get("/endpoints/{name}/drift")
def drift_page(
    request: Request,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    since: Annotated[str, Query(max_length=40)] = "24h",
    window: Annotated[str | None, Query(max_length=40)] = None,
    version: Annotated[int | None, Query(ge=1)] = None,
    project: Annotated[str | None, Query(max_length=250)] = None,
) -> HTMLResponse:
    body = service.drift(
        session,
        principal,
        request.app.state.store,
        getattr(request.app.state, "serving", None),
        name,
        since=since,
        window=window or None,
        version=version,
        project=project or None,
    )
    context = {
        **page_context(body),
        "since": since,
        "periods": PERIODS,
        "versions": version_choices(session, principal, name, project or None, version),
        "project": project or "",
        "request_path": request.url.path,
        "principal": principal,
        "signed_in": bool(request.cookies.get(COOKIE_NAME)),
    }
    html = environment().get_template("drift/drift.html").render(context)
    return HTMLResponse(html, headers=PAGE_HEADERS)
