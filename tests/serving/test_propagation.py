"""A change made through one server process is in force on another within a second.

Two ``passerelle server`` processes share the metadata database (PostgreSQL, or the SQLite file
of one embedded home) and the artifact folder. Endpoint ``churn`` serves version 1 with version 2
as a canary at weight 0. Through process A the canary goes to 100 %, then is rolled back; process
B is polled until every prediction it answers comes from the expected version.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving._servers import Server, clean_env, predict, prepare_home

LIMIT = 1.5  # one second promised, plus room for scheduling on a busy machine


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.kill_group()


def change_and_wait(
    a: httpx.Client, a_url: str, b: httpx.Client, b_url: str, change: dict, expect: int
) -> float:
    """Seconds from sending ``change`` to A until B answers with version ``expect``."""
    started = time.perf_counter()
    r = a.post(f"{a_url}/api/v1/endpoints/churn/deployments", json=change)
    assert r.status_code == 200, r.text
    while predict(b, b_url)["model_version"] != expect:
        assert time.perf_counter() - started < 10, f"{change} never reached process B"
    elapsed = time.perf_counter() - started
    # from then on, every prediction of B is on the new split
    assert {predict(b, b_url)["model_version"] for _ in range(30)} == {expect}
    return elapsed


def test_a_change_through_one_process_is_in_force_on_another_within_a_second(
    backend: str,
    database_url: str | None,
    tmp_path: Path,
    servers: list[Server],
    record_property,
) -> None:
    settings: dict[str, str] = {}
    if database_url is None:  # embedded: two processes on the same home
        homes = [tmp_path / "home"] * 2
    else:  # scale-out: own homes, one database, one artifact store
        homes = [tmp_path / "a", tmp_path / "b"]
        settings = {
            "PASSERELLE_DATABASE_URL": database_url,
            "PASSERELLE_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        }
    prepare_home(
        homes[0],
        versions=2,
        database_url=database_url,
        artifact_root=settings.get("PASSERELLE_ARTIFACT_ROOT"),
        changes=({"action": "canary", "version": 2, "weight": 0},),
    )
    for i, home in enumerate(homes):
        env = clean_env(PASSERELLE_HOME=str(home), **settings)
        servers.append(Server(env=env, logs=tmp_path / f"logs-{i}"))
    for server in servers:
        server.wait_url()
    for server in servers:
        server.wait_ready()  # both versions loaded: what is timed is the change alone
    a, b = servers
    assert a.url != b.url

    with httpx.Client(timeout=10) as http_a, httpx.Client(timeout=10) as http_b:
        assert {predict(http_b, b.url)["model_version"] for _ in range(20)} == {1}
        to_canary = change_and_wait(
            http_a, a.url, http_b, b.url, {"action": "weight", "weight": 100}, expect=2
        )
        rolled_back = change_and_wait(
            http_a, a.url, http_b, b.url, {"action": "rollback", "reason": "test"}, expect=1
        )
    record_property("canary_to_100_seconds", round(to_canary, 3))
    record_property("rollback_seconds", round(rolled_back, 3))
    print(f"[{backend}] in force on B after {to_canary:.3f} s (weight) / {rolled_back:.3f} s")
    assert to_canary < LIMIT
    assert rolled_back < LIMIT
    for server in servers:
        assert server.stop() in (0, -signal.SIGTERM), server.output()
