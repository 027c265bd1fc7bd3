"""``passerelle keys`` and ``passerelle projects``: the operator's bootstrap, end to end."""

from __future__ import annotations

from pathlib import Path

from passerelle.app import create_app
from passerelle.core.settings import Settings
from tests.cli._helpers import Invoke, as_json, make_invoke
from tests.conftest import LiveServer


def test_first_key_is_created_embedded_then_used_against_a_server_with_auth(
    tmp_path: Path,
) -> None:
    """The documented bootstrap: create the key on the server's files, then call the server."""
    home = tmp_path / "home"
    embedded = make_invoke(home)
    key = as_json(embedded("keys", "create", "--role", "admin", "--name", "ops", "--json"))
    assert key["secret"].startswith("psl_") and key["role"] == "admin"

    app = create_app(Settings(home=home, auth="on", _env_file=None))
    server = LiveServer(app).start()
    try:
        remote = make_invoke(tmp_path / "unused-home")
        url = ["--url", server.url]

        missing = remote(*url, "experiments", "list")
        assert missing.exit_code == 1
        assert "error: missing API key" in missing.stderr
        assert "(field: authorization)" in missing.stderr

        wrong = remote(*url, "--api-key", "psl_" + "x" * 40, "experiments", "list")
        assert wrong.exit_code == 1
        assert "invalid or revoked API key" in wrong.stderr

        ok = remote(*url, "--api-key", key["secret"], "projects", "list", "--json")
        assert [p["name"] for p in as_json(ok)] == ["default"]
        env_key = remote(*url, "projects", "list", env={"PASSERELLE_API_KEY": key["secret"]})
        assert env_key.exit_code == 0 and "default" in env_key.stdout

        revoked = embedded("keys", "revoke", str(key["id"]))
        assert revoked.exit_code == 0, revoked.output
        assert f"revoked key {key['id']} 'ops'" in revoked.stdout
        after = remote(*url, "--api-key", key["secret"], "projects", "list")
        assert after.exit_code == 1
        assert "invalid or revoked API key" in after.stderr
    finally:
        server.stop()
        app.state.engine.dispose()
    assert not (tmp_path / "unused-home").exists()  # remote mode never touched a local store


def test_keys_create_prints_the_secret_once_with_a_warning(empty_cli: Invoke) -> None:
    created = empty_cli("keys", "create", "--role", "admin", "--name", "ci")
    assert created.exit_code == 0, created.output
    secret = next(w for w in created.stdout.split() if w.startswith("psl_"))
    assert len(secret) > 30
    assert "Store this secret now" in created.stderr
    assert "cannot be shown again" in created.stderr

    listed = empty_cli("keys", "list")
    assert listed.exit_code == 0, listed.output
    assert secret not in listed.stdout
    assert secret[:10] + "..." in listed.stdout
    assert "active" in listed.stdout
    keys = as_json(empty_cli("keys", "list", "--json"))
    assert [(k["name"], k["role"]) for k in keys] == [("ci", "admin")]
    assert "secret" not in keys[0]


def test_keys_for_a_project(empty_cli: Invoke) -> None:
    assert empty_cli("projects", "create", "fraud").exit_code == 0
    key = as_json(
        empty_cli(
            "keys", "create", "--role", "editor", "--project", "fraud", "--name", "ci", "--json"
        )
    )
    assert (key["role"], key["project"]) == ("editor", "fraud")
    assert "fraud" in empty_cli("keys", "list").stdout


def test_keys_create_errors_name_the_field(empty_cli: Invoke) -> None:
    no_project = empty_cli("keys", "create", "--role", "editor", "--name", "ci")
    assert no_project.exit_code == 1
    assert "needs a project" in no_project.stderr and "(field: project)" in no_project.stderr

    unknown = empty_cli("keys", "create", "--role", "viewer", "--project", "nope", "--name", "x")
    assert unknown.exit_code == 1
    assert "error: project 'nope' not found" in unknown.stderr

    bad_role = empty_cli("keys", "create", "--role", "root", "--name", "x")
    assert bad_role.exit_code == 2  # a usage error, caught before any request
    assert "root" in bad_role.output

    assert as_json(empty_cli("keys", "list", "--json")) == []  # nothing was stored


def test_keys_revoke_unknown_key(empty_cli: Invoke) -> None:
    result = empty_cli("keys", "revoke", "999")
    assert result.exit_code == 1
    assert "error: API key 999 not found" in result.stderr


def test_revoked_key_shows_as_revoked(empty_cli: Invoke) -> None:
    key = as_json(empty_cli("keys", "create", "--role", "admin", "--name", "old", "--json"))
    revoked = as_json(empty_cli("keys", "revoke", str(key["id"]), "--json"))
    assert revoked["revoked_at"] is not None
    assert "revoked" in empty_cli("keys", "list").stdout


def test_projects_create_and_list(empty_cli: Invoke) -> None:
    created = empty_cli("projects", "create", "fraud", "--description", "Card fraud models")
    assert created.exit_code == 0, created.output
    assert "created project 'fraud'" in created.stdout
    projects = as_json(empty_cli("projects", "list", "--json"))
    assert [(p["name"], p["description"]) for p in projects] == [
        ("default", ""),
        ("fraud", "Card fraud models"),
    ]
    assert "Card fraud models" in empty_cli("projects", "list").stdout


def test_projects_create_errors(empty_cli: Invoke) -> None:
    assert empty_cli("projects", "create", "fraud").exit_code == 0
    again = empty_cli("projects", "create", "fraud")
    assert again.exit_code == 1
    assert "error: project 'fraud' already exists" in again.stderr

    bad = empty_cli("projects", "create", "no spaces!")
    assert bad.exit_code == 1
    assert "(field: name)" in bad.stderr
    assert "Traceback" not in bad.output


def test_embedded_commands_ignore_the_servers_listening_settings(empty_cli: Invoke) -> None:
    """An operator whose shell says 0.0.0.0 and auth=on can still create the first key."""
    env = {"PASSERELLE_HOST": "0.0.0.0", "PASSERELLE_AUTH": "on"}
    result = empty_cli("keys", "create", "--role", "admin", "--name", "ops", env=env)
    assert result.exit_code == 0, result.output
    assert "psl_" in result.stdout
