"""Tracking REST API under ``/api/v1``: thin handlers over the tracking services."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from passerelle.core.auth import Action
from passerelle.core.db import session_scope
from passerelle.core.downloads import verified_download
from passerelle.core.ids import INT64_MAX, INT64_MIN
from passerelle.core.store import StoredObject
from passerelle.core.web import PrincipalDep, SessionDep, SettingsDep, StoreDep, json_response
from passerelle.tracking import artifacts, datasets, ingest, query, service
from passerelle.tracking.schemas import (
    ArtifactPublic,
    DatasetPublic,
    DatasetRef,
    ExperimentCreate,
    ExperimentList,
    ExperimentPublic,
    MetricBatch,
    MetricHistory,
    MetricIn,
    ParamsIn,
    RunCreate,
    RunPage,
    RunPublic,
    RunSearch,
    RunUpdate,
    TagsIn,
)

router = APIRouter(prefix="/api/v1", tags=["tracking"])

ExperimentId = Annotated[int, Path(ge=INT64_MIN, le=INT64_MAX)]


# -- experiments -------------------------------------------------------------------------------
@router.post("/experiments", response_model=ExperimentPublic, status_code=201)
def create_experiment(body: ExperimentCreate, session: SessionDep, principal: PrincipalDep):
    exp = service.create_experiment(
        session, principal, body.name, body.project, body.description, body.tags
    )
    return service.experiment_public(exp, body.project)


@router.get("/experiments", response_model=ExperimentList)
def list_experiments(session: SessionDep, principal: PrincipalDep, project: str | None = None):
    return {"experiments": service.list_experiments(session, principal, project)}


@router.get("/experiments/{experiment_id}", response_model=ExperimentPublic)
def get_experiment(experiment_id: ExperimentId, session: SessionDep, principal: PrincipalDep):
    exp = service.get_experiment(session, principal, experiment_id)
    return next(e for e in service.list_experiments(session, principal) if e["id"] == exp.id)


@router.get("/experiments/by-name/{name}", response_model=ExperimentPublic)
def get_experiment_by_name(
    name: str, session: SessionDep, principal: PrincipalDep, project: str | None = None
):
    exp = service.find_experiment(session, principal, name, project)
    return next(e for e in service.list_experiments(session, principal) if e["id"] == exp.id)


# -- runs --------------------------------------------------------------------------------------
@router.post("/runs", response_model=RunPublic, status_code=201)
def create_run(body: RunCreate, session: SessionDep, principal: PrincipalDep):
    run = service.create_run(session, principal, body)
    return json_response(service.runs_public(session, [run], include_lineage=True)[0], 201)


@router.get("/runs/{run_id}", response_model=RunPublic)
def get_run(run_id: str, session: SessionDep, principal: PrincipalDep):
    return json_response(service.get_run(session, principal, run_id))


@router.patch("/runs/{run_id}", response_model=RunPublic)
def update_run(run_id: str, body: RunUpdate, session: SessionDep, principal: PrincipalDep):
    run = service.update_run(session, principal, run_id, body)
    return json_response(service.runs_public(session, [run])[0])


@router.delete("/runs/{run_id}", status_code=204)
def delete_run(run_id: str, session: SessionDep, principal: PrincipalDep):
    service.delete_run(session, principal, run_id)
    return Response(status_code=204)


@router.get("/runs/{run_id}/children", response_model=RunPage)
def child_runs(run_id: str, session: SessionDep, principal: PrincipalDep):
    runs = service.child_runs(session, principal, run_id)
    return json_response({"runs": service.runs_public(session, runs), "next_page_token": None})


@router.post("/runs/search", response_model=RunPage)
def search_runs(body: RunSearch, session: SessionDep, principal: PrincipalDep):
    runs, token = query.search_runs(
        session,
        principal,
        experiment_ids=body.experiment_ids,
        experiments=body.experiments,
        project=body.project,
        filter=body.filter,
        order_by=body.order_by,
        max_results=body.max_results,
        page_token=body.page_token,
        include_lineage=body.include_lineage,
    )
    return json_response({"runs": runs, "next_page_token": token})


# -- params, tags, metrics ---------------------------------------------------------------------
@router.post("/runs/{run_id}/params", status_code=204)
def log_params(run_id: str, body: ParamsIn, session: SessionDep, principal: PrincipalDep):
    service.log_params(session, principal, run_id, body.params)
    return Response(status_code=204)


@router.post("/runs/{run_id}/tags", status_code=204)
def set_tags(run_id: str, body: TagsIn, session: SessionDep, principal: PrincipalDep):
    service.set_tags(session, principal, run_id, body.tags)
    return Response(status_code=204)


@router.delete("/runs/{run_id}/tags/{key}", status_code=204)
def delete_tag(run_id: str, key: str, session: SessionDep, principal: PrincipalDep):
    service.delete_tag(session, principal, run_id, key)
    return Response(status_code=204)


@router.post("/runs/{run_id}/metrics", status_code=204)
def log_metric(run_id: str, body: MetricIn, session: SessionDep, principal: PrincipalDep):
    service.log_metrics(session, principal, run_id, [body])
    return Response(status_code=204)


@router.post(
    "/runs/{run_id}/metrics/batch",
    status_code=204,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": MetricBatch.model_json_schema()}},
        }
    },
)
async def log_metric_batch(
    run_id: str, request: Request, session: SessionDep, principal: PrincipalDep
):
    """Up to 100,000 values in one call: the hot path, parsed and stored without per-value
    models (same rules as ``MetricBatch``)."""
    rows = ingest.parse_batch(await request.body())
    await run_in_threadpool(ingest.store_rows, session, principal, run_id, rows)
    return Response(status_code=204)


@router.get("/runs/{run_id}/metrics/{key}/history", response_model=MetricHistory)
def metric_history(run_id: str, key: str, session: SessionDep, principal: PrincipalDep):
    points = service.metric_history(session, principal, run_id, key)
    return json_response(
        {
            "key": key,
            "points": [
                {"step": s, "value": service.json_float(v), "timestamp": t} for s, v, t in points
            ],
        }
    )


# -- datasets ----------------------------------------------------------------------------------
@router.post("/runs/{run_id}/datasets", response_model=DatasetPublic, status_code=201)
def log_dataset(
    run_id: str, body: DatasetRef, session: SessionDep, principal: PrincipalDep, store: StoreDep
):
    return json_response(datasets.log_dataset(session, principal, store, run_id, body), 201)


@router.get("/runs/{run_id}/datasets", response_model=list[DatasetPublic])
def run_datasets(run_id: str, session: SessionDep, principal: PrincipalDep):
    service.load_run(session, principal, run_id, Action.READ)
    return json_response(datasets.run_datasets(session, run_id))


# -- artifacts and blobs -----------------------------------------------------------------------
@router.get("/runs/{run_id}/artifacts", response_model=list[ArtifactPublic])
def list_artifacts(
    run_id: str, session: SessionDep, principal: PrincipalDep, prefix: str | None = None
):
    arts = artifacts.list_artifacts(session, principal, run_id, prefix)
    return json_response(
        [
            {"path": a.path, "size": a.size, "sha256": a.sha256, "created_at": a.created_at}
            for a in arts
        ]
    )


@router.put("/runs/{run_id}/artifacts", response_model=ArtifactPublic, status_code=201)
async def upload_artifact(
    run_id: str,
    path: Annotated[str, Query(description="Path of the file inside the run's artifacts.")],
    request: Request,
    principal: PrincipalDep,
    store: StoreDep,
    settings: SettingsDep,
):
    """Stream the request body into the store; the run and the path are checked first."""
    sessions = request.app.state.sessions

    def check() -> str:
        with session_scope(sessions) as session:
            return artifacts.check_artifact_upload(session, principal, run_id, path)

    def record(obj: StoredObject) -> dict:
        with session_scope(sessions) as session:
            art = artifacts.record_artifact(session, principal, run_id, clean, obj)
            return {
                "path": art.path,
                "size": art.size,
                "sha256": art.sha256,
                "created_at": art.created_at,
            }

    # The database work runs off the event loop: blocked there, it could wait on the write lock
    # of a request whose commit is queued behind it on the same loop.
    clean = await run_in_threadpool(check)
    obj = await store.put_async_chunks(request.stream(), max_bytes=settings.max_artifact_bytes)
    return json_response(await run_in_threadpool(record, obj), 201)


@router.get("/runs/{run_id}/artifacts/content")
def download_artifact(
    run_id: str, path: str, session: SessionDep, principal: PrincipalDep, store: StoreDep
):
    art = artifacts.get_artifact(session, principal, run_id, path)
    return verified_download(store, art.sha256, art.size)


@router.put("/blobs", status_code=201)
async def upload_blob(
    request: Request, principal: PrincipalDep, store: StoreDep, settings: SettingsDep
):
    """Store bytes by content (dataset snapshots, model packages); answers their sha256."""
    principal.require(Action.WRITE, principal.project_id)
    obj = await store.put_async_chunks(request.stream(), max_bytes=settings.max_artifact_bytes)
    return json_response({"sha256": obj.sha256, "size": obj.size}, 201)
