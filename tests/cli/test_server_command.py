"""``passerelle server``: a real process on a free port, and every way it refuses to start."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from passerelle.cli.server import base_url, startup_panel
from passerelle.core.settings import Settings
from tests.cli._helpers import clean_env, make_invoke
from tests.conftest import free_port

STARTUP_TIMEOUT = 60
UI_LINE = re.compile(r"UI\s+(http://\S+)")


class ServerProcess:
    """``python -m passerelle.cli.main server ...`` with its output read line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "passerelle.cli.main", "server", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or clean_env(),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for_ui_url(self) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.stdout.append(line)
            if match := UI_LINE.search(line):
                return match.group(1)
        err = self.proc.stderr.read() if self.proc.poll() is not None else ""  # type: ignore[union-attr]
        raise AssertionError(f"no UI URL printed:\n{''.join(self.stdout)}\n{err}")

    def output(self) -> str:
        """Everything printed so far."""
        while True:
            try:
                self.stdout.append(self.lines.get_nowait())
            except queue.Empty:
                return "".join(self.stdout)

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


@pytest.fixture
def server_process() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def test_server_starts_prints_its_url_and_serves(
    tmp_path: Path, server_process: list[ServerProcess]
) -> None:
    port = free_port()
    home = tmp_path / "home"
    server = ServerProcess("--port", str(port), "--home", str(home))
    server_process.append(server)

    url = server.wait_for_ui_url()
    assert url == f"http://127.0.0.1:{port}/"
    health = httpx.get(url + "healthz", timeout=10)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert httpx.get(url + "docs", timeout=10).status_code == 200
    ui = httpx.get(url, timeout=10)
    assert ui.status_code == 200 and "text/html" in ui.headers["content-type"]

    printed = server.output()
    assert f"http://127.0.0.1:{port}/docs" in printed
    assert str(home.resolve()) in printed
    assert "off: loopback only" in printed
    assert (home / "passerelle.db").is_file()

    code, err = server.stop()
    assert code in (0, -signal.SIGTERM), err
    assert "Traceback" not in err


def test_server_on_port_0_prints_the_port_it_got(
    tmp_path: Path, server_process: list[ServerProcess]
) -> None:
    server = ServerProcess("--port", "0", env=clean_env(PASSERELLE_HOME=str(tmp_path / "h")))
    server_process.append(server)
    url = server.wait_for_ui_url()
    port = int(re.fullmatch(r"http://127\.0\.0\.1:(\d+)/", url).group(1))  # type: ignore[union-attr]
    assert port > 0
    assert httpx.get(url + "healthz", timeout=10).json() == {"status": "ok"}


def test_server_on_a_public_address_without_keys_exits_2_with_the_reason(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "passerelle.cli.main", "server", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env=clean_env(PASSERELLE_HOME=str(tmp_path / "home")),
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: refusing to listen on 0.0.0.0 without API keys")
    assert "passerelle keys create" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "http://" not in proc.stdout  # no URL for a server that is not running


def test_auth_off_on_a_public_address_is_refused(tmp_path: Path) -> None:
    cli = make_invoke(tmp_path / "home")
    result = cli("server", "--host", "0.0.0.0", env={"PASSERELLE_AUTH": "off"})
    assert result.exit_code == 2
    assert "PASSERELLE_AUTH=off" in result.stderr
    assert "loopback" in result.stderr


def test_flags_override_the_environment(tmp_path: Path) -> None:
    """PASSERELLE_HOST says loopback, the flag says 0.0.0.0: the flag wins, so it is refused."""
    cli = make_invoke(tmp_path / "home")
    env = {"PASSERELLE_HOST": "127.0.0.1"}
    result = cli("server", "--host", "0.0.0.0", env=env)
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr


def test_a_taken_port_exits_2_with_the_reason(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = make_invoke(tmp_path / "home")("server", "--port", str(port))
    assert result.exit_code == 2
    assert f"error: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "in use" in result.stderr.lower()


def test_invalid_settings_exit_2_naming_the_variable(tmp_path: Path) -> None:
    cli = make_invoke(tmp_path / "home")
    bad_port = cli("server", env={"PASSERELLE_PORT": "eighty"})
    assert bad_port.exit_code == 2
    assert "error: invalid configuration: PASSERELLE_PORT" in bad_port.stderr

    weak_key = cli("server", env={"PASSERELLE_ADMIN_KEY": "short"})
    assert weak_key.exit_code == 2
    assert "at least 24 characters" in weak_key.stderr
    assert "short" not in weak_key.stderr.replace("shorter", "")  # the secret is not echoed


def test_an_unreachable_database_exits_2_without_its_password(tmp_path: Path) -> None:
    cli = make_invoke(tmp_path / "home")
    url = f"postgresql+psycopg://ops:hunter2-secret@127.0.0.1:{free_port()}/passerelle"
    result = cli("server", env={"PASSERELLE_DATABASE_URL": url})
    assert result.exit_code == 2
    assert "error: cannot open the metadata database postgresql+psycopg://ops:***@" in (
        result.stderr
    )
    assert "hunter2" not in result.output
    assert "Traceback" not in result.output


def test_url_and_panel_helpers() -> None:
    assert base_url("127.0.0.1", 5050) == "http://127.0.0.1:5050"
    assert base_url("::1", 8080) == "http://[::1]:8080"
    assert base_url("[::1]", 8080) == "http://[::1]:8080"

    from rich.console import Console

    console = Console(width=120, record=True, color_system=None)
    settings = Settings(
        host="0.0.0.0",
        port=8080,
        home=Path("/srv/p"),
        admin_key="k" * 30,
        database_url="postgresql+psycopg://u:pw-secret@db/p",
        _env_file=None,
    )
    console.print(startup_panel(settings, 8080))
    text = console.export_text()
    assert "http://0.0.0.0:8080/" in text and "http://0.0.0.0:8080/docs" in text
    assert "on: every request needs an API key" in text
    assert "every address of this machine" in text
    assert "pw-secret" not in text and "u:***@db" in text
