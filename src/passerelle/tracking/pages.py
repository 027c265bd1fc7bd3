"""Tracking pages: experiments, the runs table, a run's details and the comparison of runs.

Each page calls the same service functions as the REST API (never the API over HTTP); the
templates live in ``templates/`` next to this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import iterate_in_threadpool

from passerelle.core.errors import InvalidInput
from passerelle.core.store import ObjectStore
from passerelle.core.web import PrincipalDep, SessionDep, StoreDep
from passerelle.tracking import artifacts, query, service, views
from passerelle.tracking.datasets import run_datasets
from passerelle.web.charts import line_figure, parcoords_figure
from passerelle.web.previews import SVG_CSP, artifact_preview, image_type, table_preview
from passerelle.web.render import PageRoute, error_page, render

TEMPLATES = Path(__file__).parent / "templates"
PAGE_SIZE = 50
MAX_DATASET_PREVIEWS = 10

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_PLAIN_KEY = re.compile(r"^[A-Za-z_][\w\-/:]*(\.[A-Za-z_][\w\-/:]*)*$")


def order_identifier(prefix: str, key: str) -> str | None:
    """How the filter language names a key: plain when it can, backquoted otherwise."""
    if _PLAIN_KEY.match(key):
        return f"{prefix}.{key}"
    if "`" not in key:
        return f"{prefix}.`{key}`"
    return None  # not expressible: the column is shown but not sortable


# -- experiments -------------------------------------------------------------------------------
@router.get("/")
def home(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    experiments = service.list_experiments(session, principal)
    return render(request, "tracking/home.html", {"experiments": experiments}, principal=principal)


def _columns(keys: dict[str, list[str]]) -> list[dict[str, Any]]:
    columns = [
        {"group": "attr", "label": "Name", "key": "name", "ident": "name"},
        {"group": "attr", "label": "Status", "key": "status", "ident": "status"},
        {"group": "attr", "label": "Started", "key": "start_time", "ident": "start_time"},
        {"group": "attr", "label": "Duration", "key": "duration", "ident": None},
    ]
    columns += [
        {"group": "param", "label": k, "key": k, "ident": order_identifier("params", k)}
        for k in keys["params"]
    ]
    columns += [
        {"group": "metric", "label": k, "key": k, "ident": order_identifier("metrics", k)}
        for k in keys["metrics"]
    ]
    return columns


@router.get("/experiments/{experiment_id}")
def experiment_page(
    request: Request,
    experiment_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    filter: Annotated[str, Query(max_length=4000)] = "",
    order_by: Annotated[str, Query(max_length=1000)] = "",
    page_token: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = PAGE_SIZE,
) -> Response:
    exp = views.experiment_summary(session, principal, experiment_id)
    columns = _columns(query.experiment_key_columns(session, exp["id"]))
    runs: list[dict[str, Any]] = []
    next_token: str | None = None
    error = None
    offset = 0
    try:
        offset = query.decode_token(page_token)
        runs, next_token = query.search_runs(
            session,
            principal,
            experiment_ids=[exp["id"]],
            filter=filter or None,
            order_by=[order_by] if order_by.strip() else None,
            max_results=limit,
            page_token=page_token,
        )
    except InvalidInput as exc:
        error = exc.message
    prev_token = None
    if offset > 0:
        prev_token = query.encode_token(max(0, offset - limit)) if offset > limit else ""
    context = {
        "experiment": exp,
        "columns": columns,
        "runs": runs,
        "filter": filter,
        "order_by": order_by.strip(),
        "error": error,
        "offset": offset,
        "limit": limit,
        "next_token": next_token,
        "prev_token": prev_token,
    }
    return render(
        request,
        "tracking/experiment.html",
        context,
        status_code=400 if error else 200,
        principal=principal,
    )


# -- runs --------------------------------------------------------------------------------------
def _dataset_rows(session: Session, store: ObjectStore, run_id: str) -> list[dict[str, Any]]:
    rows = []
    for i, ds in enumerate(run_datasets(session, run_id)):
        preview = None
        if ds["snapshot_sha256"] and i < MAX_DATASET_PREVIEWS:
            preview = table_preview(store, ds["snapshot_sha256"], ds["snapshot_size"])
        rows.append({**ds, "preview": preview})
    return rows


@router.get("/runs/{run_id}")
def run_page(
    request: Request,
    run_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    artifact: str | None = None,
) -> Response:
    run = service.get_run(session, principal, run_id)
    arts = artifacts.list_artifacts(session, principal, run_id)
    selected = None
    if artifact:
        art = artifacts.get_artifact(session, principal, run_id, artifact)
        preview = artifact_preview(store, art.path, art.sha256, art.size)
        selected = {"artifact": art, "preview": preview}
    histories = service.metric_histories(session, principal, run_id)
    charts = [
        {"key": key, "figure": line_figure(key, [(key, [(s, v) for s, v, _ in points])])}
        for key, points in histories.items()
    ]
    context = {
        "run": run,
        "code": run["lineage"]["code"],
        "environment": run["lineage"]["environment"],
        "parent": views.parent_summary(session, principal, run["parent_run_id"]),
        "children": service.child_runs(session, principal, run_id),
        "charts": charts,
        "tree": views.artifact_tree(arts),
        "selected": selected,
        "datasets": _dataset_rows(session, store, run_id),
        "run_url": "/runs/" + quote(run_id, safe=""),
    }
    return render(request, "tracking/run.html", context, principal=principal)


def _blob_response(store: ObjectStore, sha256: str, size: int, headers: dict[str, str]) -> Response:
    """Stream a verified blob.

    The first chunk is read before answering, so an object that fails verification before any
    byte is sent (every object of one chunk) gets an error page instead of a 200; a larger one
    is cut short, which the browser reports as a failed transfer.
    """
    chunks = store.iter_verified(sha256)
    first = next(chunks, b"")

    def body() -> Iterator[bytes]:
        yield first
        yield from chunks

    return StreamingResponse(
        iterate_in_threadpool(body()),
        headers={
            "Content-Length": str(size),
            "ETag": f'"{sha256}"',
            "X-Content-Type-Options": "nosniff",
            **headers,
        },
    )


@router.get("/runs/{run_id}/artifacts/raw")
def artifact_image(
    request: Request,
    run_id: str,
    path: str,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
) -> Response:
    """Images only, for ``<img>`` previews; any other file is downloaded instead."""
    art = artifacts.get_artifact(session, principal, run_id, path)
    content_type = image_type(art.path)
    if content_type is None:
        return error_page(request, 400, f"'{art.path}' is not an image; download it instead")
    headers = {"Content-Type": content_type, "Cache-Control": "private, max-age=300"}
    if content_type == "image/svg+xml":
        headers["Content-Security-Policy"] = SVG_CSP
    return _blob_response(store, art.sha256, art.size, headers)


def _attachment(filename: str) -> str:
    """A Content-Disposition any browser reads: an ASCII fallback and the UTF-8 name."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("/runs/{run_id}/artifacts/download")
def artifact_download(
    run_id: str, path: str, session: SessionDep, principal: PrincipalDep, store: StoreDep
) -> Response:
    art = artifacts.get_artifact(session, principal, run_id, path)
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": _attachment(views.artifact_name(art.path)),
    }
    return _blob_response(store, art.sha256, art.size, headers)


# -- comparison --------------------------------------------------------------------------------
@router.get("/compare")
def compare_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    runs: Annotated[list[str] | None, Query()] = None,
) -> Response:
    chosen = [service.get_run(session, principal, rid) for rid in views.parse_run_ids(runs or [])]
    param_keys, param_differ = views.differing_keys(chosen, "params")
    metric_keys, metric_differ = views.differing_keys(chosen, "metrics")
    labels = views.run_labels(chosen)
    histories = [service.metric_histories(session, principal, r["id"]) for r in chosen]
    charts = []
    for key in metric_keys:
        series = [
            (label, [(s, v) for s, v, _ in h[key]])
            for label, h in zip(labels, histories, strict=True)
            if key in h
        ]
        charts.append({"key": key, "figure": line_figure(key, series)})
    columns: list[tuple[str, list[Any]]] = [("run", labels)]
    columns += [(k, [r["params"].get(k) for r in chosen]) for k in param_keys]
    columns += [(k, [r["metrics"].get(k) for r in chosen]) for k in metric_keys]
    context = {
        "runs": chosen,
        "param_keys": param_keys,
        "param_differ": param_differ,
        "metric_keys": metric_keys,
        "metric_differ": metric_differ,
        "charts": charts,
        "parcoords": parcoords_figure(labels, columns) if len(chosen) > 1 else None,
    }
    return render(request, "tracking/compare.html", context, principal=principal)
