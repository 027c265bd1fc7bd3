"""Tracing API: the OTLP receiver, traces, sessions, scores, costs, the dashboard, prices."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from passerelle.core.auth import Action
from passerelle.core.ids import INT64_MAX
from passerelle.core.web import PrincipalDep, SessionDep, json_response
from passerelle.tracing import scores, service, stats
from passerelle.tracing.costs import Price
from passerelle.tracing.receiver import OTLP_PATH, PROJECT_HEADER, Receiver
from passerelle.tracing.schemas import PriceIn, PricePublic, ScoreBatch, ScoresAccepted

router = APIRouter(tags=["tracing"])
# Times in milliseconds since the epoch; bounds keep any value a 64-bit column can compare.
TimeMs = Annotated[int | None, Query(ge=0, le=INT64_MAX)]
Offset = Annotated[int, Query(ge=0, le=10**9)]
Limit = Annotated[int, Query(ge=1, le=service.MAX_PAGE)]


def _receiver(request: Request) -> Receiver:
    return request.app.state.tracing


def _synced(request: Request) -> None:
    """Reads see every span this process acknowledged, not only the ingested ones."""
    _receiver(request).ingester.sync()


@router.post(
    OTLP_PATH,
    responses={200: {"description": "An OTLP ExportTraceServiceResponse (protobuf or JSON)."}},
)
async def receive_traces(request: Request, principal: PrincipalDep) -> Response:
    """OTLP/HTTP trace export (protobuf or JSON), acknowledged once spooled."""
    receiver = _receiver(request)
    body = await request.body()
    result = await run_in_threadpool(
        receiver.export,
        body,
        content_type=request.headers.get("content-type"),
        content_encoding=request.headers.get("content-encoding"),
        principal=principal,
        project=request.headers.get(PROJECT_HEADER),
    )
    receiver.ingester.ensure_started()
    return Response(result.body, media_type=result.media_type)


@router.get("/api/v1/traces")
def list_traces(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    project: str | None = None,
    name: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    tag: str | None = None,
    since: TimeMs = None,
    until: TimeMs = None,
    min_latency_ms: float | None = None,
    max_latency_ms: float | None = None,
    min_cost: float | None = None,
    max_cost: float | None = None,
    errors: bool | None = None,
    q: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
):
    _synced(request)
    proj = service.project_for(session, principal, project, Action.READ)
    filters = service.TraceFilter(
        name=name,
        user_id=user_id,
        session_id=session_id,
        tag=tag,
        since=since,
        until=until,
        min_latency_ms=min_latency_ms,
        max_latency_ms=max_latency_ms,
        min_cost=min_cost,
        max_cost=max_cost,
        errors=errors,
        q=q,
    )
    rows, total = service.list_traces(session, proj.id, filters, limit=limit, offset=offset)
    return json_response({"traces": [service.trace_public(t) for t in rows], "total": total})


@router.get("/api/v1/traces/{trace_id}")
def get_trace(
    trace_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    project: str | None = None,
):
    _synced(request)
    proj = service.project_for(session, principal, project, Action.READ)
    return json_response(service.get_trace(session, proj.id, trace_id))


@router.get("/api/v1/sessions")
def list_sessions(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    project: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
):
    _synced(request)
    proj = service.project_for(session, principal, project, Action.READ)
    rows, total = service.list_sessions(session, proj.id, limit=limit, offset=offset)
    return json_response({"sessions": rows, "total": total})


@router.get("/api/v1/sessions/{session_id:path}")
def get_session(
    session_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    project: str | None = None,
):
    _synced(request)
    proj = service.project_for(session, principal, project, Action.READ)
    return json_response(service.get_session(session, proj.id, session_id))


@router.post("/api/v1/scores", status_code=201, response_model=ScoresAccepted)
def create_scores(
    body: ScoreBatch, session: SessionDep, principal: PrincipalDep, project: str | None = None
):
    proj = service.project_for(session, principal, project, Action.ANNOTATE)
    return json_response({"accepted": scores.create_scores(session, proj.id, body.scores)}, 201)


@router.get("/api/v1/tracing/costs")
def cost_totals(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    group_by: Literal["trace", "session", "user", "model", "day"] = "model",
    project: str | None = None,
    since: TimeMs = None,
    until: TimeMs = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
):
    """Cost and tokens per trace, session, user, model or day."""
    _synced(request)
    proj = service.project_for(session, principal, project, Action.READ)
    rows = stats.cost_totals(session, proj.id, group_by, since=since, until=until, limit=limit)
    return json_response({"group_by": group_by, "totals": rows})


@router.get("/api/v1/tracing/dashboard")
def dashboard(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    project: str | None = None,
    since: TimeMs = None,
    until: TimeMs = None,
):
    _synced(request)
    proj = service.project_for(session, principal, project, Action.READ)
    return json_response(stats.dashboard(session, proj.id, since=since, until=until))


@router.get("/api/v1/tracing/prices", response_model=list[PricePublic])
def list_prices(session: SessionDep, principal: PrincipalDep, project: str | None = None):
    proj = service.project_for(session, principal, project, Action.READ)
    return json_response(scores.list_prices(session, proj.id))


@router.put("/api/v1/tracing/prices/{model:path}", response_model=PricePublic)
def set_price(
    model: str,
    body: PriceIn,
    session: SessionDep,
    principal: PrincipalDep,
    project: str | None = None,
):
    """The project's own price for a model (used for generations ingested from now on)."""
    proj = service.project_for(session, principal, project, Action.WRITE)
    price = Price(body.input_per_mtok, body.output_per_mtok, body.cached_input_per_mtok)
    return json_response(scores.set_price(session, proj.id, model, price))


@router.delete("/api/v1/tracing/prices/{model:path}", status_code=204)
def delete_price(
    model: str, session: SessionDep, principal: PrincipalDep, project: str | None = None
):
    proj = service.project_for(session, principal, project, Action.WRITE)
    scores.delete_price(session, proj.id, model)
    return Response(status_code=204)
