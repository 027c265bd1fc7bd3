"""Mapping of the attribute conventions onto observations (pure logic, no app)."""

from __future__ import annotations

import json

import pytest

from passerelle.tracing.costs import Price, PriceTable, default_prices
from passerelle.tracing.mapping import map_request
from tests.tracing._otlp import request, span, span_id, trace_id


def one(attributes=None, **kw) -> dict:
    batch = map_request(
        request(span("s", trace_id(), span_id(), attributes=attributes, **kw)),
        project_id=1,
        max_attribute_bytes=1024,
    )
    assert batch.rejected == 0, batch.problems
    return batch.rows[0]


def test_passerelle_sdk_attributes():
    row = one(
        {
            "passerelle.observation.type": "generation",
            "passerelle.level": "warning",
            "passerelle.metadata": json.dumps({"team": "search"}),
            "passerelle.model_parameters": json.dumps({"temperature": 0.3, "seed": 7}),
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 5,
            "passerelle.usage.total_tokens": 16,
            "passerelle.cost.total": 0.5,
            "passerelle.ttft_ms": 120.5,
            "passerelle.prompt.name": "qa",
            "passerelle.prompt.version": 3,
            "input.value": json.dumps([{"role": "user", "content": "hi"}]),
            "input.mime_type": "application/json",
            "output.value": "hello",
            "passerelle.trace.name": "ask",
            "passerelle.trace.tags": ["beta", "eu"],
            "passerelle.trace.metadata": json.dumps({"ab": "b"}),
            "passerelle.release": "1.2.0",
            "session.id": "s-1",
            "user.id": "u-1",
        }
    )
    assert row["type"] == "generation" and row["level"] == "WARNING"
    assert row["metadata"] == {"team": "search", "resource": {"service.name": "test"}}
    assert row["model_parameters"] == {"temperature": 0.3, "seed": 7}
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (10, 5, 16)
    assert (row["cost"], row["cost_source"], row["ttft_ms"]) == (0.5, "provided", 120.5)
    assert (row["prompt_name"], row["prompt_version"]) == ("qa", "3")
    assert json.loads(row["input"]) == [{"role": "user", "content": "hi"}]
    assert row["output"] == "hello"
    assert row["trace_attributes"] == {
        "name": "ask",
        "session_id": "s-1",
        "user_id": "u-1",
        "release": "1.2.0",
        "tags": ["beta", "eu"],
        "metadata": {"ab": "b"},
    }


def test_openinference_attributes():
    row = one(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "claude-3-5-sonnet-20241022",
            "llm.provider": "anthropic",
            "llm.invocation_parameters": json.dumps({"max_tokens": 100}),
            "llm.token_count.prompt": 40,
            "llm.token_count.completion": 9,
            "llm.token_count.total": 49,
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "be brief",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "hi",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "hello",
            "tag.tags": ["x"],
            "metadata": json.dumps({"k": 1}),
        }
    )
    assert (row["type"], row["model"], row["provider"]) == (
        "generation",
        "claude-3-5-sonnet-20241022",
        "anthropic",
    )
    assert row["model_parameters"] == {"max_tokens": 100}
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (40, 9, 49)
    assert json.loads(row["input"]) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert json.loads(row["output"]) == [{"role": "assistant", "content": "hello"}]
    assert row["trace_attributes"] == {"tags": ["x"], "metadata": {"k": 1}}
    assert "llm.input_messages.0.message.role" not in row["metadata"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("RETRIEVER", "retrieval"), ("TOOL", "tool"), ("CHAIN", "span"), ("EMBEDDING", "generation")],
)
def test_openinference_span_kinds(kind, expected):
    assert one({"openinference.span.kind": kind})["type"] == expected


def test_genai_events_and_legacy_flat_prompts():
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    s = span(
        "chat",
        trace_id(),
        span_id(),
        attributes={
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.prompt_tokens": 3,
            "gen_ai.usage.completion_tokens": 4,
            "gen_ai.request.max_tokens": 64,
        },
    )
    for name, attrs in (
        ("gen_ai.system.message", {"content": "be kind"}),
        ("gen_ai.user.message", {"content": "hi"}),
        ("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": '{"content": "yo"}'}),
        ("retry", {"attempt": 2}),
    ):
        event = Span.Event(name=name, time_unix_nano=s.start_time_unix_nano)
        for k, v in attrs.items():
            kv = event.attributes.add(key=k)
            if isinstance(v, int):
                kv.value.int_value = v
            else:
                kv.value.string_value = v
        s.events.append(event)
    row = map_request(request(s), 1, max_attribute_bytes=1024).rows[0]
    assert (row["provider"], row["input_tokens"], row["output_tokens"]) == ("openai", 3, 4)
    assert row["model_parameters"] == {"max_tokens": 64}
    assert json.loads(row["input"]) == [
        {"role": "system", "content": "be kind"},
        {"role": "user", "content": "hi"},
    ]
    assert json.loads(row["output"]) == [
        {"index": 0, "finish_reason": "stop", "message": {"content": "yo"}}
    ]
    assert row["metadata"]["events"][0]["name"] == "retry"

    flat = one(
        {
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "2+2?",
            "gen_ai.completion.0.content": "4",
        }
    )
    assert json.loads(flat["input"]) == [{"role": "user", "content": "2+2?"}]
    assert json.loads(flat["output"]) == [{"content": "4"}]


def test_error_status_and_exception_event():
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    s = span("boom", trace_id(), span_id(), error="")
    event = Span.Event(name="exception", time_unix_nano=s.start_time_unix_nano)
    for k, v in (("exception.type", "ValueError"), ("exception.message", "bad")):
        event.attributes.add(key=k).value.string_value = v
    s.events.append(event)
    row = map_request(request(s), 1, max_attribute_bytes=1024).rows[0]
    assert row["level"] == "ERROR"
    assert row["status_message"] == "ValueError: bad"
    assert row["metadata"]["exception"] == {"type": "ValueError", "message": "bad"}


def test_a_span_over_the_attribute_limit_is_refused_with_its_name():
    t = trace_id()
    batch = map_request(
        request(
            span("big", t, span_id(), attributes={"blob": ["x" * 600, "y" * 600]}),
            span("ok", t, span_id()),
            span("reversed", t, span_id(), duration_ms=-5),
        ),
        project_id=1,
        max_attribute_bytes=1024,
    )
    assert [r["name"] for r in batch.rows] == ["ok"]
    assert batch.rejected == 2
    assert "attribute 'blob'" in batch.message()
    assert "'reversed'" in batch.message() and "before the start" in batch.message()


def test_prices_match_dated_and_prefixed_model_names():
    table = PriceTable()
    assert table.find("gpt-4o-mini-2024-07-18")[0] == "gpt-4o-mini"
    assert table.find("gpt-4o-2024-08-06")[0] == "gpt-4o"
    assert table.find("openai/GPT-4o")[0] == "gpt-4o"
    assert table.find("my-local-llama") is None
    assert table.cost("my-local-llama", 10, 10, 0) is None
    assert table.cost("gpt-4o", None, None, None) is None
    price = default_prices()["gpt-4o"]
    assert table.cost("gpt-4o", 1000, 100, 400) == pytest.approx(
        (600 * price.input + 400 * price.cached_input + 100 * price.output) / 1e6
    )
    own = PriceTable({"my-local-llama": Price(1.0, 2.0), "gpt-4o": Price(0.0, 0.0)})
    assert own.cost("my-local-llama-8b", 1_000_000, 1_000_000, 0) == pytest.approx(3.0)
    assert own.cost("gpt-4o", 1000, 1000, 0) == 0.0


def test_a_bad_resource_refuses_its_spans_and_not_the_other_resources():
    t = trace_id()
    bad = request(span("a", t, span_id()), span("b", t, span_id()), resource={"k": "x\x00y"})
    good = request(span("c", t, span_id()))
    bad.resource_spans.extend(good.resource_spans)
    batch = map_request(bad, 1, max_attribute_bytes=1024)
    assert [r["name"] for r in batch.rows] == ["c"]
    assert batch.rejected == 2
    assert "resource: attribute 'k' holds a NUL" in batch.message()
    assert "(2 spans refused)" in batch.message()
