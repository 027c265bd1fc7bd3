"""What a pod of the production overlay runs, run here: the container's command and arguments
with the environment its ConfigMap and Secret give it, against PostgreSQL and an S3 server.

Only the addresses change (a loopback host and a free port instead of ``0.0.0.0:5050``, the test
database and bucket instead of the example ones); the database URL keeps the ConfigMap's shape
(no password in it). The probes' routes must answer without a key while every API request needs
one, since ``PASSERELLE_AUTH=on``.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests._postgres import PostgresServer, free_port
from tests._s3 import CREDENTIALS, MotoServer
from tests.deploy.test_manifests import SERVER_PORT, configmap_data, render, server

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def pod_environment(data: dict[str, str], home: Path) -> dict[str, str]:
    """The variables the container would see: the image's basics, the ConfigMap, the Secret."""
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(data)
    env.update(
        PASSERELLE_HOME=str(home), HOME=str(home), PYTHONUNBUFFERED="1", TMPDIR=str(home / "tmp")
    )
    (home / "tmp").mkdir(parents=True)
    return env


def wait_for(url: str, process: subprocess.Popen[str], seconds: float) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"the server exited with {process.returncode}:\n{output[-3000:]}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {seconds} s")


def test_the_pod_command_starts_a_server_its_probes_find_ready(
    postgres_server: PostgresServer, s3_server: MotoServer, tmp_path: Path
) -> None:
    objects = render("production")
    container = server(objects)["spec"]["template"]["spec"]["containers"][0]
    env = pod_environment(configmap_data(objects), tmp_path / "home")

    database = postgres_server.create_database(empty=True)
    try:
        url = make_url(postgres_server.url(database))
        assert make_url(env["PASSERELLE_DATABASE_URL"]).password is None
        env["PASSERELLE_DATABASE_URL"] = url.set(password=None).render_as_string()
        if url.password:  # an external server with a password: libpq reads it from PGPASSWORD
            env["PGPASSWORD"] = url.password
        env["PASSERELLE_ARTIFACT_ROOT"] = s3_server.new_location().root
        env["PASSERELLE_S3_ENDPOINT_URL"] = s3_server.endpoint_url
        admin_key = secrets.token_hex(24)
        env.update(CREDENTIALS, PASSERELLE_ADMIN_KEY=admin_key)

        port = free_port()
        argv = [*container["command"], *container["args"]]
        argv = [{"0.0.0.0": "127.0.0.1", str(SERVER_PORT): str(port)}.get(arg, arg) for arg in argv]
        argv[0] = str(Path(sys.executable).with_name(argv[0]))  # the project's own entry point
        base = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            startup = container["startupProbe"]
            budget = startup["periodSeconds"] * startup["failureThreshold"]
            assert wait_for(base + startup["httpGet"]["path"], process, budget).status_code == 200
            ready = httpx.get(base + container["readinessProbe"]["httpGet"]["path"], timeout=10)
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": "ok", "object_store": "ok"}
            alive = httpx.get(base + container["livenessProbe"]["httpGet"]["path"], timeout=10)
            assert alive.status_code == 200
            # Auth is on: the API refuses a request without a key and takes the Secret's.
            assert httpx.get(base + "/api/v1/experiments", timeout=10).status_code == 401
            headers = {"Authorization": f"Bearer {admin_key}"}
            listed = httpx.get(base + "/api/v1/experiments", headers=headers, timeout=10)
            assert listed.status_code == 200, listed.text
        finally:
            process.terminate()  # SIGTERM, as the kubelet sends it
            try:
                code = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
                pytest.fail("the server did not stop within 30 s of SIGTERM")
        output = process.stdout.read() if process.stdout else ""
        # uvicorn shuts down gracefully, then re-raises the signal: -SIGTERM is a clean stop.
        assert code in (0, -signal.SIGTERM), f"exit code {code} after SIGTERM:\n{output[-3000:]}"
        assert "Application shutdown complete" in output, output[-3000:]
    finally:
        postgres_server.drop_database(database)
