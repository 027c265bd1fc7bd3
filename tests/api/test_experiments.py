"""Experiments: create, list, read by id and by name."""

from __future__ import annotations

import pytest

from tests.api._helpers import assert_error, create_run


def test_create_and_read_experiment(client):
    resp = client.post(
        "/api/v1/experiments",
        json={"name": "churn", "description": "monthly churn", "tags": {"team": "growth"}},
    )
    assert resp.status_code == 201, resp.text
    exp = resp.json()
    assert exp["name"] == "churn"
    assert exp["project"] == "default"
    assert exp["description"] == "monthly churn"
    assert exp["tags"] == {"team": "growth"}
    assert exp["lifecycle_stage"] == "active"
    assert exp["run_count"] == 0

    by_id = client.get(f"/api/v1/experiments/{exp['id']}").json()
    by_name = client.get("/api/v1/experiments/by-name/churn").json()
    assert by_id == by_name
    assert by_id["id"] == exp["id"]
    assert by_id["tags"] == {"team": "growth"}


def test_list_experiments_counts_runs_and_filters_by_project(client):
    a = client.post("/api/v1/experiments", json={"name": "a"}).json()
    client.post("/api/v1/experiments", json={"name": "b", "project": "other"})
    for _ in range(3):
        create_run(client, experiment_id=a["id"])

    listed = client.get("/api/v1/experiments").json()["experiments"]
    counts = {(e["project"], e["name"]): e["run_count"] for e in listed}
    assert counts == {("default", "a"): 3, ("other", "b"): 0}
    # the experiment with the latest run comes first
    assert listed[0]["name"] == "a"
    assert listed[0]["last_run_at"] is not None

    only_other = client.get("/api/v1/experiments", params={"project": "other"}).json()
    assert [e["name"] for e in only_other["experiments"]] == ["b"]


def test_duplicate_experiment_is_a_conflict_and_keeps_the_first(client):
    first = client.post("/api/v1/experiments", json={"name": "dup", "description": "first"})
    assert first.status_code == 201
    again = client.post("/api/v1/experiments", json={"name": "dup", "description": "second"})
    assert_error(again, 409, "conflict", field="name", contains="dup")
    kept = client.get("/api/v1/experiments/by-name/dup").json()
    assert kept["description"] == "first"
    assert kept["id"] == first.json()["id"]


def test_same_name_in_two_projects_needs_the_project(client):
    one = client.post("/api/v1/experiments", json={"name": "x", "project": "p1"}).json()
    two = client.post("/api/v1/experiments", json={"name": "x", "project": "p2"}).json()
    assert one["id"] != two["id"]
    ambiguous = client.get("/api/v1/experiments/by-name/x")
    assert_error(ambiguous, 422, "invalid", field="project", contains="several projects")
    picked = client.get("/api/v1/experiments/by-name/x", params={"project": "p2"}).json()
    assert picked["id"] == two["id"]


def test_unknown_experiment_is_404(client):
    assert_error(client.get("/api/v1/experiments/424242"), 404, "not_found", field="experiment_id")
    assert_error(
        client.get("/api/v1/experiments/by-name/nope"), 404, "not_found", field="experiment"
    )
    resp = client.post("/api/v1/runs", json={"experiment_id": 424242})
    assert_error(resp, 404, "not_found", field="experiment_id")


def test_bad_experiment_bodies_are_422_naming_the_field(client):
    assert_error(client.post("/api/v1/experiments", json={}), 422, "invalid", field="name")
    assert_error(
        client.post("/api/v1/experiments", json={"name": ""}), 422, "invalid", field="name"
    )
    assert_error(
        client.post("/api/v1/experiments", json={"name": "e", "tags": {"k": 1}}),
        422,
        "invalid",
        field="tags.k",
    )
    assert_error(
        client.post("/api/v1/experiments", json={"name": "e", "surprise": True}),
        422,
        "invalid",
        field="surprise",
    )
    assert client.get("/api/v1/experiments").json()["experiments"] == []


@pytest.mark.parametrize("project", ["a b", "../up", "-dash", "é" * 201, "ok" * 101])
def test_projects_created_on_first_use_follow_the_naming_rule(client, project):
    for url, body in (
        ("/api/v1/experiments", {"name": "e", "project": project}),
        ("/api/v1/runs", {"experiment": "e", "project": project}),
    ):
        assert_error(client.post(url, json=body), 422, "invalid", field="project")
    assert [p["name"] for p in client.get("/api/v1/projects").json()] == ["default"]


def test_project_created_on_first_use(client):
    resp = client.post("/api/v1/runs", json={"experiment": "e", "project": "team-a.v2_x"})
    assert resp.status_code == 201, resp.text
    names = [p["name"] for p in client.get("/api/v1/projects").json()]
    assert names == ["default", "team-a.v2_x"]
