"""Serving API: endpoint management, predictions (own shape and Open Inference Protocol),
feedback and the inference log."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
from fastapi import APIRouter, Request
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import InvalidInput, PasserelleError
from passerelle.core.web import PrincipalDep, SessionDep, get_principal, json_response
from passerelle.serving import feedback, service
from passerelle.serving.runtime import EndpointUnavailable, ServingRuntime, prepare_input
from passerelle.serving.schemas import (
    DeploymentChange,
    EndpointPublic,
    FeedbackBatch,
    FeedbackItem,
    PredictRequest,
    PredictResponse,
)

router = APIRouter(tags=["serving"])
# Predictions are matched before any other route of the app (see create_app): each route tried
# before the right one costs every prediction a few microseconds.
data_router = APIRouter(tags=["serving"])
ARROW_TYPES = ("application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet")
BATCH_HEADER = "x-batch-id"  # batch scoring: every chunk of one file carries the same id


# -- management --------------------------------------------------------------------------------
@router.get("/api/v1/endpoints", response_model=list[EndpointPublic])
def list_endpoints(session: SessionDep, principal: PrincipalDep):
    return json_response(
        [service.endpoint_public(e) for e in service.list_endpoints(session, principal)]
    )


@router.get("/api/v1/endpoints/{name}", response_model=EndpointPublic)
def get_endpoint(name: str, session: SessionDep, principal: PrincipalDep):
    return json_response(service.endpoint_public(service.get_endpoint(session, principal, name)))


@router.post("/api/v1/endpoints/{name}/deployments", response_model=EndpointPublic)
def change_deployment(
    name: str,
    body: DeploymentChange,
    session: SessionDep,
    principal: PrincipalDep,
    request: Request,
):
    endpoint = service.apply_change(
        session,
        principal,
        name,
        body.action,
        version=body.version,
        weight=body.weight,
        model=body.model,
        project=body.project,
        reason=body.reason,
        request_key=body.request_key,
        redact=body.redact,
    )
    session.commit()  # in force before this process serves its next request
    request.app.state.serving.invalidate(name)
    return json_response(service.endpoint_public(endpoint))


@router.get("/api/v1/endpoints/{name}/history")
def deployment_history(name: str, session: SessionDep, principal: PrincipalDep):
    return json_response(service.history(session, principal, name))


@router.get("/api/v1/endpoints/{name}/log")
async def inference_log(
    name: str,
    request: Request,
    principal: PrincipalDep,
    since: int | None = None,
    limit: int = 10_000,
):
    """The endpoint's predictions (compacted first), with their feedback joined."""
    runtime: ServingRuntime = request.app.state.serving
    config = await run_in_threadpool(runtime.config, name, principal)
    table = await run_in_threadpool(runtime.log.read, name, since, min(max(limit, 1), 100_000))
    rows = table.to_pylist()

    def joined_feedback() -> dict:
        with request.app.state.sessions() as session:
            return feedback.feedback_for(session, config["id"])

    known = await run_in_threadpool(joined_feedback)
    for row in rows:
        row.update(known.get(row.get("prediction_id"), {}))
    return json_response({"endpoint": name, "rows": rows})


# -- predictions -------------------------------------------------------------------------------
async def _inputs(request: Request) -> tuple[list[dict[str, Any]], pa.Table | None]:
    """Records, and the table itself for Arrow and Parquet bodies (JSON becomes a table only
    if the model's numeric fast path does not take it)."""
    raw = await request.body()
    if not raw:
        raise InvalidInput('empty request body: send {"inputs": [...]}', field="inputs")
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if ctype in ARROW_TYPES or ctype in PARQUET_TYPES:
        try:
            if ctype in PARQUET_TYPES:
                import pyarrow.parquet as pq

                table = pq.read_table(pa.BufferReader(raw))
            else:
                table = pa.ipc.open_stream(raw).read_all()
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidInput(f"unreadable {ctype} body: {exc}", field="body") from None
        return table.to_pylist(), table
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}", field="body") from None
    if not isinstance(body, dict) or "inputs" not in body:
        raise InvalidInput('expected {"inputs": [records] or {column: [values]}}', field="inputs")
    return _as_records(body["inputs"]), None


def _as_records(inputs: Any) -> list[dict[str, Any]]:
    if isinstance(inputs, dict):
        lengths = {len(v) if isinstance(v, list) else -1 for v in inputs.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise InvalidInput("columns must be lists of the same length", field="inputs")
        records = [
            dict(zip(inputs, row, strict=True)) for row in zip(*inputs.values(), strict=True)
        ]
    elif isinstance(inputs, list) and all(isinstance(r, dict) for r in inputs):
        records = inputs
    else:
        raise InvalidInput(
            "inputs must be a list of records or an object of columns", field="inputs"
        )
    if not records:
        raise InvalidInput("inputs is empty", field="inputs")
    return records


async def _predict(
    name: str,
    request: Request,
    principal: Principal,
    records: list[dict[str, Any]],
    table: pa.Table | None,
) -> tuple[dict[str, Any], BackgroundTask | None]:
    """Route, validate, then join a micro-batch; thread hops only when something is cold.
    Returns the answer, and the shadow calls to run once it is sent."""
    runtime: ServingRuntime = request.app.state.serving
    config = runtime.cached_config(name, principal) or await run_in_threadpool(
        runtime.config, name, principal
    )
    if config["paused"]:
        raise EndpointUnavailable(f"endpoint '{name}' is paused")
    key = request.headers.get("x-request-key")
    if key is None and config["request_key"] and config["request_key"] in records[0]:
        key = str(records[0][config["request_key"]])
    version, route = runtime.route(config, key)
    model = runtime.cached_model(config, version) or await run_in_threadpool(
        runtime.model, config, version
    )
    batch_id = request.headers.get(BATCH_HEADER)
    try:
        model_table, matrix = prepare_input(model, records, table)
        answer = await runtime.batcher(config, version).submit(
            config, records, model_table, matrix, key, route, batch_id
        )
    except PasserelleError as exc:
        runtime.log_failure(config, version, route, records, key, batch_id, exc)
        raise
    shadows = None
    if config["shadow_versions"]:
        shadows = BackgroundTask(runtime.shadow, config, records, table, key, batch_id)
    return answer, shadows


# The two prediction routes take the bare request: FastAPI's parameter and dependency solving
# cost more than the rest of a one-row prediction's own work. Their parameters are declared for
# the OpenAPI schema by hand.
_NAME_PARAMETER = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}


@data_router.post(
    "/v1/endpoints/{name}/predict",
    response_model=PredictResponse,
    openapi_extra={
        "parameters": [_NAME_PARAMETER],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": PredictRequest.model_json_schema()},
                "application/vnd.apache.parquet": {},
                "application/vnd.apache.arrow.stream": {},
            },
        },
    },
)
async def predict(request: Request):
    name = request.path_params["name"]
    principal = await get_principal(request)
    records, table = await _inputs(request)
    answer, shadows = await _predict(name, request, principal, records, table)
    response = json_response(answer)
    response.headers["X-Model-Version"] = str(answer["model_version"])
    response.background = shadows
    return response


_V2_TYPES = {
    "BOOL": bool,
    "INT8": int,
    "INT16": int,
    "INT32": int,
    "INT64": int,
    "UINT8": int,
    "UINT16": int,
    "UINT32": int,
    "UINT64": int,
    "FP16": float,
    "FP32": float,
    "FP64": float,
    "BYTES": str,
}


@data_router.post("/v2/models/{name}/infer", openapi_extra={"parameters": [_NAME_PARAMETER]})
async def infer_v2(request: Request):
    """The Open Inference Protocol (KServe v2): one named input tensor per column."""
    name = request.path_params["name"]
    principal = await get_principal(request)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}", field="body") from None
    tensors = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(tensors, list) or not tensors:
        raise InvalidInput("expected a non-empty 'inputs' list of tensors", field="inputs")
    columns: dict[str, list[Any]] = {}
    for i, t in enumerate(tensors):
        if (
            not isinstance(t, dict)
            or not isinstance(t.get("name"), str)
            or not isinstance(t.get("data"), list)
        ):
            raise InvalidInput(f"inputs[{i}] needs a name and a data list", field=f"inputs.{i}")
        if t.get("datatype") not in _V2_TYPES:
            raise InvalidInput(
                f"inputs[{i}].datatype must be one of {sorted(_V2_TYPES)}",
                field=f"inputs.{i}.datatype",
            )
        columns[t["name"]] = t["data"]
    answer, shadows = await _predict(name, request, principal, _as_records(columns), None)
    preds = answer["predictions"]
    kind = (
        "FP64"
        if any(isinstance(p, float) for p in preds)
        else "INT64"
        if all(isinstance(p, int) for p in preds)
        else "BYTES"
    )
    response = json_response(
        {
            "model_name": name,
            "model_version": str(answer["model_version"]),
            "id": body.get("id") or answer["prediction_ids"][0],
            "outputs": [
                {"name": "predictions", "shape": [len(preds)], "datatype": kind, "data": preds}
            ],
            "parameters": {"prediction_ids": answer["prediction_ids"]},
        }
    )
    response.headers["X-Model-Version"] = str(answer["model_version"])
    response.background = shadows
    return response


# -- feedback ----------------------------------------------------------------------------------
@router.post(
    "/api/v1/feedback",
    status_code=202,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            FeedbackItem.model_json_schema(),
                            FeedbackBatch.model_json_schema(),
                        ]
                    }
                }
            },
        }
    },
)
async def post_feedback(request: Request, session: SessionDep, principal: PrincipalDep):
    """One ``{"prediction_id", "ground_truth", "score"}`` or ``{"items": [...]}``."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}", field="body") from None
    from pydantic import ValidationError

    try:
        items = (
            FeedbackBatch.model_validate(body).items
            if isinstance(body, dict) and "items" in body
            else [FeedbackItem.model_validate(body)]
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise InvalidInput(f"{field}: {err['msg']}", field=field) from None
    principal.require(Action.ANNOTATE)
    runtime: ServingRuntime = request.app.state.serving
    stored = await run_in_threadpool(
        feedback.record_feedback, session, principal, runtime.log, items
    )
    return json_response({"accepted": stored}, 202)
