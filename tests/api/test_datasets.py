"""Datasets a run reads or writes: the snapshot must be in the store before it is referenced."""

from __future__ import annotations

import hashlib

from tests.api._helpers import assert_error, create_run, get_run

SCHEMA = [{"name": "age", "type": "int64"}, {"name": "churned", "type": "bool"}]


def dataset(**overrides):
    body = {
        "name": "customers",
        "digest": hashlib.sha256(b"customers-v1").hexdigest(),
        "num_rows": 1000,
        "num_columns": 2,
        "schema": SCHEMA,
        "source": "s3://lake/customers.parquet",
    }
    return {**body, **overrides}


def test_dataset_with_uploaded_snapshot(client):
    run = create_run(client)
    snapshot = b"PAR1 not really parquet PAR1"
    blob = client.put("/api/v1/blobs", content=snapshot)
    assert blob.status_code == 201, blob.text
    assert blob.json() == {"sha256": hashlib.sha256(snapshot).hexdigest(), "size": len(snapshot)}

    resp = client.post(
        f"/api/v1/runs/{run['id']}/datasets",
        json=dataset(snapshot_sha256=blob.json()["sha256"]),
    )
    assert resp.status_code == 201, resp.text
    logged = resp.json()
    assert logged["snapshot_size"] == len(snapshot)
    assert logged["schema"] == SCHEMA
    assert (logged["direction"], logged["context"]) == ("input", "training")

    listed = client.get(f"/api/v1/runs/{run['id']}/datasets").json()
    assert listed == [logged]
    assert get_run(client, run["id"])["lineage"]["data"] == [logged]


def test_snapshot_must_be_uploaded_first(client):
    run = create_run(client)
    missing = hashlib.sha256(b"never uploaded").hexdigest()
    resp = client.post(f"/api/v1/runs/{run['id']}/datasets", json=dataset(snapshot_sha256=missing))
    assert_error(resp, 422, "invalid", field="snapshot_sha256", contains="uploaded first")
    assert client.get(f"/api/v1/runs/{run['id']}/datasets").json() == []


def test_same_content_is_one_dataset_across_runs(client):
    a, b = create_run(client), create_run(client)
    first = client.post(f"/api/v1/runs/{a['id']}/datasets", json=dataset()).json()
    second = client.post(f"/api/v1/runs/{b['id']}/datasets", json=dataset()).json()
    again = client.post(f"/api/v1/runs/{a['id']}/datasets", json=dataset())
    assert again.status_code == 201
    assert first["id"] == second["id"] == again.json()["id"]
    assert len(client.get(f"/api/v1/runs/{a['id']}/datasets").json()) == 1

    changed = dataset(digest=hashlib.sha256(b"customers-v2").hexdigest())
    third = client.post(f"/api/v1/runs/{a['id']}/datasets", json=changed).json()
    assert third["id"] != first["id"]


def test_input_and_output_of_a_run(client):
    run = create_run(client)
    url = f"/api/v1/runs/{run['id']}/datasets"
    client.post(url, json=dataset())
    client.post(url, json=dataset(name="predictions", direction="output", context="inference"))
    listed = client.get(url).json()
    assert [(d["name"], d["direction"], d["context"]) for d in listed] == [
        ("customers", "input", "training"),
        ("predictions", "output", "inference"),
    ]


def test_bad_dataset_fields_are_422(client):
    run = create_run(client)
    url = f"/api/v1/runs/{run['id']}/datasets"
    assert_error(client.post(url, json=dataset(digest="abc")), 422, "invalid", field="digest")
    assert_error(client.post(url, json=dataset(num_rows=-1)), 422, "invalid", field="num_rows")
    assert_error(
        client.post(url, json=dataset(direction="sideways")), 422, "invalid", field="direction"
    )
    assert_error(
        client.post(url, json=dataset(snapshot_sha256="../../etc/passwd")),
        422,
        "invalid",
        field="snapshot_sha256",
    )
    assert client.get(url).json() == []
