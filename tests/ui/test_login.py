"""Signing in to the UI: redirects to the login form, the key cookie, and project access."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from passerelle.app import create_app
from passerelle.core import auth
from passerelle.core.auth import ANONYMOUS_ADMIN
from passerelle.core.db import session_scope
from passerelle.core.settings import Settings
from passerelle.core.web import COOKIE_NAME
from passerelle.tracking import service

ADMIN_KEY = "admin-key-for-tests-0123456789"


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[TestClient, str, str]]:
    """An app that requires keys, with an editor key for ``default`` and one for ``other``."""
    settings = Settings(home=tmp_path / "secured", auth="on", admin_key=ADMIN_KEY, _env_file=None)
    application = create_app(settings)
    with session_scope(application.state.sessions) as session:
        default = auth.ensure_project(session, "default")
        other = auth.ensure_project(session, "other")
        _, editor = auth.create_key(session, name="ana", role="editor", project_id=default.id)
        _, outsider = auth.create_key(session, name="bob", role="viewer", project_id=other.id)
        service.create_experiment(session, ANONYMOUS_ADMIN, "secured-exp")
    with TestClient(application, raise_server_exceptions=False) as c:
        yield c, editor, outsider
    application.state.engine.dispose()


def test_pages_redirect_to_login_when_no_key_is_presented(
    secured: tuple[TestClient, str, str],
) -> None:
    client, _, _ = secured
    response = client.get("/experiments/1?filter=x", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fexperiments%2F1%3Ffilter%3Dx"
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"
    # the API keeps its JSON error
    api = client.get("/api/v1/experiments")
    assert api.status_code == 401 and api.json()["error"]["code"] == "unauthenticated"
    form = client.get("/login?next=/experiments/1")
    assert form.status_code == 200
    assert '<input type="hidden" name="next" value="/experiments/1">' in form.text


def test_login_with_a_valid_key_sets_a_strict_http_only_cookie(
    secured: tuple[TestClient, str, str],
) -> None:
    client, editor, _ = secured
    response = client.post(
        "/login", data={"key": editor, "next": "/experiments/1"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/experiments/1"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}={editor};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    page = client.get("/experiments/1")
    assert page.status_code == 200
    assert "secured-exp" in page.text
    assert '<span class="who" title="role: editor">ana</span>' in page.text
    out = client.post("/logout", follow_redirects=False)
    assert out.status_code == 303
    assert f'{COOKIE_NAME}=""' in out.headers["set-cookie"]
    client.cookies.clear()
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_with_a_bad_key_shows_the_form_again(
    secured: tuple[TestClient, str, str],
) -> None:
    client, _, _ = secured
    response = client.post("/login", data={"key": "psl_wrong", "next": "/"})
    assert response.status_code == 401
    assert "invalid or revoked API key" in response.text
    assert "set-cookie" not in response.headers


def test_login_refuses_open_redirects_and_cross_site_posts(
    secured: tuple[TestClient, str, str],
) -> None:
    client, editor, _ = secured
    response = client.post(
        "/login", data={"key": editor, "next": "//evil.example/x"}, follow_redirects=False
    )
    assert response.headers["location"] == "/"
    client.cookies.clear()
    cross = client.post(
        "/login",
        data={"key": editor, "next": "/"},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert cross.status_code == 403
    assert "set-cookie" not in cross.headers


def test_a_key_of_another_project_gets_a_forbidden_page(
    secured: tuple[TestClient, str, str],
) -> None:
    client, _, outsider = secured
    client.cookies.set(COOKIE_NAME, outsider)
    response = client.get("/experiments/1")
    assert response.status_code == 403
    assert "does not grant access to this project" in response.text
    home = client.get("/")
    assert home.status_code == 200 and "secured-exp" not in home.text
