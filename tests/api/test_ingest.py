"""The batch ingestion hot path keeps every rule of the schema and names the bad item."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def run_id(client: TestClient) -> str:
    return client.post("/api/v1/runs", json={"experiment": "ingest"}).json()["id"]


@pytest.mark.parametrize(
    ("item", "field", "words"),
    [
        ({"key": "a", "value": "high"}, "metrics.1.value", "must be a number"),
        ({"key": "a", "value": True}, "metrics.1.value", "must be a number"),
        ({"key": "a"}, "metrics.1.value", "required"),
        ({"key": "", "value": 1}, "metrics.1.key", "1 to 250"),
        ({"key": "x" * 251, "value": 1}, "metrics.1.key", "1 to 250"),
        ({"key": "a\x01b", "value": 1}, "metrics.1.key", "control"),
        ({"key": "a", "value": 1, "step": 1.5}, "metrics.1.step", "integer"),
        ({"key": "a", "value": 1, "step": 2**63}, "metrics.1.step", "64 bits"),
        ({"key": "a", "value": 1, "timestamp": "now"}, "metrics.1.timestamp", "integer"),
        ({"key": "a", "value": 1, "colour": "red"}, "metrics.1.colour", "unexpected"),
        ("not an object", "metrics.1", "object"),
    ],
)
def test_bad_item_is_named_and_nothing_is_stored(client, run_id, item, field, words) -> None:
    body = {"metrics": [{"key": "good", "value": 1.0}, item]}
    r = client.post(f"/api/v1/runs/{run_id}/metrics/batch", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == field and words in err["message"]
    assert client.get(f"/api/v1/runs/{run_id}").json()["metrics"] == {}  # all or nothing


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "body"),
        (b"[]", "metrics"),
        (b'{"metrics": 3}', "metrics"),
        (b'{"metrics": [], "extra": 1}', "extra"),
    ],
)
def test_malformed_body(client, run_id, raw, field) -> None:
    r = client.post(
        f"/api/v1/runs/{run_id}/metrics/batch",
        content=raw,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == field


def test_batch_and_single_calls_store_the_same(client, run_id) -> None:
    values = [("loss", 0.5, 0), ("loss", 0.25, 1), ("nan", "NaN", 0), ("inf", "-Infinity", 3)]
    other = client.post("/api/v1/runs", json={"experiment": "ingest"}).json()["id"]
    client.post(
        f"/api/v1/runs/{run_id}/metrics/batch",
        json={"metrics": [{"key": k, "value": v, "step": s, "timestamp": 7} for k, v, s in values]},
    )
    for k, v, s in values:
        client.post(
            f"/api/v1/runs/{other}/metrics", json={"key": k, "value": v, "step": s, "timestamp": 7}
        )
    a = client.get(f"/api/v1/runs/{run_id}").json()["metrics"]
    b = client.get(f"/api/v1/runs/{other}").json()["metrics"]
    assert a == b == {"loss": 0.25, "nan": "NaN", "inf": "-Infinity"}
    hist = client.get(f"/api/v1/runs/{run_id}/metrics/loss/history").json()["points"]
    assert [(p["step"], p["value"], p["timestamp"]) for p in hist] == [(0, 0.5, 7), (1, 0.25, 7)]
    assert not math.isnan(hist[0]["value"])


def test_unknown_run(client) -> None:
    r = client.post(
        "/api/v1/runs/" + "f" * 32 + "/metrics/batch", json={"metrics": [{"key": "a", "value": 1}]}
    )
    assert r.status_code == 404 and r.json()["error"]["field"] == "run_id"


def test_only_the_upload_routes_skip_the_body_limit(app, client, run_id) -> None:
    """A route that merely contains 'artifacts' in its path is still limited."""
    limit = app.state.settings.max_request_bytes
    big = b"x" * (limit + 1)
    r = client.post(f"/api/v1/runs/{run_id}/artifacts/content", content=big)
    assert r.status_code == 413
    r = client.put(f"/api/v1/runs/{run_id}/artifacts", params={"path": "big.bin"}, content=big)
    assert r.status_code == 201 and r.json()["size"] == limit + 1
