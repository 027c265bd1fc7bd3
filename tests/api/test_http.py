"""What every request goes through: probes, unknown routes, body size, characters PostgreSQL
cannot store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from passerelle.app import create_app
from passerelle.core.settings import Settings
from tests.api._helpers import assert_error, create_run, get_run


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


def test_readyz_checks_database_and_store(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ready", "checks": {"database": "ok", "object_store": "ok"}}


def test_readyz_reports_a_database_it_cannot_reach(tmp_path):
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    app = create_app(Settings(home=tmp_path / "h", _env_file=None))
    try:
        from passerelle.core.db import make_engine

        app.state.engine = make_engine(url)  # the database goes away after start-up
        with TestClient(app, raise_server_exceptions=False) as client:
            resp = client.get("/readyz")
        assert resp.status_code == 503
        body = resp.json()
        assert body["status"] == "not ready"
        assert body["checks"]["database"].startswith("error")
        assert body["checks"]["object_store"] == "ok"
    finally:
        app.state.engine.dispose()


def test_unknown_route_and_method_use_the_error_shape(client):
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(client.put("/api/v1/experiments"), 405, "method_not_allowed")


def test_malformed_json_is_422(client):
    resp = client.post(
        "/api/v1/experiments", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert_error(resp, 422, "invalid", contains="JSON")
    assert client.get("/api/v1/experiments").json()["experiments"] == []


@pytest.fixture
def small_client(tmp_path, database_url) -> Iterator[TestClient]:
    """An app accepting JSON bodies of at most 2000 bytes."""
    app = create_app(
        Settings(home=tmp_path / "h", database_url=database_url, max_request_bytes=2000)
    )
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client
    finally:
        app.state.engine.dispose()


def test_body_over_the_limit_is_413(small_client):
    run = create_run(small_client)
    url = f"/api/v1/runs/{run['id']}/params"
    resp = small_client.post(url, json={"params": {"big": "x" * 3000}})
    assert_error(resp, 413, "payload_too_large", field="body", contains="2000")
    assert get_run(small_client, run["id"])["params"] == {}
    assert small_client.post(url, json={"params": {"small": "x" * 100}}).status_code == 204


def test_chunked_body_over_the_limit_is_413_too(small_client):
    run = create_run(small_client)

    def chunks() -> Iterator[bytes]:
        yield b'{"params": {"big": "'
        for _ in range(30):
            yield b"x" * 100
        yield b'"}}'

    resp = small_client.post(
        f"/api/v1/runs/{run['id']}/params",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in resp.request.headers
    assert_error(resp, 413, "payload_too_large", field="body", contains="2000")
    assert get_run(small_client, run["id"])["params"] == {}


def test_chunked_body_within_the_limit_is_accepted(small_client):
    run = create_run(small_client)

    def chunks() -> Iterator[bytes]:
        yield b'{"params": '
        yield b'{"a": "1"}}'

    resp = small_client.post(
        f"/api/v1/runs/{run['id']}/params",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 204, resp.text
    assert get_run(small_client, run["id"])["params"] == {"a": "1"}


def test_artifact_uploads_are_not_held_to_the_json_limit(small_client):
    run = create_run(small_client)
    data = b"z" * 10_000
    resp = small_client.put(
        f"/api/v1/runs/{run['id']}/artifacts", params={"path": "big.bin"}, content=data
    )
    assert resp.status_code == 201, resp.text
    got = small_client.get(
        f"/api/v1/runs/{run['id']}/artifacts/content", params={"path": "big.bin"}
    )
    assert got.content == data


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/runs/{id}/params", {"params": {"k": "a\x00b"}}, "params.k"),
        ("/api/v1/runs/{id}/params", {"params": {"k\x00": "v"}}, "params.k\\u0000"),
        ("/api/v1/runs/{id}/tags", {"tags": {"t": "\x00"}}, "tags.t"),
        ("/api/v1/runs/{id}/metrics", {"key": "m\x00", "value": 1}, "key"),
        ("/api/v1/runs", {"experiment": "e\x00"}, "experiment"),
        ("/api/v1/experiments", {"name": "e", "tags": {"a": "b\x00"}}, "tags.a"),
        ("/api/v1/runs/search", {"filter": "params.k = '\x00'"}, "filter"),
        ("/api/v1/runs/search", {"experiments": ["ok", "x\x00"]}, "experiments.1"),
    ],
)
def test_nul_character_in_a_json_body_is_422(client, url, body, field):
    run = create_run(client, tags={"t": "kept"})
    resp = client.post(url.format(id=run["id"]), json=body)
    assert_error(resp, 422, "invalid", field=field, contains="NUL")
    assert get_run(client, run["id"]) == run
    assert [e["name"] for e in client.get("/api/v1/experiments").json()["experiments"]] == ["exp"]


def test_escaped_backslash_u0000_is_ordinary_text(client):
    run = create_run(client)
    text = "\\u0000 is how JSON writes NUL"
    resp = client.post(f"/api/v1/runs/{run['id']}/params", json={"params": {"doc": text}})
    assert resp.status_code == 204, resp.text
    assert get_run(client, run["id"])["params"] == {"doc": text}


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/runs/abc%00def", None, "url"),
        ("/api/v1/experiments/by-name/x%00y", None, "url"),
        ("/api/v1/experiments", {"project": "p\x00"}, "project"),
        ("/api/v1/runs/{id}/artifacts", {"prefix": "a\x00"}, "prefix"),
    ],
)
def test_nul_character_in_the_url_is_422(client, path, params, field):
    run = create_run(client)
    resp = client.get(path.format(id=run["id"]), params=params)
    assert_error(resp, 422, "invalid", field=field, contains="NUL")
