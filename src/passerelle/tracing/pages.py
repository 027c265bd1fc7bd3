"""Tracing pages: the traces list with filters and search, a trace as a tree and a waterfall,
sessions (the turns of a conversation) and the cost and latency dashboard.

Pages call the same service functions as the REST API (never the API over HTTP).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from passerelle.core.auth import Action
from passerelle.core.errors import InvalidInput
from passerelle.core.ids import now_ms
from passerelle.core.web import PrincipalDep, SessionDep
from passerelle.tracing import service, stats, views
from passerelle.web.render import PageRoute, render

TEMPLATES = Path(__file__).parent / "templates"
PAGE = 50
DAY_MS = 86_400_000

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Text = Annotated[str | None, Query(max_length=500)]
Number = Annotated[str | None, Query(max_length=40)]  # a form sends empty fields as ""


def _number(value: str | None, field: str) -> float | None:
    """A number typed in the filter form; an empty field does not filter."""
    if value is None or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a number, not {value[:40]!r}", field=field) from None
    if not 0 <= number <= 1e12:
        raise InvalidInput(f"{field} must be between 0 and 10^12", field=field)
    return number


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _synced(request: Request) -> None:
    request.app.state.tracing.ingester.sync()


@router.get("/traces")
def traces_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    project: Text = None,
    name: Text = None,
    user_id: Text = None,
    session_id: Text = None,
    tag: Text = None,
    start: Text = None,
    end: Text = None,
    min_latency_ms: Number = None,
    max_latency_ms: Number = None,
    min_cost: Number = None,
    max_cost: Number = None,
    errors: Annotated[str | None, Query(pattern="^(|yes|no)$")] = None,
    q: Text = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    _synced(request)
    proj = service.project_for(session, principal, _blank_to_none(project), Action.READ)
    filters = service.TraceFilter(
        name=_blank_to_none(name),
        user_id=_blank_to_none(user_id),
        session_id=_blank_to_none(session_id),
        tag=_blank_to_none(tag),
        since=views.parse_local_time(start),
        until=views.parse_local_time(end),
        min_latency_ms=_number(min_latency_ms, "min_latency_ms"),
        max_latency_ms=_number(max_latency_ms, "max_latency_ms"),
        min_cost=_number(min_cost, "min_cost"),
        max_cost=_number(max_cost, "max_cost"),
        errors={"yes": True, "no": False}.get(errors or ""),
        q=_blank_to_none(q),
    )
    rows, total = service.list_traces(
        session, proj.id, filters, limit=PAGE, offset=(page - 1) * PAGE
    )
    form = {
        "project": project or "",
        "name": name or "",
        "user_id": user_id or "",
        "session_id": session_id or "",
        "tag": tag or "",
        "start": start or "",
        "end": end or "",
        "min_latency_ms": min_latency_ms or "",
        "max_latency_ms": max_latency_ms or "",
        "min_cost": min_cost or "",
        "max_cost": max_cost or "",
        "errors": errors or "",
        "q": q or "",
    }
    context = {
        "project": proj.name,
        "traces": [service.trace_public(t) for t in rows],
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE)),
        "form": form,
        "money": views.money,
        "latency": views.latency,
    }
    return render(request, "tracing/traces.html", context, principal=principal)


@router.get("/traces/{trace_id}")
def trace_page(
    request: Request,
    trace_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    project: Text = None,
) -> Response:
    _synced(request)
    proj = service.project_for(session, principal, _blank_to_none(project), Action.READ)
    found = service.get_trace(session, proj.id, trace_id)
    context = {
        "project": proj.name,
        "t": found["trace"],
        "rows": views.waterfall(found["observations"]),
        "scores": found["scores"],
        "money": views.money,
        "latency": views.latency,
    }
    return render(request, "tracing/trace.html", context, principal=principal)


@router.get("/sessions")
def sessions_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    project: Text = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    _synced(request)
    proj = service.project_for(session, principal, _blank_to_none(project), Action.READ)
    rows, total = service.list_sessions(session, proj.id, limit=PAGE, offset=(page - 1) * PAGE)
    context = {
        "project": proj.name,
        "sessions": rows,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE)),
        "money": views.money,
    }
    return render(request, "tracing/sessions.html", context, principal=principal)


@router.get("/sessions/{session_id:path}")
def session_page(
    request: Request,
    session_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    project: Text = None,
) -> Response:
    _synced(request)
    proj = service.project_for(session, principal, _blank_to_none(project), Action.READ)
    found = service.get_session(session, proj.id, session_id)
    turns: list[dict[str, Any]] = [
        {
            **t,
            "input_messages": views.chat_messages(t["input"]),
            "output_messages": views.chat_messages(t["output"]),
            "input_pretty": views.pretty(t["input"]),
            "output_pretty": views.pretty(t["output"]),
        }
        for t in found["traces"]
    ]
    context = {
        "project": proj.name,
        "s": found,
        "turns": turns,
        "money": views.money,
        "latency": views.latency,
    }
    return render(request, "tracing/session.html", context, principal=principal)


@router.get("/tracing")
def dashboard_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    project: Text = None,
    days: Annotated[int, Query(ge=1, le=3650)] = 7,
) -> Response:
    _synced(request)
    proj = service.project_for(session, principal, _blank_to_none(project), Action.READ)
    since = now_ms() - days * DAY_MS
    board = stats.dashboard(session, proj.id, since=since)
    by_model = stats.cost_totals(session, proj.id, "model", since=since)
    context = {
        "project": proj.name,
        "days": days,
        "b": board,
        "by_model": by_model,
        "chart": views.cost_chart(board["by_model_day"]) if board["by_model_day"] else None,
        "money": views.money,
        "latency": views.latency,
    }
    return render(request, "tracing/dashboard.html", context, principal=principal)
