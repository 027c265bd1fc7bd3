"""``passerelle server --workers N``: several processes on one port, Nagle off, metrics added up.

One two-worker server runs for the module (its start is the slow part); the last test stops it.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli._helpers import make_invoke
from tests.serving._servers import ROW, Server, clean_env, predict, prepare_home

WORKERS = 2


@dataclass
class Cluster:
    server: Server
    home: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("workers")
    prepared = prepare_home(root / "home")
    server = Server(
        "--workers",
        str(WORKERS),
        env=clean_env(PASSERELLE_HOME=str(prepared.home)),
        logs=root / "logs",
    )
    try:
        server.wait_url()
        server.wait_ready(fresh_connections=8)
        yield Cluster(server, prepared.home)
    finally:
        if server.proc.poll() is None:
            server.kill_group()


def worker_pid(url: str) -> int:
    """The pid of the worker that accepted a new connection."""
    r = httpx.get(url + "/healthz", timeout=10)  # no client: a new connection each time
    assert r.status_code == 200
    return int(r.headers["x-process-id"])


def live_workers(cluster: Cluster, timeout: float = 60) -> set[int]:
    """Pids answering on fresh connections, once ``WORKERS`` of them are seen."""
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    while len(seen) < WORKERS:
        assert time.monotonic() < deadline, f"only workers {seen} answered"
        try:
            seen.add(worker_pid(cluster.server.url))
        except httpx.HTTPError:
            time.sleep(0.05)
    return seen


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def requests_total(url: str) -> float:
    r = httpx.get(url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    return sum(
        s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
        if s.name == "passerelle_serving_requests_total"
        and s.labels == {"endpoint": "churn", "version": "1"}
    )


def test_connections_are_spread_over_the_workers(cluster: Cluster) -> None:
    output = cluster.server.output()
    assert f"Workers    {WORKERS} processes" in output
    supervisor = cluster.server.proc.pid
    answered = Counter(worker_pid(cluster.server.url) for _ in range(60))
    assert len(answered) == WORKERS, answered
    assert supervisor not in answered  # the supervisor holds the port but serves nothing
    # the kernel balances new connections (SO_REUSEPORT): no worker is left idle
    assert min(answered.values()) >= 10, answered


def test_keep_alive_requests_do_not_wait_for_delayed_acks(cluster: Cluster) -> None:
    """With Nagle on, every keep-alive request after the first waits ~40 ms for an ACK."""
    url = cluster.server.url
    with httpx.Client(timeout=10) as http:
        assert predict(http, url)["model_version"] == 1  # opens the connection
        times = []
        for _ in range(50):
            started = time.perf_counter()
            predict(http, url)
            times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(f"--workers {WORKERS}: median keep-alive prediction {median * 1000:.2f} ms")
    assert median < 0.015, [round(t * 1000, 1) for t in times]
    assert sum(times) < 50 * 0.040 / 2


def test_metrics_add_up_across_workers(cluster: Cluster) -> None:
    url = cluster.server.url
    before = requests_total(url)
    for _ in range(30):  # a new connection each: both workers answer some
        r = httpx.post(f"{url}/v1/endpoints/churn/predict", json={"inputs": [ROW]}, timeout=10)
        assert r.status_code == 200
    # whichever worker answers /metrics reports the sum of all workers
    assert [requests_total(url) - before for _ in range(6)] == [30.0] * 6
    folder = cluster.home / "metrics" / str(cluster.server.proc.pid)
    writers = {int(p.stem.rsplit("_", 1)[1]) for p in folder.glob("counter_*.db")}
    assert live_workers(cluster) <= writers


def test_a_killed_worker_is_replaced(cluster: Cluster) -> None:
    before = live_workers(cluster)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 90
    while True:
        now = live_workers(cluster, timeout=max(1.0, deadline - time.monotonic()))
        if victim not in now:
            break
        assert time.monotonic() < deadline, "the killed worker was not replaced"
    assert len(now) == WORKERS and before - {victim} <= now


def test_sigterm_stops_every_worker_and_removes_the_metrics_folder(cluster: Cluster) -> None:
    workers = live_workers(cluster)
    folder = cluster.home / "metrics" / str(cluster.server.proc.pid)
    assert folder.is_dir()
    assert cluster.server.stop() == 0, cluster.server.output()
    assert not any(alive(pid) for pid in workers)
    assert not folder.exists()
    assert "Traceback" not in cluster.server.output()
    with pytest.raises(httpx.ConnectError):
        httpx.get(cluster.server.url + "/healthz", timeout=5)


@pytest.mark.parametrize("reuseport", [False, True], ids=["plain", "reuseport"])
def test_a_taken_port_is_refused(tmp_path: Path, reuseport: bool) -> None:
    """Even by a listener that set SO_REUSEPORT itself: sharing would be silent."""
    with socket.socket() as holder:
        if reuseport:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = make_invoke(tmp_path / "home")("server", "--workers", "2", "--port", str(port))
    assert result.exit_code == 2, result.output
    assert f"error: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "in use" in result.stderr.lower()
