"""Shared fixtures: real SQLite files and PostgreSQL databases, the app in-process, a live server.

Every test that builds an app runs once per metadata backend: ``[sqlite]`` on a file under the
test's temporary folder, ``[postgresql]`` on a fresh database of a throwaway cluster started once
per session. ``PASSERELLE_TEST_BACKENDS=sqlite`` (comma-separated) picks the backends to run;
``PASSERELLE_TEST_POSTGRES_URL`` points the PostgreSQL variant at an existing server instead of a
throwaway cluster (its user must be allowed to create databases); ``PG_BINDIR`` names the folder
of ``initdb`` and ``pg_ctl`` when they are not in a standard place. Without PostgreSQL the
``[postgresql]`` variants are skipped, saying how to install it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from passerelle.app import create_app
from passerelle.core.settings import Settings
from tests._postgres import (
    INSTALL_HINT,
    ExternalPostgres,
    PostgresCluster,
    PostgresServer,
    find_bindir,
)
from tests._s3 import CREDENTIALS, MotoServer, S3Location

KNOWN_BACKENDS = ("sqlite", "postgresql")


def selected_backends() -> list[str]:
    raw = os.environ.get("PASSERELLE_TEST_BACKENDS", ",".join(KNOWN_BACKENDS))
    chosen = [b.strip().lower() for b in raw.split(",") if b.strip()]
    unknown = sorted(set(chosen) - set(KNOWN_BACKENDS))
    if unknown or not chosen:
        raise pytest.UsageError(
            f"PASSERELLE_TEST_BACKENDS={raw!r}: choose among {', '.join(KNOWN_BACKENDS)}"
        )
    return [b for b in KNOWN_BACKENDS if b in chosen]


BACKEND_PARAMS = [
    pytest.param(b, id=b, marks=[pytest.mark.postgres] if b == "postgresql" else [])
    for b in selected_backends()
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def _hermetic_environment() -> Iterator[None]:
    """Settings read ``PASSERELLE_*`` variables: keep the developer's own out of the tests."""
    saved = {
        k: os.environ.pop(k)
        for k in list(os.environ)
        if k.startswith("PASSERELLE_") and not k.startswith("PASSERELLE_TEST_")
    }
    # Every app under test, in-process or in a child server, refuses database calls on its
    # event loop's thread: such a call once deadlocked an upload behind a pending commit.
    os.environ["PASSERELLE_STRICT_EVENT_LOOP"] = "1"
    yield
    os.environ.pop("PASSERELLE_STRICT_EVENT_LOOP", None)
    os.environ.update(saved)


# -- metadata database ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session: an existing one by URL, or a throwaway cluster."""
    external = os.environ.get("PASSERELLE_TEST_POSTGRES_URL")
    if external:
        server = ExternalPostgres(external)
        try:
            yield server
        finally:
            server.close()
        return
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(INSTALL_HINT)
    cluster = PostgresCluster(bindir).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@contextmanager
def _database(request: pytest.FixtureRequest, backend: str) -> Iterator[str | None]:
    if backend == "sqlite":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


def _build_app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings)
    try:
        yield application
    finally:
        application.state.engine.dispose()


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``: the metadata backend this test runs on."""
    return request.param


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str) -> Iterator[str | None]:
    """``None`` (SQLite): the embedded file under the test's home; else a fresh PostgreSQL db."""
    with _database(request, backend) as url:
        yield url


@pytest.fixture
def empty_database_url(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> Iterator[str]:
    """The URL of a database with no tables at all, for tests of the migrations themselves."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database(empty=True)
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url, _env_file=None)


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    yield from _build_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


# One app per test module and backend, for tests that only read what a module fixture wrote
# (many filter cases over the same runs): building it once keeps the PostgreSQL variant cheap.
@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def shared_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def shared_app(
    request: pytest.FixtureRequest, shared_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    with _database(request, shared_backend) as url:
        home = tmp_path_factory.mktemp("shared") / "home"
        yield from _build_app(Settings(home=home, database_url=url, _env_file=None))


@pytest.fixture(scope="module")
def shared_client(shared_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(shared_app, raise_server_exceptions=False) as c:
        yield c


# -- object store --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    """moto's S3 server, started on first use and shared by the session."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed: uv sync")
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> S3Location:
    """A fresh bucket on the S3 server, with the credentials in the environment."""
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    return s3_server.new_location()


# -- a real server -------------------------------------------------------------------------------
class LiveServer:
    """A real uvicorn server on a free loopback port, in a thread of the test process."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("live server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    server = LiveServer(app).start()
    yield server
    server.stop()
