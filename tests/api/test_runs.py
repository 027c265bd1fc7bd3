"""Runs: create, read, update, delete, nesting and status transitions."""

from __future__ import annotations

import pytest

from tests.api._helpers import assert_error, create_run, get_run


def test_create_run_records_everything_given(client):
    run = create_run(
        client,
        experiment="churn",
        name="baseline",
        start_time=1_700_000_000_000,
        tags={"owner": "ana"},
        code={"commit": "abc123", "dirty": False},
        environment={"python": "3.11"},
        created_by="ana",
    )
    assert len(run["id"]) == 32
    assert run["experiment"] == "churn"
    assert run["name"] == "baseline"
    assert run["status"] == "RUNNING"
    assert run["start_time"] == 1_700_000_000_000
    assert run["end_time"] is None
    assert run["created_by"] == "ana"
    assert run["tags"] == {"owner": "ana"}
    assert run["lineage"]["code"] == {"commit": "abc123", "dirty": False}
    assert run["lineage"]["environment"] == {"python": "3.11"}
    assert get_run(client, run["id"]) == run


def test_run_without_experiment_goes_to_default_and_gets_a_name(client):
    run = create_run(client, experiment=None)
    assert run["experiment"] == "Default"
    assert run["name"].startswith("run-")


def test_runs_of_the_same_experiment_share_it(client):
    a = create_run(client, experiment="shared")
    b = create_run(client, experiment="shared")
    assert a["experiment_id"] == b["experiment_id"]
    assert a["id"] != b["id"]


@pytest.mark.parametrize("status", ["FINISHED", "FAILED", "KILLED"])
def test_terminal_status_sets_end_time(client, status):
    run = create_run(client)
    resp = client.patch(f"/api/v1/runs/{run['id']}", json={"status": status})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == status
    stored = get_run(client, run["id"])
    assert stored["status"] == status
    assert stored["end_time"] is not None
    assert stored["end_time"] >= stored["start_time"]


def test_explicit_end_time_and_rename(client):
    run = create_run(client, start_time=1_000)
    resp = client.patch(
        f"/api/v1/runs/{run['id']}", json={"status": "FINISHED", "end_time": 5_000, "name": "x"}
    )
    assert resp.status_code == 200, resp.text
    stored = get_run(client, run["id"])
    assert (stored["status"], stored["end_time"], stored["name"]) == ("FINISHED", 5_000, "x")


def test_end_time_before_start_is_refused_and_changes_nothing(client):
    run = create_run(client, start_time=10_000)
    resp = client.patch(
        f"/api/v1/runs/{run['id']}", json={"status": "FINISHED", "end_time": 5_000, "name": "y"}
    )
    assert_error(resp, 422, "invalid", field="end_time", contains="start_time")
    stored = get_run(client, run["id"])
    assert (stored["status"], stored["end_time"], stored["name"]) == ("RUNNING", None, run["name"])


def test_unknown_status_is_refused(client):
    run = create_run(client)
    resp = client.patch(f"/api/v1/runs/{run['id']}", json={"status": "DONE"})
    assert_error(resp, 422, "invalid", field="status")
    assert get_run(client, run["id"])["status"] == "RUNNING"


def test_nested_runs(client):
    parent = create_run(client, name="sweep")
    children = [
        create_run(client, name=f"fold-{i}", parent_run_id=parent["id"], start_time=1_000 + i)
        for i in range(3)
    ]
    create_run(client, name="unrelated")
    assert all(c["parent_run_id"] == parent["id"] for c in children)
    listed = client.get(f"/api/v1/runs/{parent['id']}/children").json()
    assert [r["name"] for r in listed["runs"]] == ["fold-0", "fold-1", "fold-2"]
    assert listed["next_page_token"] is None
    assert client.get(f"/api/v1/runs/{children[0]['id']}/children").json()["runs"] == []


def test_parent_must_exist(client):
    resp = client.post("/api/v1/runs", json={"experiment": "e", "parent_run_id": "f" * 32})
    assert_error(resp, 404, "not_found", field="run_id")
    assert client.post("/api/v1/runs/search", json={}).json()["runs"] == []


def test_parent_in_another_project_is_refused(client):
    parent = create_run(client, experiment="e", project="p1")
    resp = client.post(
        "/api/v1/runs", json={"experiment": "e", "project": "p2", "parent_run_id": parent["id"]}
    )
    assert_error(resp, 422, "invalid", field="parent_run_id")


def test_deleted_run_is_gone_everywhere(client):
    parent = create_run(client)
    child = create_run(client, parent_run_id=parent["id"])
    assert client.delete(f"/api/v1/runs/{child['id']}").status_code == 204
    assert_error(client.get(f"/api/v1/runs/{child['id']}"), 404, "not_found", field="run_id")
    assert client.get(f"/api/v1/runs/{parent['id']}/children").json()["runs"] == []
    found = client.post("/api/v1/runs/search", json={}).json()["runs"]
    assert [r["id"] for r in found] == [parent["id"]]
    assert_error(client.delete(f"/api/v1/runs/{child['id']}"), 404, "not_found")
    listed = client.get("/api/v1/experiments").json()["experiments"]
    assert listed[0]["run_count"] == 1


UNKNOWN = "0" * 32


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/runs/{id}", None),
        ("PATCH", "/api/v1/runs/{id}", {"status": "FINISHED"}),
        ("DELETE", "/api/v1/runs/{id}", None),
        ("GET", "/api/v1/runs/{id}/children", None),
        ("POST", "/api/v1/runs/{id}/params", {"params": {"a": 1}}),
        ("POST", "/api/v1/runs/{id}/tags", {"tags": {"a": "b"}}),
        ("DELETE", "/api/v1/runs/{id}/tags/a", None),
        ("POST", "/api/v1/runs/{id}/metrics", {"key": "m", "value": 1.0}),
        ("POST", "/api/v1/runs/{id}/metrics/batch", {"metrics": [{"key": "m", "value": 1}]}),
        ("GET", "/api/v1/runs/{id}/metrics/m/history", None),
        ("GET", "/api/v1/runs/{id}/datasets", None),
        ("GET", "/api/v1/runs/{id}/artifacts", None),
        ("GET", "/api/v1/runs/{id}/artifacts/content?path=a.txt", None),
    ],
)
def test_unknown_run_id_is_404_naming_the_run(client, method, path, body):
    existing = create_run(client)
    resp = client.request(method, path.format(id=UNKNOWN), json=body)
    assert_error(resp, 404, "not_found", field="run_id", contains=UNKNOWN)
    assert get_run(client, existing["id"]) == existing


def test_artifact_upload_to_unknown_run_is_404_and_stores_nothing(client, settings):
    resp = client.put(f"/api/v1/runs/{UNKNOWN}/artifacts", params={"path": "a"}, content=b"x")
    assert_error(resp, 404, "not_found", field="run_id")
    blobs = settings.home / "artifacts" / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


def test_a_refused_run_leaves_no_new_experiment_behind(client):
    existing = create_run(client, experiment="kept")
    resp = client.post("/api/v1/runs", json={"experiment": "fresh", "parent_run_id": "f" * 32})
    assert_error(resp, 404, "not_found", field="run_id")
    names = [e["name"] for e in client.get("/api/v1/experiments").json()["experiments"]]
    assert names == ["kept"]
    assert get_run(client, existing["id"]) == existing


def test_start_time_zero_is_kept(client):
    run = create_run(client, start_time=0)
    assert run["start_time"] == 0
    assert get_run(client, run["id"])["start_time"] == 0
