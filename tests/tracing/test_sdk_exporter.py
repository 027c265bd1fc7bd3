"""The exporter: retries, refusals, a server that is down, a full queue, a burst, the exit.

Nothing here may raise into the traced code: the test functions call traced code while the
server misbehaves and check that every call returned, then read the exporter's counters.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

import passerelle as psl
from passerelle.sdk.tracing.exporter import SpanExporter
from passerelle.sdk.tracing.tracer import Tracer
from tests.tracing._sdk_servers import (  # noqa: F401 (fixtures)
    OtlpServer,
    exporter_fixture,
    free_port,
    otlp_fixture,
    tracer_fixture,
)


def emit(tracer: Tracer, n: int) -> None:
    @tracer.observe(name="leaf")
    def leaf(i: int) -> int:
        return i

    for i in range(n):
        leaf(i)


def test_retryable_answers_are_retried(otlp: OtlpServer) -> None:
    otlp.answers = [503, 429, 200]
    exporter = SpanExporter(otlp.url, flush_interval=60, initial_backoff=0.01)
    emit(Tracer(exporter), 5)
    assert exporter.flush()
    stats = exporter.stats()
    assert (stats.exported, stats.failed, stats.rejected, stats.queued) == (5, 0, 0, 0)
    assert [path for path, _ in otlp.requests] == ["/v1/traces"] * 3
    assert len(otlp.spans) == 5
    exporter.shutdown()


def test_refusals_are_counted_and_logged_once(
    otlp: OtlpServer, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = SpanExporter(otlp.url, flush_interval=60, max_batch_size=2)
    tracer = Tracer(exporter)
    otlp.answers = [400, 400]  # not retryable: two batches of two refused
    with caplog.at_level(logging.WARNING, logger="passerelle.tracing"):
        emit(tracer, 4)
        exporter.flush()
    assert exporter.stats().rejected == 4
    assert len(otlp.requests) == 2  # no retry of a 400
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].endswith("(400): bad request")  # Status decoded
    otlp.reject_spans = 1  # partial success: the server kept all but one
    emit(tracer, 2)  # one batch
    exporter.flush()
    stats = exporter.stats()
    assert (stats.exported, stats.rejected) == (1, 5)
    assert stats.lost == 5
    exporter.shutdown()


def test_server_down_nothing_raises_and_losses_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    exporter = SpanExporter(
        down, max_queue_size=50, flush_interval=0.01, max_retries=1, initial_backoff=0.01
    )
    tracer = Tracer(exporter)
    with caplog.at_level(logging.WARNING, logger="passerelle.tracing"):
        with tracer.trace("t") as t:
            emit(tracer, 500)
            t.score("user_feedback", 1)
        assert not exporter.flush(timeout=2) or exporter.stats().queued == 0
    stats = exporter.stats()
    assert stats.dropped > 0  # the queue filled while the server was away
    assert stats.exported == 0
    assert stats.dropped + stats.failed + stats.queued == 501
    drops = [r for r in caplog.records if "queue is full" in r.getMessage()]
    assert len(drops) == 1  # one warning, not one per span
    exporter.shutdown(timeout=1)
    assert exporter.stats().lost == 501 and exporter.stats().scores_lost == 1
    assert exporter.export.__self__ is exporter  # still callable after shutdown...
    with tracer.span("after"):
        pass  # ...and a span after shutdown is dropped quietly
    assert exporter.stats().dropped == stats.dropped + 1


def test_a_hanging_server_does_not_hold_the_application() -> None:
    # A server that accepts the connection and never answers: the application's calls return
    # while the exporter thread waits on its request.
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        exporter = SpanExporter(
            f"http://127.0.0.1:{sock.getsockname()[1]}",
            flush_interval=0.01,
            max_batch_size=10,
            timeout=30,
        )
        tracer = Tracer(exporter)
        emit(tracer, 2000)
        stats = exporter.stats()
        assert stats.dropped == 0 and stats.exported == 0
        assert stats.queued == 2000  # all held in memory, none sent, nobody blocked
        exporter.shutdown(timeout=0.2)  # returns although a request still hangs
        stats = exporter.stats()
        assert stats.failed >= 2000 - 10 and stats.failed + stats.queued == 2000
    finally:
        sock.close()


def test_the_byte_bound_drops_large_spans() -> None:
    exporter = SpanExporter(f"http://127.0.0.1:{free_port()}", max_queue_bytes=20_000)
    tracer = Tracer(exporter)

    @tracer.observe()
    def big(text: str) -> str:
        return text

    for _ in range(10):
        big("x" * 5_000)
    stats = exporter.stats()
    assert stats.dropped >= 6 and stats.dropped + stats.queued == 10
    exporter.shutdown(timeout=0)


def test_a_burst_of_10000_spans_is_kept_with_the_defaults(otlp: OtlpServer) -> None:
    exporter = SpanExporter(otlp.url)  # the defaults
    tracer = Tracer(exporter)
    emit(tracer, 10_000)
    assert exporter.flush(timeout=60)
    stats = exporter.stats()
    assert stats.dropped == 0 and stats.lost == 0
    assert stats.exported == 10_000
    assert len({s["span_id"] for s in otlp.spans}) == 10_000
    exporter.shutdown()


def test_a_burst_while_the_server_is_away_arrives_when_it_is_back() -> None:
    port = free_port()
    exporter = SpanExporter(f"http://127.0.0.1:{port}", initial_backoff=0.2, flush_interval=0.01)
    tracer = Tracer(exporter)
    emit(tracer, 10_000)  # the server is not up yet: the first attempts fail
    assert exporter.stats().dropped == 0
    server = OtlpServer(port).start()
    try:
        assert exporter.flush(timeout=60)
        assert exporter.stats().exported == 10_000
        assert len({s["span_id"] for s in server.spans}) == 10_000
    finally:
        exporter.shutdown()
        server.stop()


def test_scores_are_posted(tracer: Tracer, otlp: OtlpServer) -> None:
    with tracer.trace("ask") as t:
        with tracer.span("retrieve") as obs:
            obs.score("relevance", 0.5, source="judge", comment="half")
        t.score("user_feedback", "good", data_type="categorical")
    tracer.score("late", 1, trace_id=t.trace_id_hex, source="human")
    tracer.flush()
    assert [path for path, _ in otlp.requests].count("/api/v1/scores") >= 1
    by_name = {s["name"]: s for s in otlp.scores}
    assert by_name["relevance"] == {
        "trace_id": t.trace_id_hex,
        "observation_id": obs.id,
        "name": "relevance",
        "value": 0.5,
        "source": "judge",
        "comment": "half",
    }
    assert by_name["user_feedback"]["observation_id"] is None
    assert by_name["user_feedback"]["data_type"] == "categorical"
    assert by_name["late"]["source"] == "human"
    assert tracer.stats().scores_sent == 3


def test_spans_are_flushed_at_exit(otlp: OtlpServer) -> None:
    script = textwrap.dedent(
        f"""
        import passerelle as psl
        psl.set_default_tracer(psl.Tracer(psl.SpanExporter({otlp.url!r}, flush_interval=60)))

        @psl.observe()
        def step(i):
            return i

        with psl.trace("exiting"):
            for i in range(20):
                step(i)
        # no flush: the exit does it
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len(otlp.spans) == 21
    resource = otlp.resources[0]
    assert resource["telemetry.sdk.name"] == "passerelle"
    assert resource["service.name"] == "unknown_service:python"  # `python -c`


def test_exit_with_the_server_down_is_quiet() -> None:
    script = textwrap.dedent(
        f"""
        import passerelle as psl
        exporter = psl.SpanExporter("http://127.0.0.1:{free_port()}", shutdown_timeout=1)
        psl.set_default_tracer(psl.Tracer(exporter))
        with psl.trace("lost"):
            pass
        print("done")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "done"
    assert "Traceback" not in out.stderr


def test_the_embedded_transport_is_injectable() -> None:
    # Embedded mode hands the exporter an in-process ASGI app; any app speaking OTLP will do.
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from passerelle.sdk.transport import InProcessTransport

    received: list[str] = []

    async def traces(request: Request) -> Response:
        body = ExportTraceServiceRequest.FromString(await request.body())
        received.extend(s.name for s in body.resource_spans[0].scope_spans[0].spans)
        ok = ExportTraceServiceResponse().SerializeToString()
        return Response(ok, media_type="application/x-protobuf")

    app = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])

    exporter = SpanExporter(transport_factory=lambda: InProcessTransport(app))
    assert exporter.url is None
    tracer = Tracer(exporter)
    with tracer.trace("embedded"):
        pass
    assert tracer.flush()
    assert received == ["embedded"]
    assert tracer.stats().exported == 1
    tracer.shutdown()


def test_default_tracer_reads_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSERELLE_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("PASSERELLE_TRACING_SAMPLE_RATE", "0.25")
    monkeypatch.setenv("PASSERELLE_TRACING_RELEASE", "r-7")
    monkeypatch.setenv("PASSERELLE_TRACING_QUEUE_SIZE", "123")
    psl.set_default_tracer(None)
    from passerelle.sdk.tracing.tracer import default_tracer

    try:
        tracer = default_tracer()
        assert (tracer.sample_rate, tracer.release) == (0.25, "r-7")
        assert tracer.exporter.url == "http://127.0.0.1:1"
        assert tracer.exporter.max_queue_size == 123
        assert tracer.exporter.resource["passerelle.project"] == "default"
        tracer.shutdown(timeout=0)
    finally:
        psl.set_default_tracer(None)


def test_one_unencodable_span_does_not_cost_its_batch(tracer: Tracer, otlp: OtlpServer) -> None:
    with tracer.trace("kept"):
        with tracer.span("bad") as obs:
            obs.update(attributes={"text": "\ud800"})  # a lone surrogate: not UTF-8
        with tracer.span("fine"):
            pass
    tracer.flush()
    assert sorted(s["name"] for s in otlp.spans) == ["fine", "kept"]
    stats = tracer.stats()
    assert (stats.exported, stats.failed) == (2, 1)


def test_embedded_mode_sends_to_the_default_clients_app(tmp_path) -> None:
    from passerelle.core.settings import Settings
    from passerelle.sdk.client import Client

    client = Client(home=tmp_path / "home")
    psl.set_default_client(client)
    try:
        exporter = SpanExporter.from_settings(Settings(home=tmp_path / "home"))
        assert exporter.url is None  # no PASSERELLE_URL: embedded
        tracer = Tracer(exporter)
        with tracer.trace("embedded"):
            pass
        tracer.flush()
        # The spans went to the app the default client already runs, not to a second one.
        assert exporter.sender.client()._transport is client.transport
        stats = tracer.stats()
        assert (stats.failed, stats.exported, stats.rejected) == (0, 1, 0)
        traces = client.request("GET", "/api/v1/traces", params={"name": "embedded"})["traces"]
        assert len(traces) == 1  # stored and queryable in the embedded store
        tracer.shutdown()
    finally:
        psl.set_default_client(None)
        client.close()
