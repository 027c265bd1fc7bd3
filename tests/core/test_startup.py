"""The server refuses to start in an unsafe configuration, and says why."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from passerelle.app import StartupRefused, create_app
from passerelle.core.settings import Settings
from tests.api._helpers import assert_error

ADMIN_KEY = "startup-admin-key-0123456789"


def make(settings: Settings, **changes) -> Settings:
    """The test's settings with some fields changed, validated like the real ones."""
    return Settings(
        home=settings.home, database_url=settings.database_url, _env_file=None, **changes
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org"])
def test_public_address_without_keys_is_refused(settings, host):
    with pytest.raises(StartupRefused) as info:
        create_app(make(settings, host=host))
    message = info.value.message
    assert host in message
    assert "without API keys" in message
    assert "PASSERELLE_ADMIN_KEY" in message
    assert "127.0.0.1" in message


@pytest.mark.parametrize("admin_key", [None, ADMIN_KEY])
def test_auth_off_on_a_public_address_is_refused(settings, admin_key):
    with pytest.raises(StartupRefused) as info:
        create_app(make(settings, host="0.0.0.0", auth="off", admin_key=admin_key))
    assert "PASSERELLE_AUTH=off" in info.value.message
    assert "loopback" in info.value.message


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_starts_without_keys(settings, host):
    app = create_app(make(settings, host=host))
    try:
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/api/v1/experiments").status_code == 200  # auth auto: open
    finally:
        app.state.engine.dispose()


def test_loopback_with_auth_off_starts(settings):
    app = create_app(make(settings, auth="off"))
    app.state.engine.dispose()


def test_public_address_with_an_admin_key_starts_and_requires_keys(settings):
    app = create_app(make(settings, host="0.0.0.0", admin_key=ADMIN_KEY))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert_error(client.get("/api/v1/experiments"), 401, "unauthenticated")
            ok = client.get("/api/v1/experiments", headers={"X-API-Key": ADMIN_KEY})
            assert ok.status_code == 200
    finally:
        app.state.engine.dispose()


def test_a_stored_key_is_enough_and_revoking_it_refuses_again(settings):
    local = create_app(settings)  # on loopback: create the first key without one
    try:
        with TestClient(local) as client:
            created = client.post("/api/v1/keys", json={"name": "ops", "role": "admin"}).json()
    finally:
        local.state.engine.dispose()

    public = create_app(make(settings, host="0.0.0.0"))
    try:
        with TestClient(public, raise_server_exceptions=False) as client:
            headers = {"Authorization": f"Bearer {created['secret']}"}
            assert client.get("/api/v1/keys", headers=headers).status_code == 200
            assert client.delete(f"/api/v1/keys/{created['id']}", headers=headers).is_success
    finally:
        public.state.engine.dispose()

    with pytest.raises(StartupRefused, match="without API keys"):
        create_app(make(settings, host="0.0.0.0"))


def test_auth_on_applies_on_loopback_too(settings):
    app = create_app(make(settings, auth="on", admin_key=ADMIN_KEY))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert_error(client.get("/api/v1/experiments"), 401, "unauthenticated")
    finally:
        app.state.engine.dispose()


def test_weak_admin_key_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="at least 24 characters"):
        Settings(home=tmp_path, admin_key="short", _env_file=None)


def test_settings_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PASSERELLE_HOST", "0.0.0.0")
    monkeypatch.setenv("PASSERELLE_HOME", str(tmp_path / "envhome"))
    monkeypatch.setenv("PASSERELLE_MAX_REQUEST_BYTES", "1234")
    settings = Settings(_env_file=None)
    assert settings.host == "0.0.0.0"
    assert settings.max_request_bytes == 1234
    with pytest.raises(StartupRefused):
        create_app(settings)
