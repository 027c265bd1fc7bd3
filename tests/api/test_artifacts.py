"""Artifacts: upload, list, download, overwrite, and paths that must never reach the store."""

from __future__ import annotations

import hashlib

import pytest

from passerelle.core.settings import Settings
from tests.api._helpers import assert_error, create_run


def upload(client, run_id, path, data):
    return client.put(f"/api/v1/runs/{run_id}/artifacts", params={"path": path}, content=data)


def download(client, run_id, path):
    return client.get(f"/api/v1/runs/{run_id}/artifacts/content", params={"path": path})


def test_upload_list_download(client):
    run = create_run(client)
    data = b"weights" * 1000
    resp = upload(client, run["id"], "model/weights.bin", data)
    assert resp.status_code == 201, resp.text
    art = resp.json()
    assert art["path"] == "model/weights.bin"
    assert art["size"] == len(data)
    assert art["sha256"] == hashlib.sha256(data).hexdigest()

    listed = client.get(f"/api/v1/runs/{run['id']}/artifacts").json()
    assert listed == [art]
    got = download(client, run["id"], "model/weights.bin")
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["etag"] == f'"{art["sha256"]}"'
    assert int(got.headers["content-length"]) == len(data)


def test_overwrite_replaces_the_content(client):
    run = create_run(client)
    upload(client, run["id"], "report.txt", b"first")
    second = upload(client, run["id"], "report.txt", b"second version")
    assert second.status_code == 201
    assert download(client, run["id"], "report.txt").content == b"second version"
    listed = client.get(f"/api/v1/runs/{run['id']}/artifacts").json()
    assert [(a["path"], a["size"]) for a in listed] == [("report.txt", 14)]


def test_identical_content_is_stored_once(client, settings: Settings):
    a, b = create_run(client), create_run(client)
    upload(client, a["id"], "x.bin", b"same bytes")
    upload(client, b["id"], "y/x.bin", b"same bytes")
    blobs = [p for p in (settings.home / "artifacts" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1
    assert download(client, b["id"], "y/x.bin").content == b"same bytes"


def test_prefix_listing(client):
    run = create_run(client)
    for path in ["plots/a.png", "plots/b.png", "plots_old/c.png", "model.pkl", "plots/sub/d"]:
        assert upload(client, run["id"], path, path.encode()).status_code == 201
    url = f"/api/v1/runs/{run['id']}/artifacts"

    def paths(**params):
        return [a["path"] for a in client.get(url, params=params).json()]

    assert paths() == sorted(
        ["model.pkl", "plots/a.png", "plots/b.png", "plots/sub/d", "plots_old/c.png"]
    )
    assert paths(prefix="plots") == ["plots/a.png", "plots/b.png", "plots/sub/d"]
    assert paths(prefix="plots/") == ["plots/a.png", "plots/b.png", "plots/sub/d"]
    assert paths(prefix="plots/sub") == ["plots/sub/d"]
    assert paths(prefix="model.pkl") == ["model.pkl"]
    assert paths(prefix="nothing") == []


def test_prefix_wildcards_are_literal(client):
    run = create_run(client)
    upload(client, run["id"], "a_b/x", b"1")
    upload(client, run["id"], "axb/y", b"2")
    upload(client, run["id"], "a%/z", b"3")
    url = f"/api/v1/runs/{run['id']}/artifacts"
    assert [a["path"] for a in client.get(url, params={"prefix": "a_b"}).json()] == ["a_b/x"]
    assert [a["path"] for a in client.get(url, params={"prefix": "a%"}).json()] == ["a%/z"]


def test_empty_artifact(client):
    run = create_run(client)
    resp = upload(client, run["id"], "empty", b"")
    assert resp.status_code == 201
    assert resp.json()["size"] == 0
    assert download(client, run["id"], "empty").content == b""


def test_missing_artifact_is_404(client):
    run = create_run(client)
    assert_error(download(client, run["id"], "nope.txt"), 404, "not_found", field="path")


BAD_PATHS = [
    "../escape.txt",
    "a/../../escape.txt",
    "a/..",
    "..",
    "/etc/passwd",
    "a\\b.txt",
    "..\\..\\windows",
    "a//b",
    "a/",
    "./a",
    "a/./b",
    "",
    "a\x00b",
    "a\nb",
    "x" * 1001,
]


@pytest.mark.parametrize("path", BAD_PATHS, ids=repr)
def test_bad_artifact_paths_are_refused_before_storing(client, settings, path):
    run = create_run(client)
    assert upload(client, run["id"], "keep.txt", b"kept").status_code == 201
    resp = upload(client, run["id"], path, b"evil")
    assert_error(resp, 422, "invalid", field="path")
    listed = client.get(f"/api/v1/runs/{run['id']}/artifacts").json()
    assert [a["path"] for a in listed] == ["keep.txt"]
    assert download(client, run["id"], "keep.txt").content == b"kept"
    # the refused bytes never reached the store
    evil = hashlib.sha256(b"evil").hexdigest()
    assert not list((settings.home / "artifacts").rglob(evil))
    if path:
        assert_error(download(client, run["id"], path), 422, "invalid", field="path")


def test_artifact_over_the_size_limit_is_413_and_not_recorded(tmp_path, database_url):
    from fastapi.testclient import TestClient

    from passerelle.app import create_app

    app = create_app(
        Settings(home=tmp_path / "h", database_url=database_url, max_artifact_bytes=1000)
    )
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            run = create_run(client)
            assert upload(client, run["id"], "ok.bin", b"x" * 1000).status_code == 201
            resp = upload(client, run["id"], "big.bin", b"x" * 1001)
            assert_error(resp, 413, "payload_too_large", contains="1000")
            listed = client.get(f"/api/v1/runs/{run['id']}/artifacts").json()
            assert [a["path"] for a in listed] == ["ok.bin"]
            assert_error(client.put("/api/v1/blobs", content=b"y" * 5000), 413)
            leftovers = list((tmp_path / "h" / "artifacts" / "tmp").glob("*"))
            assert leftovers == []
    finally:
        app.state.engine.dispose()


def test_corrupted_artifact_is_never_served(client, settings):
    run = create_run(client)
    data = b"trusted model bytes"
    sha = upload(client, run["id"], "model.bin", data).json()["sha256"]
    blob = next((settings.home / "artifacts" / "blobs").rglob(sha))
    blob.write_bytes(b"tampered model byte")  # same length, different content
    resp = download(client, run["id"], "model.bin")
    assert_error(resp, 500, "integrity", contains=sha)
    assert b"tampered" not in resp.content
