"""The CLI against a real server on a free port: ``--url`` (or ``PASSERELLE_URL``) switches it
from the embedded store to HTTP, on every metadata backend the suite runs."""

from __future__ import annotations

from pathlib import Path

from passerelle.sdk.client import Client
from passerelle.sdk.runs import start_run
from tests.cli._helpers import as_json, make_invoke
from tests.conftest import LiveServer, free_port


def _log_runs(url: str) -> dict[str, str]:
    client = Client(url=url)
    ids = {}
    try:
        for name, f1 in (("remote-a", 0.7), ("remote-b", 0.9)):
            with start_run(
                experiment="remote", run_name=name, client=client, capture_lineage=False
            ) as run:
                run.log_params({"depth": 3})
                run.log_metrics({"f1": f1})
            ids[name] = run.id
    finally:
        client.close()
    return ids


def test_runs_list_with_url(live_server: LiveServer, tmp_path: Path) -> None:
    ids = _log_runs(live_server.url)
    cli = make_invoke(tmp_path / "local-home")

    table = cli("--url", live_server.url, "runs", "list", "remote")
    assert table.exit_code == 0, table.output
    assert "remote-a" in table.stdout and "remote-b" in table.stdout
    assert ids["remote-b"][:8] in table.stdout

    runs = as_json(
        cli("--url", live_server.url, "runs", "list", "remote", "-o", "metrics.f1 DESC", "--json")
    )
    assert [r["id"] for r in runs] == [ids["remote-b"], ids["remote-a"]]
    assert not (tmp_path / "local-home").exists()  # nothing was read or written locally


def test_url_from_the_environment_and_remote_errors(
    live_server: LiveServer, tmp_path: Path
) -> None:
    ids = _log_runs(live_server.url)
    cli = make_invoke(tmp_path / "local-home")
    env = {"PASSERELLE_URL": live_server.url}

    shown = as_json(cli("runs", "show", ids["remote-a"][:8], "--json", env=env))
    assert shown["id"] == ids["remote-a"] and shown["metrics"] == {"f1": 0.7}

    compared = as_json(cli("runs", "compare", ids["remote-a"], ids["remote-b"], "--json", env=env))
    assert {m["key"]: m["best"] for m in compared["metrics"]} == {"f1": [ids["remote-b"]]}

    unknown = cli("runs", "show", "0" * 32, env=env)
    assert unknown.exit_code == 1
    assert f"error: run '{'0' * 32}' not found" in unknown.stderr
    assert not (tmp_path / "local-home").exists()


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = make_invoke(tmp_path / "home")("--url", url, "experiments", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach {url}")
    assert "Traceback" not in result.output
