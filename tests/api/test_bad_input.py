"""Input the database cannot hold is refused at the door with a 4xx, on every backend."""

from __future__ import annotations

import pytest

from tests.api._helpers import assert_error, create_run, get_run

HUGE = 10**20  # beyond a 64-bit integer column


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v1/runs", {"experiment": "e", "start_time": HUGE}, "start_time"),
        ("POST", "/api/v1/runs", {"experiment_id": HUGE}, "experiment_id"),
        ("PATCH", "/api/v1/runs/{id}", {"end_time": -HUGE}, "end_time"),
        ("POST", "/api/v1/runs/{id}/metrics", {"key": "m", "value": 1, "step": HUGE}, "step"),
        (
            "POST",
            "/api/v1/runs/{id}/metrics",
            {"key": "m", "value": 1, "timestamp": HUGE},
            "timestamp",
        ),
        ("POST", "/api/v1/runs/search", {"experiment_ids": [HUGE]}, "experiment_ids.0"),
        ("GET", f"/api/v1/experiments/{HUGE}", None, "experiment_id"),
        ("DELETE", f"/api/v1/keys/{HUGE}", None, "key_id"),
    ],
)
def test_integers_beyond_64_bits_are_422(client, method, path, body, field):
    run = create_run(client)
    resp = client.request(method, path.format(id=run["id"]), json=body)
    assert_error(resp, 422, "invalid", field=field)
    assert get_run(client, run["id"]) == run


def test_dataset_counts_beyond_their_columns_are_422(client):
    run = create_run(client)
    body = {
        "name": "d",
        "digest": "0" * 64,
        "num_rows": 2**63,
        "num_columns": 1,
        "schema": [],
    }
    url = f"/api/v1/runs/{run['id']}/datasets"
    assert_error(client.post(url, json=body), 422, "invalid", field="num_rows")
    body.update(num_rows=1, num_columns=2**31)
    assert_error(client.post(url, json=body), 422, "invalid", field="num_columns")
    assert client.get(url).json() == []


def test_largest_64_bit_values_are_stored(client):
    run = create_run(client, start_time=2**63 - 1)
    resp = client.post(
        f"/api/v1/runs/{run['id']}/metrics",
        json={"key": "m", "value": 1.5, "step": 2**63 - 1, "timestamp": -(2**63)},
    )
    assert resp.status_code == 204, resp.text
    point = client.get(f"/api/v1/runs/{run['id']}/metrics/m/history").json()["points"][0]
    assert (point["step"], point["timestamp"]) == (2**63 - 1, -(2**63))
    assert get_run(client, run["id"])["start_time"] == 2**63 - 1


def _deep(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels):
        value = {"d": value}
    return value


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"experiment": "e" * 501}, "experiment"),
        ({"experiment": "e", "code": {"commit": "abc", "n": 2**64}}, "code"),
        ({"experiment": "e", "environment": {"packages": [-(2**64)]}}, "environment"),
        ({"experiment": "e", "code": _deep(300)}, "code"),
    ],
)
def test_run_fields_the_server_could_not_send_back_are_422(client, body, field):
    resp = client.post("/api/v1/runs", json=body)
    assert_error(resp, 422, "invalid", field=field)
    assert client.post("/api/v1/runs/search", json={}).json()["runs"] == []


def test_deep_but_sendable_lineage_round_trips(client):
    run = create_run(client, code=_deep(200), environment={"n": 2**63 - 1})
    stored = get_run(client, run["id"])["lineage"]
    assert stored["code"] == _deep(200)
    assert stored["environment"] == {"n": 2**63 - 1}


def test_dataset_schema_the_server_could_not_send_back_is_422(client):
    run = create_run(client)
    body = {
        "name": "d",
        "digest": "0" * 64,
        "num_rows": 1,
        "num_columns": 1,
        "schema": [{"name": "x", "max": 2**70}],
    }
    resp = client.post(f"/api/v1/runs/{run['id']}/datasets", json=body)
    assert_error(resp, 422, "invalid", field="schema.0")
    assert client.get(f"/api/v1/runs/{run['id']}/datasets").json() == []
