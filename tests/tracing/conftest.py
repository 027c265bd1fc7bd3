"""Tracing fixtures: an app with API keys required, a key bound to project ``chatbot``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from passerelle.app import create_app
from passerelle.core.auth import create_key, ensure_project
from passerelle.core.db import session_scope
from passerelle.core.settings import Settings
from tests.ui.conftest import browser_context, page  # noqa: F401 - Chromium for test_browser.py

ADMIN_KEY = "tracing-admin-key-long-enough-0"


@dataclass
class Keys:
    editor: str
    viewer: str

    def header(self, secret: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret or self.editor}"}


def make_keys(app: FastAPI) -> Keys:
    with session_scope(app.state.sessions) as session:
        project = ensure_project(session, "chatbot")
        _, editor = create_key(session, name="app", role="editor", project_id=project.id)
        _, viewer = create_key(session, name="read", role="viewer", project_id=project.id)
    return Keys(editor, viewer)


@pytest.fixture
def locked_app(tmp_path: Path, database_url: str | None) -> Iterator[FastAPI]:
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        auth="on",
        admin_key=ADMIN_KEY,
        _env_file=None,
    )
    app = create_app(settings)
    try:
        yield app
    finally:
        app.state.tracing.ingester.stop()
        app.state.engine.dispose()


@pytest.fixture
def keys(locked_app: FastAPI) -> Keys:
    return make_keys(locked_app)


@pytest.fixture
def http(locked_app: FastAPI, keys: Keys) -> Iterator[TestClient]:
    with TestClient(locked_app, raise_server_exceptions=False, headers=keys.header()) as c:
        yield c
