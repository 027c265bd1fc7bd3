"""Endpoint pages: what serves where, live figures per version, the traffic split, the history,
and promote / weight / rollback through a confirmation page.

Pages call the serving service like the REST API does, and read live figures from the
inference log through the runtime (never over HTTP). A change takes two posts: the first shows
the traffic now and after, the second applies it only with a token signed over that exact
change and the endpoint's revision, so a stale or altered confirmation is never applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import InvalidInput, PasserelleError
from passerelle.core.ids import now_ms
from passerelle.core.web import PrincipalDep, SessionDep
from passerelle.serving import service, views
from passerelle.serving.models import Endpoint
from passerelle.web.login import _same_origin
from passerelle.web.render import PageRoute, error_page, render

TEMPLATES = Path(__file__).parent / "templates"
RECENT_CHANGES = 3  # changes an endpoint shows on the list page

router = APIRouter(route_class=PageRoute, include_in_schema=False)

ProjectQuery = Annotated[str | None, Query(max_length=250)]
WindowQuery = Annotated[int, Query(ge=1, le=1440)]
FORBIDDEN_ORIGIN = "deployment changes are only accepted from forms of this site"


# -- reading -----------------------------------------------------------------------------------
def _panel(
    request: Request,
    session: Session,
    principal: Principal,
    endpoint: Endpoint,
    project: str,
    window: int,
    now: int,
    *,
    charts: bool = False,
) -> dict[str, Any]:
    """Everything an endpoint's card shows: roles, live figures, split, actions."""
    public = service.endpoint_public(endpoint)
    since = now - window * 60_000
    try:
        log = request.app.state.serving.log.read(endpoint.name, since)
        log_error = None
    except PasserelleError as exc:  # the figures are lost, not the page
        log, log_error = pa.table({}), exc.message
    requests = views.requests_of(log, endpoint.id, since)
    stats = views.version_stats(requests)
    rows = views.role_rows(public, stats, window)
    for row in rows:
        row["url"] = views.version_url(endpoint.model_name, project, row["version"])
    total = sum(s.routed for s in stats.values())  # answered to callers, not shadow copies
    errors = sum(s.routed_errors for s in stats.values())
    panel = {
        "e": public,
        "project": project,
        "url": views.endpoint_url(endpoint.name, project),
        "model_url": views.model_page_url(endpoint.model_name, project),
        "segments": views.split_segments(public),
        "rows": rows,
        "total_requests": total,
        "total_rate": total / (window * 60),
        "error_rate": errors / total if total else None,
        "can_write": principal.can(Action.WRITE, endpoint.project_id),
        "can_rollback": endpoint.canary_version is not None or bool(endpoint.primary_history),
        "actions": {a: views.endpoint_path(endpoint.name, a) for a in CHANGES},
        "charts": None,
        "log_error": log_error,
    }
    if charts:
        roles = {r["version"]: r["role"] for r in rows}
        panel["charts"] = views.traffic_charts(requests, since, now, roles)
    return panel


@router.get("/endpoints")
def endpoints_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    window: WindowQuery = views.DEFAULT_WINDOW,
) -> Response:
    endpoints = service.list_endpoints(session, principal)
    projects = views.project_names(session, endpoints)
    now = now_ms()
    panels = []
    for e in endpoints:
        panel = _panel(request, session, principal, e, projects[e.project_id], window, now)
        history = service.history(session, principal, e.name, projects[e.project_id])
        panel["history"] = views.history_rows(history[:RECENT_CHANGES])
        panel["history_count"] = len(history)
        panels.append(panel)
    context = {"panels": panels, "window": window, "windows": views.WINDOWS}
    return render(request, "serving/endpoints.html", context, principal=principal)


def _notice(history: list[dict[str, Any]], revision: int | None) -> str | None:
    """What the change a redirect names did, read from the history rather than the URL."""
    event = next((e for e in history if e["revision"] == revision), None) if revision else None
    if event is None:
        return None
    return f"{event['label']}: {event['before_text']} → {event['after_text']}."


@router.get("/endpoints/{name}")
def endpoint_page(
    request: Request,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    project: ProjectQuery = None,
    window: WindowQuery = views.DEFAULT_WINDOW,
    changed: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    endpoint = service.get_endpoint(session, principal, name, Action.READ, project)
    proj = views.project_names(session, [endpoint])[endpoint.project_id]
    panel = _panel(request, session, principal, endpoint, proj, window, now_ms(), charts=True)
    history = views.history_rows(service.history(session, principal, endpoint.name, proj))
    context = {
        "p": panel,
        "history": history,
        "window": window,
        "windows": views.WINDOWS,
        "notice": _notice(history, changed),
    }
    return render(request, "serving/endpoint.html", context, principal=principal)


# -- changes -----------------------------------------------------------------------------------
CHANGES = ("promote", "weight", "rollback")
TITLES = {
    "promote": "Promote the canary of {}?",
    "weight": "Change the canary weight of {}?",
    "rollback": "Roll back {}?",
}
BUTTONS = {"promote": "Promote", "weight": "Change the weight", "rollback": "Roll back"}
PLACEHOLDERS = {
    "promote": "error rate and p99 in line with the primary for a day",
    "weight": "no errors after an hour at 10%",
    "rollback": "p99 latency doubled on the canary",
}


@dataclass(frozen=True)
class DeploymentChange:
    """One change as the confirmation page shows it and its token signs it."""

    action: str
    project: str
    endpoint: str
    revision: int  # the endpoint's revision the change was shown against
    weight: float | None = None

    def fields(self) -> tuple[Any, ...]:
        return (self.action, self.project, self.endpoint, self.revision, self.weight)


def _preview(session: Session, principal: Principal, change: DeploymentChange) -> dict[str, Any]:
    """The endpoint after the change, computed by the service itself and rolled back.

    Asking the service (in a savepoint) rather than predicting its rules here keeps the page
    truthful, and refuses at once a change the service would refuse.
    """
    nested = session.begin_nested()
    try:
        endpoint = service.apply_change(
            session,
            principal,
            change.endpoint,
            change.action,
            weight=change.weight,
            project=change.project,
        )
        return service.endpoint_public(endpoint)
    finally:
        nested.rollback()


def _confirm_page(
    request: Request,
    session: Session,
    principal: Principal,
    endpoint: Endpoint,
    change: DeploymentChange,
    reason: str,
    *,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    before = service.endpoint_public(endpoint)
    after = _preview(session, principal, change)
    unchanged = {k: before[k] for k in views.TRAFFIC} == {k: after[k] for k in views.TRAFFIC}
    context = {
        "change": change,
        "title": TITLES[change.action].format(change.endpoint),
        "button": BUTTONS[change.action],
        "placeholder": PLACEHOLDERS[change.action],
        "reason": reason,
        "before": before,
        "after": after,
        "before_segments": views.split_segments(before),
        "after_segments": views.split_segments(after),
        "before_text": views.describe(before),
        "after_text": views.describe(after),
        "explanation": None if unchanged else views.explain(change.action, before, after),
        "unchanged": unchanged,
        "action_url": views.endpoint_path(change.endpoint, change.action),
        "cancel_url": views.endpoint_url(change.endpoint, change.project),
        "token": views.sign_change(views.signing_key(request), change.fields(), now_ms()),
        "notice": notice,
    }
    return render(
        request, "serving/confirm.html", context, status_code=status_code, principal=principal
    )


def _parse_int(value: str, field: str) -> int:
    value = value.strip()
    if not value.isdigit() or len(value) > 10:
        raise InvalidInput("the confirmation form was altered: start again", field=field)
    return int(value)


def _parse_weight(value: str) -> float:
    try:
        weight = float(value.strip().rstrip("%"))
    except ValueError:
        weight = -1.0
    if not 0 <= weight <= 100:  # also refuses NaN
        raise InvalidInput(
            f"weight {value.strip()!r}: give a percent between 0 and 100", field="weight"
        )
    return weight


def _change(
    request: Request,
    session: Session,
    principal: Principal,
    name: str,
    action: str,
    project: str,
    reason: str,
    revision: str,
    token: str,
    weight: float | None = None,
) -> Response:
    """Show the confirmation, or apply the change its token was signed for."""
    if not _same_origin(request):
        return error_page(request, 403, FORBIDDEN_ORIGIN)
    endpoint = service.get_endpoint(session, principal, name, Action.WRITE, project or None)
    proj = views.project_names(session, [endpoint])[endpoint.project_id]
    change = DeploymentChange(action, proj, endpoint.name, endpoint.revision, weight)
    reason = reason.strip()
    if not token or (action == "weight" and weight == endpoint.canary_weight):
        return _confirm_page(request, session, principal, endpoint, change, reason)
    shown = DeploymentChange(action, proj, endpoint.name, _parse_int(revision, "revision"), weight)
    check = views.check_change(views.signing_key(request), shown.fields(), token.strip(), now_ms())
    if check is views.TokenCheck.INVALID:
        return error_page(
            request,
            400,
            "this confirmation is not valid (altered, or issued for another key): nothing was "
            "changed; start again from the endpoint's page",
        )
    if check is views.TokenCheck.EXPIRED:
        notice = "That confirmation expired and nothing was changed: confirm again to apply it."
        return _confirm_page(request, session, principal, endpoint, change, reason, notice=notice)
    if shown.revision != endpoint.revision:
        notice = (
            f"Endpoint {endpoint.name} changed meanwhile (it now serves "
            f"{views.describe(service.endpoint_public(endpoint))}). Nothing was changed."
        )
        return _confirm_page(
            request, session, principal, endpoint, change, reason, notice=notice, status_code=409
        )
    updated = service.apply_change(
        session, principal, endpoint.name, action, weight=weight, project=proj, reason=reason
    )
    revision_after = updated.revision
    session.commit()  # in force before this process serves its next request
    request.app.state.serving.invalidate(endpoint.name)
    target = views.endpoint_url(endpoint.name, proj, changed=revision_after)
    return RedirectResponse(target + "#history", status_code=303)


ReasonForm = Annotated[str, Form(max_length=2000)]
ProjectForm = Annotated[str, Form(max_length=250)]
RevisionForm = Annotated[str, Form(max_length=20)]
TokenForm = Annotated[str, Form(max_length=200)]


@router.post("/endpoints/{name}/promote")
def promote(
    request: Request,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonForm = "",
    project: ProjectForm = "",
    revision: RevisionForm = "",
    token: TokenForm = "",
) -> Response:
    return _change(request, session, principal, name, "promote", project, reason, revision, token)


@router.post("/endpoints/{name}/rollback")
def rollback(
    request: Request,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonForm = "",
    project: ProjectForm = "",
    revision: RevisionForm = "",
    token: TokenForm = "",
) -> Response:
    return _change(request, session, principal, name, "rollback", project, reason, revision, token)


@router.post("/endpoints/{name}/weight")
def change_weight(
    request: Request,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    weight: Annotated[str, Form(max_length=20)] = "",
    reason: ReasonForm = "",
    project: ProjectForm = "",
    revision: RevisionForm = "",
    token: TokenForm = "",
) -> Response:
    return _change(
        request,
        session,
        principal,
        name,
        "weight",
        project,
        reason,
        revision,
        token,
        _parse_weight(weight),
    )
