"""Structural checks over every route of the app: auth on each API route, and no garbage
request can get a 500 or an answer outside the one error shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from google.protobuf import json_format
from google.rpc import status_pb2

from passerelle.app import create_app
from passerelle.core.settings import Settings
from passerelle.core.web import get_principal
from tests.api._helpers import assert_error, create_run, error_shape_problems

PUBLIC = {"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
# The prediction routes take the bare request and call get_principal themselves (FastAPI's
# dependency solving costs more than the rest of a small prediction); that they refuse a caller
# without a key is checked by behaviour below instead.
AUTHENTICATED_INSIDE = {"/v1/endpoints/{name}/predict", "/v2/models/{name}/infer"}


def api_routes(app: FastAPI) -> list[Any]:
    """Every FastAPI route of the app, with its full path, however the routers were included."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI versions that flatten included routers into app.routes
        return [r for r in app.routes if isinstance(r, APIRoute)]
    return [rc for rc in iter_route_contexts(app.routes) if isinstance(rc.original_route, APIRoute)]


def depends_on(dependant: Any, call: Any) -> bool:
    return any(d.call is call or depends_on(d, call) for d in dependant.dependencies)


def test_every_api_route_requires_the_caller(app):
    routes = api_routes(app)
    api = [r for r in routes if r.path.startswith("/api/")]
    assert len(api) >= 25, [r.path for r in routes]  # the walk found the routers
    missing = [
        f"{sorted(r.methods)} {r.path}" for r in api if not depends_on(r.dependant, get_principal)
    ]
    assert missing == [], f"API routes without the principal dependency: {missing}"


def test_routes_outside_the_api_are_known(app):
    """Anything new outside /api/ must be a page or be added to PUBLIC on purpose."""
    unknown = [
        r.path
        for r in api_routes(app)
        if not r.path.startswith("/api/")
        and r.path not in PUBLIC | AUTHENTICATED_INSIDE
        and not depends_on(r.dependant, get_principal)
        and r.include_in_schema
    ]
    assert unknown == [], (
        f"routes outside /api/ without the principal dependency: {unknown}; if they are meant "
        "to be public (like /healthz), add them to PUBLIC in this test"
    )


def test_the_prediction_routes_refuse_a_caller_without_a_key(locked_client) -> None:
    body = {"inputs": [{"x": 1}]}
    for path in sorted(AUTHENTICATED_INSIDE):
        r = locked_client.post(path.replace("{name}", "churn"), json=body)
        assert r.status_code == 401, (path, r.text)
        assert_error(r, 401)
        r = locked_client.post(
            path.replace("{name}", "churn"), json=body, headers={"X-API-Key": "not-a-key"}
        )
        assert r.status_code == 401, (path, r.text)


@pytest.fixture
def locked_client(tmp_path, database_url) -> Iterator[TestClient]:
    app = create_app(
        Settings(
            home=tmp_path / "home",
            database_url=database_url,
            auth="on",
            admin_key="an-admin-key-long-enough-000",
            _env_file=None,
        )
    )
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client
    finally:
        app.state.engine.dispose()


def test_every_api_route_refuses_a_request_without_a_key(locked_client):
    spec = locked_client.app.openapi()
    checked = 0
    for path, ops in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        url = path
        for op in ops.values():
            for p in op.get("parameters", []):
                if p["in"] == "path":
                    url = url.replace("{" + p["name"] + "}", "1")
        for method in ops:
            resp = locked_client.request(method.upper(), url, params={"path": "a"})
            assert_error(resp, 401, "unauthenticated", field="authorization")
            checked += 1
    assert checked >= 25
    for probe in ("/healthz", "/readyz"):
        assert locked_client.get(probe).status_code == 200


# -- fuzzing from the OpenAPI schema ---------------------------------------------------------------
NASTY: list[Any] = [
    None,
    True,
    0,
    -1,
    2**64,
    -(2**64),
    1.5,
    1e308,
    "",
    "x" * 5000,
    "\x00",
    "é🙂",
    "../../etc/passwd",
    "NaN",
    "' OR 1=1 --",
    [],
    [None, {}],
    {},
    {"a": {"b": [1]}},
    {"d": [{"d": [{"d": [{"d": [[[[[[[[[[1]]]]]]]]]]}]}]}]},
]


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 2**64}
    for _ in range(levels):
        value = {"d": value}
    return value


NASTY.append(_deep(300))

PATH_VALUES = [
    "0" * 32,
    "nope",
    "-1",
    "0",
    "99999999999999999999999",
    "1.5",
    "a" * 3000,
    "é🙂",
    "\x00",
    "..%2F..%2Fetc",
    " ",
]

RAW_BODIES: list[bytes | None] = [
    None,
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"12",
    b"{",
    b"\xff\xfe\x00",
    b"[" * 50_000 + b"]" * 50_000,
    b'{"a": ' * 2000 + b"1" + b"}" * 2000,
]


def resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def sample(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """A plausible value for ``schema``, so garbage in one field reaches the deeper checks."""
    schema = resolve(schema, spec)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if resolve(s, spec).get("type") != "null"]
        return sample(options[0], spec) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        value = {k: sample(v, spec) for k, v in props.items() if k in schema.get("required", [])}
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, dict):
            value["k"] = sample(extra, spec)
        return value
    if kind == "array":
        return [sample(schema.get("items", {}), spec)]
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "string":
        if schema.get("pattern") == "^[0-9a-f]{64}$":
            return "0" * 64
        return "a" * max(1, schema.get("minLength", 1))
    return "a"


def request_variants(
    path: str, method: str, op: dict[str, Any], spec: dict[str, Any], real: dict[str, str]
) -> Iterator[tuple[str, dict[str, str], Any]]:
    """(url, query, body) triples; body is bytes (raw) or a JSON-able value."""
    params = op.get("parameters", [])
    path_params = [p for p in params if p["in"] == "path"]
    query_params = [p for p in params if p["in"] == "query"]

    def url_with(overrides: dict[str, str]) -> str:
        url = path
        for p in path_params:
            value = overrides.get(p["name"], real.get(p["name"], "1"))
            url = url.replace("{" + p["name"] + "}", quote(value, safe="%"))
        return url

    base_query = {p["name"]: "a" for p in query_params if p.get("required")}
    body_schema = (
        op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    )
    base_body = sample(body_schema, spec) if body_schema else None

    for p in path_params:
        for value in PATH_VALUES:
            yield url_with({p["name"]: value}), base_query, base_body
    for p in query_params:
        yield url_with({}), {k: v for k, v in base_query.items() if k != p["name"]}, base_body
        for value in NASTY:
            if value is not None and not isinstance(value, list | dict):
                yield url_with({}), {**base_query, p["name"]: str(value)}, base_body
    for raw in RAW_BODIES:
        yield url_with({}), base_query, raw
    if body_schema is None:
        return
    top = resolve(body_schema, spec)
    for name, prop in top.get("properties", {}).items():
        for value in NASTY:
            yield url_with({}), base_query, {**base_body, name: value}
        prop = resolve(prop, spec)
        if prop.get("type") in ("object", "array"):
            for value in NASTY:
                inner = {"k": value} if prop["type"] == "object" else [value]
                yield url_with({}), base_query, {**base_body, name: inner}
    for value in NASTY:
        yield url_with({}), base_query, {**base_body, "unexpected": value}


def otlp_status_problems(resp) -> list[str]:
    """The OTLP receiver answers errors as the protocol says: a google.rpc.Status (JSON for a
    JSON export), with a code and a message."""
    try:
        status = json_format.Parse(resp.text, status_pb2.Status())
    except json_format.ParseError as exc:
        return [f"not a google.rpc.Status: {exc}"]
    return [] if status.code and status.message else ["a Status without code or message"]


def test_garbage_never_gets_a_500_or_another_error_shape(client):
    run = create_run(client, experiment="fuzz")
    client.post(f"/api/v1/runs/{run['id']}/metrics", json={"key": "m", "value": 1})
    client.put(f"/api/v1/runs/{run['id']}/artifacts", params={"path": "a"}, content=b"x")
    real = {
        "run_id": run["id"],
        "experiment_id": str(run["experiment_id"]),
        "name": "fuzz",
        "key": "m",
        "key_id": "1",
    }
    spec = client.app.openapi()
    failures: list[str] = []
    sent = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for url, query, body in request_variants(path, method, op, spec, real):
                if isinstance(body, bytes):
                    kw: dict[str, Any] = {
                        "content": body,
                        "headers": {"content-type": "application/json"},
                    }
                elif body is None:
                    kw = {}
                else:
                    kw = {"json": body}
                resp = client.request(method.upper(), url, params=query, **kw)
                sent += 1
                problem = None
                if resp.status_code >= 500 and not (path == "/readyz" and resp.status_code == 503):
                    problem = "server error"
                elif resp.status_code >= 400 and path == "/v1/traces":
                    shape = otlp_status_problems(resp)
                elif resp.status_code >= 400:
                    try:
                        shape = error_shape_problems(resp.json())
                    except json.JSONDecodeError:
                        shape = ["not JSON"]
                    if shape:
                        problem = "; ".join(shape)
                if problem:
                    shown = body[:80] if isinstance(body, bytes) else json.dumps(body)[:200]
                    failures.append(
                        f"{method.upper()} {url[:120]} query={query} body={shown} -> "
                        f"{resp.status_code} {resp.text[:300]} ({problem})"
                    )
    assert sent > 1000
    assert failures == [], f"{len(failures)} of {sent} requests failed:\n" + "\n".join(
        failures[:40]
    )
