"""An application instrumented only with the official OpenTelemetry SDK and its OTLP/HTTP
exporter, emitting GenAI spans, appears in passerelle with its model, token usage, computed cost
and nesting intact. The exporter sends to a real server on a loopback port."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from passerelle.tracing.costs import default_prices
from tests.conftest import LiveServer
from tests.tracing.conftest import Keys


@pytest.fixture
def server(locked_app) -> Iterator[LiveServer]:
    live = LiveServer(locked_app).start()
    yield live
    live.stop()


def run_instrumented_app(url: str, key: str) -> tuple[str, dict[str, str]]:
    """A small RAG app: a root span, a retrieval, a chat generation and a failing tool call."""
    exporter = OTLPSpanExporter(
        endpoint=f"{url}/v1/traces",
        headers={"Authorization": f"Bearer {key}"},
        compression=Compression.Gzip,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "rag-app"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("rag-app")
    ids = {}
    with tracer.start_as_current_span("answer question") as root:
        root.set_attribute("session.id", "conversation-7")
        root.set_attribute("user.id", "ada")
        root.set_attribute("input.value", "Which port does the server use?")
        with tracer.start_as_current_span("retrieve docs") as retrieve:
            retrieve.set_attribute("openinference.span.kind", "RETRIEVER")
            retrieve.set_attribute("retrieval.top_k", 3)
            ids["retrieve"] = format(retrieve.get_span_context().span_id, "016x")
        with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.provider.name", "openai")
            chat.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            chat.set_attribute("gen_ai.response.model", "gpt-4o-mini-2024-07-18")
            chat.set_attribute("gen_ai.request.temperature", 0.1)
            chat.set_attribute("gen_ai.usage.input_tokens", 1200)
            chat.set_attribute("gen_ai.usage.output_tokens", 300)
            chat.set_attribute("gen_ai.usage.cache_read.input_tokens", 200)
            chat.set_attribute(
                "gen_ai.input.messages",
                json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Port?"}]}]),
            )
            chat.add_event(
                "gen_ai.choice",
                {"index": 0, "finish_reason": "stop", "message": '{"content": "5050"}'},
            )
            ids["chat"] = format(chat.get_span_context().span_id, "016x")
            with tracer.start_as_current_span("lookup config") as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.record_exception(KeyError("port"))
                tool.set_status(Status(StatusCode.ERROR, "no such key"))
                ids["tool"] = format(tool.get_span_context().span_id, "016x")
        root.set_attribute("output.value", "5050")
        ids["root"] = format(root.get_span_context().span_id, "016x")
        trace_id = format(root.get_span_context().trace_id, "032x")
    assert provider.force_flush(30_000)
    provider.shutdown()
    return trace_id, ids


def test_a_genai_app_on_the_opentelemetry_sdk_appears_whole(server: LiveServer, keys: Keys):
    trace_id, ids = run_instrumented_app(server.url, keys.editor)

    r = httpx.get(f"{server.url}/api/v1/traces/{trace_id}", headers=keys.header(keys.viewer))
    assert r.status_code == 200, r.text
    found = r.json()
    trace = found["trace"]
    assert trace["name"] == "answer question"
    assert (trace["session_id"], trace["user_id"]) == ("conversation-7", "ada")
    assert (trace["input"], trace["output"]) == ("Which port does the server use?", "5050")
    assert trace["observation_count"] == 4 and trace["error_count"] == 1

    by_id = {o["id"]: o for o in found["observations"]}
    assert [(o["name"], o["depth"]) for o in found["observations"]] == [
        ("answer question", 0),
        ("retrieve docs", 1),
        ("chat gpt-4o-mini", 1),
        ("lookup config", 2),
    ]
    assert by_id[ids["retrieve"]]["parent_id"] == ids["root"]
    assert by_id[ids["tool"]]["parent_id"] == ids["chat"]
    assert by_id[ids["retrieve"]]["type"] == "retrieval"
    assert by_id[ids["retrieve"]]["metadata"]["retrieval.top_k"] == 3  # kept as metadata

    chat = by_id[ids["chat"]]
    assert chat["type"] == "generation"
    assert chat["model"] == "gpt-4o-mini-2024-07-18" and chat["provider"] == "openai"
    assert chat["model_parameters"] == {"temperature": 0.1}
    assert chat["usage"] == {"input": 1200, "output": 300, "cached": 200, "total": 1500}
    price = default_prices()["gpt-4o-mini"]
    expected = (1000 * price.input + 200 * price.cached_input + 300 * price.output) / 1e6
    assert chat["cost_source"] == "computed"
    assert chat["cost"] == pytest.approx(expected)
    assert trace["total_cost"] == pytest.approx(expected)
    assert json.loads(chat["input"])[0]["role"] == "user"
    assert json.loads(chat["output"])[0]["finish_reason"] == "stop"
    assert chat["metadata"]["resource"]["service.name"] == "rag-app"

    tool = by_id[ids["tool"]]
    assert (tool["type"], tool["level"], tool["status_message"]) == ("tool", "ERROR", "no such key")
    assert tool["metadata"]["exception"]["type"] == "KeyError"

    # The project comes from the key: the trace is in "chatbot", and its costs are totalled.
    costs = httpx.get(
        f"{server.url}/api/v1/tracing/costs",
        params={"group_by": "model", "project": "chatbot"},
        headers=keys.header(),
    ).json()["totals"]
    assert costs == [
        {
            "key": "gpt-4o-mini-2024-07-18",
            "cost": pytest.approx(expected),
            "input_tokens": 1200,
            "output_tokens": 300,
            "total_tokens": 1500,
            "count": 1,
        }
    ]
