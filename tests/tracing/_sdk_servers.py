"""Small real HTTP servers for the tracing SDK's tests, on free loopback ports.

``OtlpServer`` speaks OTLP/HTTP the way the contract in docs/tracing-sdk.md describes it: it
decodes ``ExportTraceServiceRequest`` bodies with opentelemetry-proto, answers an
``ExportTraceServiceResponse`` (with ``partial_success`` when told to), and accepts scores on
``/api/v1/scores``. It can be told to answer given status codes first (503 then 200...).
``ChatServer`` speaks the OpenAI chat completions protocol, in JSON and in SSE streams.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from passerelle.sdk.tracing.exporter import SpanExporter
from passerelle.sdk.tracing.tracer import Tracer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


class _Server:
    """A ThreadingHTTPServer in a daemon thread; ``start()`` may reuse a chosen port."""

    handler: type[BaseHTTPRequestHandler]

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.httpd: ThreadingHTTPServer | None = None

    def start(self) -> _Server:
        server = self

        class Handler(self.handler):  # type: ignore[misc,valid-type]
            owner = server

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


# -- OTLP ------------------------------------------------------------------------------------------
class _OtlpHandler(BaseHTTPRequestHandler):
    owner: OtlpServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        owner = self.owner
        with owner.lock:
            owner.requests.append((self.path, dict(self.headers)))
            status = owner.answers.pop(0) if owner.answers else 200
        if status != 200:  # an OTLP server's refusal: a google.rpc.Status, in protobuf
            why = "unavailable" if status >= 500 else "bad request"
            refusal = status_pb2.Status(code=14 if status >= 500 else 3, message=why)
            return self._answer(status, refusal.SerializeToString(), "application/x-protobuf")
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            spans = list(_decode(request))
            with owner.lock:
                owner.spans.extend(spans)
                owner.resources.append(
                    {
                        kv.key: any_value(kv.value)
                        for kv in request.resource_spans[0].resource.attributes
                    }
                )
                reject = owner.reject_spans
            response = ExportTraceServiceResponse()
            if reject:
                response.partial_success.rejected_spans = reject
                response.partial_success.error_message = "span too large"
            return self._answer(200, response.SerializeToString(), "application/x-protobuf")
        if self.path == "/api/v1/scores":
            scores = json.loads(body)["scores"]
            with owner.lock:
                owner.scores.extend(scores)
            return self._answer(
                201, json.dumps({"accepted": len(scores)}).encode(), "application/json"
            )
        self._answer(404, b"not found")

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _decode(request: ExportTraceServiceRequest) -> Iterator[dict[str, Any]]:
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                yield {
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_id": span.parent_span_id.hex() or None,
                    "name": span.name,
                    "kind": span.kind,
                    "start": span.start_time_unix_nano,
                    "end": span.end_time_unix_nano,
                    "attributes": {kv.key: any_value(kv.value) for kv in span.attributes},
                    "status": (span.status.code, span.status.message),
                    "events": [
                        {
                            "name": e.name,
                            "attributes": {kv.key: any_value(kv.value) for kv in e.attributes},
                        }
                        for e in span.events
                    ],
                }


class OtlpServer(_Server):
    handler = _OtlpHandler

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.lock = threading.Lock()
        self.spans: list[dict[str, Any]] = []
        self.scores: list[dict[str, Any]] = []
        self.resources: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.answers: list[int] = []  # status codes to answer first, in order
        self.reject_spans = 0  # partial_success.rejected_spans of every answer

    def by_name(self) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in self.spans}

    def wait_for(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Spans received, once at least ``n`` arrived (the exporter sends in the background)."""
        deadline = time.monotonic() + timeout
        while len(self.spans) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.spans


# -- OpenAI chat completions -----------------------------------------------------------------------
class _ChatHandler(BaseHTTPRequestHandler):
    owner: ChatServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        owner = self.owner
        owner.requests.append(body)
        if owner.fail_with:
            error = {"error": {"message": "model overloaded", "type": "server_error"}}
            payload = json.dumps(error).encode()
            self.send_response(owner.fail_with)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        words = owner.reply.split(" ")
        usage = {
            "prompt_tokens": 12,
            "completion_tokens": len(words),
            "total_tokens": 12 + len(words),
            "prompt_tokens_details": {"cached_tokens": 4},
        }
        if not body.get("stream"):
            answer = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": owner.served_model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": owner.reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        chunks = [{"role": "assistant", "content": ""}] + [
            {"content": w if i == 0 else " " + w} for i, w in enumerate(words)
        ]
        for i, delta in enumerate(chunks):
            last = i == len(chunks) - 1
            self._event(
                {
                    "id": "chatcmpl-2",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": owner.served_model,
                    "choices": [
                        {"index": 0, "delta": delta, "finish_reason": "stop" if last else None}
                    ],
                }
            )
            if i == 0 and owner.first_token_delay:
                time.sleep(owner.first_token_delay)
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event(
                {
                    "id": "chatcmpl-2",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": owner.served_model,
                    "choices": [],
                    "usage": usage,
                }
            )
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def _event(self, data: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
        self.wfile.flush()


class ChatServer(_Server):
    handler = _ChatHandler

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.reply = "Paris is the capital of France"
        self.served_model = "gpt-test-2026-01-01"
        self.fail_with = 0
        self.first_token_delay = 0.0


# -- fixtures (imported by the test modules) -------------------------------------------------------
# Registered under ``name=`` so that test modules import them without shadowing their parameters.
@pytest.fixture(name="otlp")
def otlp_fixture() -> Iterator[OtlpServer]:
    server = OtlpServer().start()
    yield server
    server.stop()


@pytest.fixture(name="exporter")
def exporter_fixture(otlp: OtlpServer) -> Iterator[SpanExporter]:
    exp = SpanExporter(otlp.url, "test-key", flush_interval=0.05, initial_backoff=0.05)
    yield exp
    exp.shutdown(timeout=2)


@pytest.fixture(name="tracer")
def tracer_fixture(exporter: SpanExporter) -> Tracer:
    return Tracer(exporter)
