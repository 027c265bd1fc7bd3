"""SDK fixtures: a client on an embedded home, or on a live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from passerelle.sdk.client import Client
from passerelle.sdk.transport import InProcessTransport
from tests.conftest import LiveServer


@pytest.fixture
def embedded_client(app: FastAPI, settings) -> Iterator[Client]:
    """A client running the test's app in-process, as embedded mode does."""
    client = Client(home=settings.home, transport=InProcessTransport(app))
    yield client
    client.close()


@pytest.fixture(params=["embedded", "remote"])
def sdk_client(request: pytest.FixtureRequest, app: FastAPI, settings) -> Iterator[Client]:
    """The same tests through the in-process transport and through a real HTTP server."""
    if request.param == "embedded":
        client = Client(home=settings.home, transport=InProcessTransport(app))
        yield client
        client.close()
        return
    server = LiveServer(app).start()
    client = Client(url=server.url)
    try:
        yield client
    finally:
        client.close()
        server.stop()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder
