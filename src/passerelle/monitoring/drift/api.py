"""Drift API: an endpoint's reference data, and its drift overall and per window."""

from __future__ import annotations

from typing import Annotated

import orjson
import pyarrow as pa
from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from passerelle.core.errors import InvalidInput
from passerelle.core.web import PrincipalDep, SessionDep, json_response
from passerelle.monitoring.drift import figures as _figures  # noqa: F401  (alert figures)
from passerelle.monitoring.drift import service
from passerelle.monitoring.drift.schemas import (
    DriftPublic,
    DriftQuery,
    ReferencePublic,
    ReferenceSet,
)

router = APIRouter(tags=["monitoring"])
TABLE_TYPES = {
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/vnd.apache.arrow.stream": "arrow",
}


def _drift(request: Request, session, principal, name: str, query: DriftQuery):
    return service.drift(
        session,
        principal,
        request.app.state.store,
        getattr(request.app.state, "serving", None),
        name,
        since=query.since,
        window=query.window,
        overrides=query.overrides,
        multivariate=query.multivariate,
        version=query.version,
        project=query.project,
    )


@router.get("/api/v1/endpoints/{name}/drift", response_model=DriftPublic)
def get_drift(
    name: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    since: Annotated[str, Query(max_length=40)] = service.DEFAULT_SINCE,
    window: Annotated[str | None, Query(max_length=40)] = None,
    multivariate: bool = True,
    version: Annotated[int | None, Query(ge=1)] = None,
    project: Annotated[str | None, Query(max_length=250)] = None,
):
    """Drift of the endpoint's traffic over ``since`` at the default settings (of the
    predictions one model ``version`` answered, with ``version``)."""
    query = DriftQuery(
        since=since, window=window, multivariate=multivariate, version=version, project=project
    )
    return json_response(_drift(request, session, principal, name, query))


@router.post("/api/v1/endpoints/{name}/drift", response_model=DriftPublic)
def post_drift(
    name: str, body: DriftQuery, request: Request, session: SessionDep, principal: PrincipalDep
):
    """Drift with per-column overrides of the tests and thresholds."""
    return json_response(_drift(request, session, principal, name, body))


@router.get("/api/v1/endpoints/{name}/drift/reference", response_model=ReferencePublic)
def get_reference(
    name: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    project: Annotated[str | None, Query(max_length=250)] = None,
):
    endpoint, _, meta = service.get_reference(
        session,
        principal,
        request.app.state.store,
        getattr(request.app.state, "serving", None),
        name,
        project,
    )
    return json_response(service.reference_public(endpoint.name, meta))


def _table(raw: bytes, kind: str) -> pa.Table:
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(pa.BufferReader(raw))
        return pa.ipc.open_stream(raw).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"unreadable table: {exc}", field="body") from None


@router.put("/api/v1/endpoints/{name}/drift/reference", response_model=ReferencePublic)
async def put_reference(
    name: str,
    request: Request,
    principal: PrincipalDep,
    project: Annotated[str | None, Query(max_length=250)] = None,
):
    """Set the reference: JSON ``{"version": n}`` or ``{"dataset_id": ...}``, or a table
    (Parquet or Arrow stream body)."""
    raw = await request.body()
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    fields: dict = {"project": project}
    if ctype in TABLE_TYPES:
        fields["data"] = await run_in_threadpool(_table, raw, TABLE_TYPES[ctype])
    else:
        try:
            body = ReferenceSet.model_validate(orjson.loads(raw or b"{}"))
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"request body is not valid JSON: {exc}", field="body") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            raise InvalidInput(f"{where}: {first.get('msg')}", field=where) from None
        fields.update(version=body.version, dataset_id=body.dataset_id)
        fields["project"] = body.project or project

    def run() -> dict:
        with request.app.state.sessions() as session:
            out = service.set_reference(
                session,
                principal,
                request.app.state.store,
                getattr(request.app.state, "serving", None),
                name,
                **fields,
            )
            session.commit()
            return out

    return json_response(await run_in_threadpool(run))
