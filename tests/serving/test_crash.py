"""Durability of the inference log: a server killed under load loses no acknowledged prediction.

A real ``passerelle server`` runs as a subprocess on an embedded home while client threads send
predictions and record every prediction id they receive. The server is then killed (SIGKILL) or
stopped (SIGTERM) mid-load; every id a client received must be in the inference log afterwards.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from passerelle.app import create_app
from passerelle.core.settings import Settings
from tests._load import AcknowledgedLoad
from tests.serving._servers import Prepared, Server, clean_env, prepare_home

# Compaction far apart: when the server dies, what it acknowledged is still in its spool, so
# the test exercises recovery rather than parts compacted before the kill.
ENV = {"PASSERELLE_LOG_COMPACT_INTERVAL": "600"}
MIN_ACKNOWLEDGED = 300


class Load(AcknowledgedLoad):
    """Client threads sending one- to three-row predictions until told to stop or cut off."""

    what = "predictions"

    def __init__(self, url: str, threads: int = 4) -> None:
        super().__init__(url, threads)
        self.refused: list[int] = []

    def _run(self, worker: int) -> None:
        with httpx.Client(timeout=30) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                rows = [
                    {"age": 20 + (n + i) % 50, "income": 40.0 + worker + i}
                    for i in range(n % 3 + 1)
                ]
                try:
                    r = http.post(f"{self.url}/v1/endpoints/churn/predict", json={"inputs": rows})
                except httpx.HTTPError:
                    return  # the server is gone: nothing more is acknowledged
                if r.status_code == 200:
                    self.acknowledged.extend(r.json()["prediction_ids"])
                else:
                    self.refused.append(r.status_code)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """A home with model ``churn`` registered and deployed, copied by each test."""
    return prepare_home(tmp_path_factory.mktemp("crash") / "home")


@pytest.fixture
def home(template: Prepared, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(template.home, home)
    return home


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.kill_group()


def start(home: Path, tmp_path: Path, servers: list[Server], *, ready: bool = True) -> Server:
    server = Server(env=clean_env(PASSERELLE_HOME=str(home), **ENV), logs=tmp_path / "logs")
    servers.append(server)
    server.wait_url()
    if ready:  # the deployed version is loaded: predictions are answered at once
        server.wait_ready()
    return server


def spooled(home: Path) -> list[Path]:
    folder = home / "spool" / "inference"
    return [p for p in folder.glob("inference-*") if p.stat().st_size > 0]


def test_sigkill_under_load_loses_no_acknowledged_prediction(
    home: Path, tmp_path: Path, servers: list[Server]
) -> None:
    server = start(home, tmp_path, servers)
    load = Load(server.url).start()
    load.wait_for(MIN_ACKNOWLEDGED)
    server.signal(signal.SIGKILL)  # mid-load: threads are sending as it dies
    assert server.proc.wait(10) == -signal.SIGKILL
    load.finish()
    acknowledged = set(load.acknowledged)
    assert len(acknowledged) == len(load.acknowledged) >= MIN_ACKNOWLEDGED
    assert load.refused == []
    left = spooled(home)
    assert left, "the killed server left nothing to recover: the test would prove nothing"

    restarted = start(home, tmp_path, servers, ready=False)  # reading the log needs no model
    assert not any(p.exists() for p in left), "the restarted server did not recover the spool"
    r = httpx.get(f"{restarted.url}/api/v1/endpoints/churn/log", params={"limit": 100_000})
    assert r.status_code == 200, r.text
    logged = [row["prediction_id"] for row in r.json()["rows"]]
    assert len(logged) == len(set(logged)), "a recovered prediction was logged twice"
    missing = acknowledged - set(logged)
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged ids lost"
    assert {row["version"] for row in r.json()["rows"]} == {1}
    assert restarted.stop() in (0, -signal.SIGTERM)


def test_sigterm_under_load_compacts_the_spool_and_loses_nothing(
    home: Path, tmp_path: Path, servers: list[Server]
) -> None:
    server = start(home, tmp_path, servers)
    load = Load(server.url).start()
    load.wait_for(MIN_ACKNOWLEDGED)
    assert spooled(home), "nothing spooled before the stop: the test would prove nothing"
    code = server.stop()  # while the load runs
    load.finish()
    assert code in (0, -signal.SIGTERM), server.output()
    assert "Traceback" not in server.output()
    assert spooled(home) == [], "a graceful stop left predictions in the spool"
    acknowledged = set(load.acknowledged)
    assert len(acknowledged) >= MIN_ACKNOWLEDGED

    app = create_app(Settings(home=home, _env_file=None))
    try:
        with TestClient(app) as http:
            rows = http.get("/api/v1/endpoints/churn/log", params={"limit": 100_000}).json()
    finally:
        app.state.engine.dispose()
    logged = {row["prediction_id"] for row in rows["rows"]}
    missing = acknowledged - logged
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged ids lost"
