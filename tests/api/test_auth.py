"""API keys and roles, with authentication switched on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from passerelle.app import create_app
from passerelle.core.models import ApiKey
from passerelle.core.settings import Settings
from tests.api._helpers import assert_error

ADMIN_KEY = "bootstrap-admin-key-0123456789"


@dataclass
class Keys:
    """A secured server with projects ``alpha`` and ``beta`` and one key per role on alpha."""

    client: TestClient
    admin: str
    editor: str
    viewer: str
    annotator: str
    beta_editor: str
    alpha_run: str
    beta_run: str

    def as_(self, key: str | None) -> dict[str, str]:
        return {} if key is None else {"Authorization": f"Bearer {key}"}

    def get(self, url: str, key: str | None, **kw):
        return self.client.get(url, headers=self.as_(key), **kw)

    def post(self, url: str, key: str | None, **kw):
        return self.client.post(url, headers=self.as_(key), **kw)


@pytest.fixture
def secure_app(tmp_path, database_url):
    app = create_app(
        Settings(
            home=tmp_path / "home",
            database_url=database_url,
            auth="on",
            admin_key=ADMIN_KEY,
            _env_file=None,
        )
    )
    yield app
    app.state.engine.dispose()


@pytest.fixture
def keys(secure_app) -> Iterator[Keys]:
    with TestClient(secure_app, raise_server_exceptions=False) as client:
        admin = {"X-API-Key": ADMIN_KEY}
        for name in ("alpha", "beta"):
            resp = client.post("/api/v1/projects", json={"name": name}, headers=admin)
            assert resp.status_code == 201, resp.text

        def key(name: str, role: str, project: str | None) -> str:
            body = {"name": name, "role": role, "project": project}
            resp = client.post("/api/v1/keys", json=body, headers=admin)
            assert resp.status_code == 201, resp.text
            return resp.json()["secret"]

        runs = {}
        for project in ("alpha", "beta"):
            resp = client.post(
                "/api/v1/runs", json={"experiment": "e", "project": project}, headers=admin
            )
            assert resp.status_code == 201, resp.text
            runs[project] = resp.json()["id"]
        yield Keys(
            client=client,
            admin=key("root", "admin", None),
            editor=key("ed", "editor", "alpha"),
            viewer=key("vi", "viewer", "alpha"),
            annotator=key("an", "annotator", "alpha"),
            beta_editor=key("bed", "editor", "beta"),
            alpha_run=runs["alpha"],
            beta_run=runs["beta"],
        )


def test_missing_key_is_401_everywhere_but_the_probes(keys):
    for url in ("/api/v1/experiments", f"/api/v1/runs/{keys.alpha_run}", "/api/v1/projects"):
        assert_error(keys.get(url, None), 401, "unauthenticated", field="authorization")
    resp = keys.post(f"/api/v1/runs/{keys.alpha_run}/metrics", None, json={"key": "m", "value": 1})
    assert_error(resp, 401, "unauthenticated", contains="missing API key")
    assert keys.get("/healthz", None).status_code == 200
    assert keys.get("/readyz", None).status_code == 200
    assert keys.get(f"/api/v1/runs/{keys.alpha_run}", keys.admin).json()["metrics"] == {}


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer psl_not-a-real-key"},
        {"X-API-Key": "psl_not-a-real-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": f"Bearer {ADMIN_KEY}x"},
    ],
)
def test_wrong_key_is_401(keys, headers):
    resp = keys.client.post("/api/v1/runs", json={"experiment": "e"}, headers=headers)
    assert_error(resp, 401, "unauthenticated", field="authorization", contains="invalid")
    listed = keys.get("/api/v1/experiments", keys.admin).json()["experiments"]
    assert sum(e["run_count"] for e in listed) == 2


def test_key_is_accepted_as_bearer_header_and_cookie(keys):
    url = f"/api/v1/runs/{keys.alpha_run}"
    assert keys.client.get(url, headers={"Authorization": f"Bearer {keys.viewer}"}).is_success
    assert keys.client.get(url, headers={"X-API-Key": keys.viewer}).is_success
    keys.client.cookies.set("passerelle_key", keys.viewer)
    try:
        assert keys.client.get(url).is_success
    finally:
        keys.client.cookies.clear()


def test_secret_is_shown_once_and_stored_hashed(keys, secure_app):
    listed = keys.get("/api/v1/keys", keys.admin).json()
    assert {k["name"] for k in listed} == {"root", "ed", "vi", "an", "bed"}
    assert all("secret" not in k for k in listed)
    with secure_app.state.sessions() as session:
        stored = session.scalars(select(ApiKey.secret_sha256)).all()
    for secret in (keys.admin, keys.editor, keys.viewer):
        assert secret not in stored
        assert all(secret not in row for row in stored)


def test_editor_reads_and_writes_its_project(keys):
    url = f"/api/v1/runs/{keys.alpha_run}"
    assert keys.post(f"{url}/params", keys.editor, json={"params": {"a": 1}}).status_code == 204
    assert (
        keys.post(f"{url}/metrics", keys.editor, json={"key": "m", "value": 1}).status_code == 204
    )
    resp = keys.post("/api/v1/runs", keys.editor, json={"experiment": "new", "project": "alpha"})
    assert resp.status_code == 201, resp.text
    run = keys.get(url, keys.editor).json()
    assert (run["params"], run["metrics"]) == ({"a": "1"}, {"m": 1.0})


def test_editor_key_on_another_project_is_403_and_changes_nothing(keys):
    beta = f"/api/v1/runs/{keys.beta_run}"
    before = keys.get(beta, keys.admin).json()
    attempts = [
        keys.get(beta, keys.editor),
        keys.post(f"{beta}/params", keys.editor, json={"params": {"a": 1}}),
        keys.post(f"{beta}/metrics", keys.editor, json={"key": "m", "value": 1}),
        keys.post(f"{beta}/tags", keys.editor, json={"tags": {"t": "x"}}),
        keys.client.put(
            f"{beta}/artifacts", params={"path": "a"}, content=b"x", headers=keys.as_(keys.editor)
        ),
        keys.client.patch(beta, json={"status": "KILLED"}, headers=keys.as_(keys.editor)),
        keys.client.delete(beta, headers=keys.as_(keys.editor)),
        keys.post("/api/v1/runs", keys.editor, json={"experiment": "e", "project": "beta"}),
        keys.post("/api/v1/experiments", keys.editor, json={"name": "x", "project": "beta"}),
        keys.post(
            "/api/v1/runs", keys.editor, json={"project": "alpha", "parent_run_id": keys.beta_run}
        ),
    ]
    for resp in attempts:
        assert_error(resp, 403, "forbidden")
    assert keys.get(beta, keys.admin).json() == before
    assert keys.get(f"{beta}/artifacts", keys.admin).json() == []


def test_keys_only_see_their_project(keys):
    names = {
        (e["project"], e["name"])
        for e in keys.get("/api/v1/experiments", keys.editor).json()["experiments"]
    }
    assert names == {("alpha", "e")}
    runs = keys.post("/api/v1/runs/search", keys.viewer, json={}).json()["runs"]
    assert [r["id"] for r in runs] == [keys.alpha_run]
    projects = keys.get("/api/v1/projects", keys.viewer).json()
    assert [p["name"] for p in projects] == ["alpha"]
    everything = keys.post("/api/v1/runs/search", keys.admin, json={}).json()["runs"]
    assert {r["id"] for r in everything} == {keys.alpha_run, keys.beta_run}


@pytest.mark.parametrize("role", ["viewer", "annotator"])
def test_read_only_roles_read_but_never_write(keys, role):
    key = getattr(keys, role)
    url = f"/api/v1/runs/{keys.alpha_run}"
    before = keys.get(url, key)
    assert before.status_code == 200
    attempts = [
        keys.post(f"{url}/params", key, json={"params": {"a": 1}}),
        keys.post(f"{url}/metrics", key, json={"key": "m", "value": 1}),
        keys.post(f"{url}/metrics/batch", key, json={"metrics": [{"key": "m", "value": 1}]}),
        keys.post(f"{url}/tags", key, json={"tags": {"t": "x"}}),
        keys.client.patch(url, json={"status": "FINISHED"}, headers=keys.as_(key)),
        keys.client.delete(url, headers=keys.as_(key)),
        keys.client.put(
            f"{url}/artifacts", params={"path": "a"}, content=b"x", headers=keys.as_(key)
        ),
        keys.client.put("/api/v1/blobs", content=b"x", headers=keys.as_(key)),
        keys.post("/api/v1/runs", key, json={"experiment": "e", "project": "alpha"}),
        keys.post("/api/v1/experiments", key, json={"name": "n", "project": "alpha"}),
        keys.post("/api/v1/projects", key, json={"name": "gamma"}),
        keys.post("/api/v1/keys", key, json={"name": "k", "role": "admin"}),
    ]
    for resp in attempts:
        err = assert_error(resp, 403, "forbidden")
        assert role in err["message"] or "project" in err["message"], err
    assert keys.get(url, key).json() == before.json()
    assert keys.get(f"{url}/artifacts", key).json() == []


def test_editor_cannot_administer(keys):
    assert_error(keys.post("/api/v1/projects", keys.editor, json={"name": "g"}), 403, "forbidden")
    resp = keys.post(
        "/api/v1/keys", keys.editor, json={"name": "k", "role": "editor", "project": "alpha"}
    )
    assert_error(resp, 403, "forbidden")
    assert_error(keys.get("/api/v1/keys", keys.editor), 403, "forbidden")
    assert len(keys.get("/api/v1/keys", keys.admin).json()) == 5


def test_revoked_key_stops_working(keys):
    listed = keys.get("/api/v1/keys", keys.admin).json()
    ed = next(k for k in listed if k["name"] == "ed")
    url = f"/api/v1/runs/{keys.alpha_run}"
    assert keys.get(url, keys.editor).status_code == 200
    resp = keys.client.delete(f"/api/v1/keys/{ed['id']}", headers=keys.as_(keys.admin))
    assert resp.status_code == 200
    assert resp.json()["revoked_at"] is not None
    assert_error(keys.get(url, keys.editor), 401, "unauthenticated", contains="revoked")
    assert keys.get(url, keys.viewer).status_code == 200
    assert_error(
        keys.client.delete("/api/v1/keys/999999", headers=keys.as_(keys.admin)), 404, "not_found"
    )


def test_admin_created_key_works_like_the_bootstrap_key(keys):
    resp = keys.post("/api/v1/projects", keys.admin, json={"name": "gamma"})
    assert resp.status_code == 201
    assert_error(
        keys.post("/api/v1/projects", keys.admin, json={"name": "gamma"}),
        409,
        "conflict",
        field="name",
    )


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "k", "role": "superuser", "project": "alpha"}, 422, "role"),
        ({"name": "k", "role": "editor"}, 422, "project"),
        ({"name": "k", "role": "editor", "project": "nope"}, 404, "project"),
        ({"name": "", "role": "admin"}, 422, "name"),
    ],
)
def test_bad_key_requests(keys, body, status, field):
    resp = keys.post("/api/v1/keys", keys.admin, json=body)
    assert_error(resp, status, field=field)
    assert len(keys.get("/api/v1/keys", keys.admin).json()) == 5


def test_bad_project_name_is_422(keys):
    for name in ("", "../x", "a b", "-lead"):
        resp = keys.post("/api/v1/projects", keys.admin, json={"name": name})
        assert_error(resp, 422, "invalid", field="name")


def test_admin_key_scoped_to_a_project_stays_in_it(keys):
    resp = keys.post(
        "/api/v1/keys", keys.admin, json={"name": "pa", "role": "admin", "project": "alpha"}
    )
    scoped = resp.json()["secret"]
    # inside its project it administers
    resp = keys.post(
        "/api/v1/keys", scoped, json={"name": "v2", "role": "viewer", "project": "alpha"}
    )
    assert resp.status_code == 201, resp.text
    assert {k["project"] for k in keys.get("/api/v1/keys", scoped).json()} == {"alpha"}
    # beyond it: no keys for every project or for another one, no new projects
    for body in (
        {"name": "root2", "role": "admin"},
        {"name": "b", "role": "editor", "project": "beta"},
    ):
        assert_error(keys.post("/api/v1/keys", scoped, json=body), 403, "forbidden")
    assert_error(keys.post("/api/v1/projects", scoped, json={"name": "g"}), 403, "forbidden")
    bed = next(k for k in keys.get("/api/v1/keys", keys.admin).json() if k["name"] == "bed")
    resp = keys.client.delete(f"/api/v1/keys/{bed['id']}", headers=keys.as_(scoped))
    assert_error(resp, 403, "forbidden")
    assert_error(keys.get(f"/api/v1/runs/{keys.beta_run}", scoped), 403, "forbidden")
    after = {k["name"]: k for k in keys.get("/api/v1/keys", keys.admin).json()}
    assert set(after) == {"root", "ed", "vi", "an", "bed", "pa", "v2"}
    assert after["bed"]["revoked_at"] is None
    assert [p["name"] for p in keys.get("/api/v1/projects", keys.admin).json()] == [
        "alpha",
        "beta",
        "default",
    ]
