"""A server killed (SIGKILL) while spans are being exported loses no span it acknowledged.

A real ``passerelle server`` runs as a subprocess with ingestion far apart, so when it dies what
it acknowledged is still in its spool: the restarted server must recover it, once.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._load import AcknowledgedLoad
from tests.serving._servers import Server, clean_env
from tests.tracing._otlp import PROTOBUF, parse_response, request, span, span_id, trace_id

SPANS_PER_EXPORT = 20
MIN_ACKNOWLEDGED = 30  # exports, so 600 spans


class Exporters(AcknowledgedLoad):
    """Threads each sending one trace of ``SPANS_PER_EXPORT`` spans per export, recording the
    trace ids the server acknowledged in full."""

    what = "exports"

    def __init__(self, url: str, threads: int = 3) -> None:
        super().__init__(url, threads)
        self.other_answers: list[int] = []

    def _run(self, worker: int) -> None:
        with httpx.Client(timeout=30) as http:
            while not self.stop.is_set():
                t, root = trace_id(), span_id()
                spans = [span("root", t, root)]
                spans += [
                    span(f"step {i}", t, span_id(), root) for i in range(SPANS_PER_EXPORT - 1)
                ]
                body = request(*spans).SerializeToString()
                try:
                    r = http.post(f"{self.url}/v1/traces", content=body, headers=PROTOBUF)
                except httpx.HTTPError:
                    return  # the server is gone: nothing more is acknowledged
                if r.status_code == 200 and not parse_response(r.content).HasField(
                    "partial_success"
                ):
                    self.acknowledged.append(t.hex())
                else:
                    self.other_answers.append(r.status_code)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.kill_group()


def start(home: Path, tmp_path: Path, servers: list[Server], **env: str) -> Server:
    server = Server(env=clean_env(PASSERELLE_HOME=str(home), **env), logs=tmp_path / "logs")
    servers.append(server)
    server.wait_url()
    server.wait_ready()
    return server


def stored_traces(url: str) -> dict[str, int]:
    """Every stored trace id with its observation count."""
    found: dict[str, int] = {}
    with httpx.Client(timeout=60) as http:
        while True:
            page = http.get(
                f"{url}/api/v1/traces", params={"limit": 1000, "offset": len(found)}
            ).json()
            found.update({t["id"]: t["observation_count"] for t in page["traces"]})
            if len(found) >= page["total"] or not page["traces"]:
                return found


def test_sigkill_while_exporting_loses_no_acknowledged_span(tmp_path: Path, servers):
    home = tmp_path / "home"
    server = start(home, tmp_path, servers, PASSERELLE_TRACING_INGEST_INTERVAL="600")
    load = Exporters(server.url).start()
    load.wait_for(MIN_ACKNOWLEDGED, timeout=120)
    server.signal(signal.SIGKILL)  # mid-load: exports are in flight as it dies
    assert server.proc.wait(10) == -signal.SIGKILL
    load.finish()
    assert load.other_answers == []
    acknowledged = set(load.acknowledged)
    assert len(acknowledged) == len(load.acknowledged) >= MIN_ACKNOWLEDGED
    left = [p for p in (home / "spool" / "spans").glob("spans-*") if p.stat().st_size > 0]
    assert left, "the killed server left nothing to recover: the test would prove nothing"

    restarted = start(home, tmp_path, servers)
    stored = stored_traces(restarted.url)
    missing = acknowledged - set(stored)
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged traces lost"
    incomplete = {t: n for t, n in stored.items() if t in acknowledged and n != SPANS_PER_EXPORT}
    assert incomplete == {}, "spans lost or duplicated in recovered traces"
    assert not any(p.exists() for p in left), "the recovered spool files were not removed"
    assert restarted.stop() in (0, -signal.SIGTERM)
