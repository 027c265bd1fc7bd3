"""``@observe``, ``trace()`` and ``span()``: nesting across functions, asyncio tasks, threads and
generators; trace-level fields; errors recorded and re-raised unchanged. Every assertion is on the
spans a real OTLP/HTTP server decoded."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import passerelle as psl
from passerelle.sdk.tracing.tracer import Tracer
from tests.tracing._sdk_servers import (  # noqa: F401 (fixtures)
    OtlpServer,
    exporter_fixture,
    otlp_fixture,
    tracer_fixture,
)


def test_nesting_and_trace_fields(tracer: Tracer, otlp: OtlpServer) -> None:
    @tracer.observe(as_type="retrieval")
    def retrieve(question: str, k: int = 2) -> list[str]:
        return [f"doc{i}" for i in range(k)]

    @tracer.observe(name="answer", as_type="generation")
    def answer(question: str, docs: list[str]) -> str:
        return f"{question} -> {len(docs)} docs"

    with tracer.trace(
        "ask",
        session_id="s-1",
        user_id="u-1",
        tags=["beta", "fr"],
        metadata={"ab": "B"},
        release="v1.2",
        input={"q": "what?"},
    ) as t:
        out = answer("what?", retrieve("what?", k=3))
        t.update(output=out)
    assert tracer.flush()
    spans = otlp.by_name()
    assert set(spans) == {"ask", "test_nesting_and_trace_fields.<locals>.retrieve", "answer"}
    root = spans["ask"]
    retrieve_span = spans["test_nesting_and_trace_fields.<locals>.retrieve"]
    assert root["parent_id"] is None
    assert len(root["trace_id"]) == 32 and len(root["span_id"]) == 16
    assert {s["trace_id"] for s in spans.values()} == {root["trace_id"]}
    assert retrieve_span["parent_id"] == root["span_id"] == spans["answer"]["parent_id"]
    a = root["attributes"]
    assert a["passerelle.trace.name"] == "ask"
    assert a["session.id"] == "s-1" and a["user.id"] == "u-1"
    assert a["passerelle.trace.tags"] == ["beta", "fr"]
    assert json.loads(a["passerelle.trace.metadata"]) == {"ab": "B"}
    assert a["passerelle.release"] == "v1.2"
    assert json.loads(a["input.value"]) == {"q": "what?"}
    assert a["input.mime_type"] == "application/json"
    assert a["output.value"] == "what? -> 3 docs" and a["output.mime_type"] == "text/plain"
    r = retrieve_span["attributes"]
    assert r["passerelle.observation.type"] == "retrieval"
    assert r["passerelle.level"] == "DEFAULT"
    assert json.loads(r["input.value"]) == {"question": "what?", "k": 3}
    assert json.loads(r["output.value"]) == ["doc0", "doc1", "doc2"]
    assert spans["answer"]["attributes"]["passerelle.observation.type"] == "generation"
    assert root["start"] <= retrieve_span["start"] <= retrieve_span["end"] <= root["end"]
    assert otlp.requests[0][1]["Authorization"] == "Bearer test-key"
    assert otlp.requests[0][1]["Content-Type"] == "application/x-protobuf"


def test_a_traced_error_is_recorded_and_reraised_unchanged(
    tracer: Tracer, otlp: OtlpServer
) -> None:
    cause = OSError("disk")
    raised = ValueError("bad question")
    raised.__cause__ = cause

    @tracer.observe()
    def fails(x: int) -> None:
        raise raised

    @tracer.observe()
    def outer() -> None:
        fails(1)

    with pytest.raises(ValueError) as info:
        outer()
    assert info.value is raised and info.value.__cause__ is cause
    assert info.value.args == ("bad question",)
    tracer.flush()
    spans = otlp.by_name()
    prefix = "test_a_traced_error_is_recorded_and_reraised_unchanged.<locals>."
    for name in ("fails", "outer"):
        span = spans[prefix + name]
        assert span["status"] == (2, "bad question")  # STATUS_CODE_ERROR
        assert span["attributes"]["passerelle.level"] == "ERROR"
        [event] = span["events"]
        assert event["name"] == "exception"
        assert event["attributes"]["exception.type"] == "ValueError"
        assert event["attributes"]["exception.message"] == "bad question"
        assert "in fails" in event["attributes"]["exception.stacktrace"]


def test_async_functions_and_tasks_nest_under_their_creator(
    tracer: Tracer, otlp: OtlpServer
) -> None:
    @tracer.observe(name="leaf")
    async def leaf(i: int) -> int:
        await asyncio.sleep(0.001)
        return i * 2

    @tracer.observe(name="fan_out")
    async def fan_out(n: int) -> list[int]:
        return list(await asyncio.gather(*(leaf(i) for i in range(n))))

    async def main() -> None:
        # Two traces interleaved on one loop: each keeps its own context.
        async def one(label: str) -> None:
            with tracer.trace(label):
                await fan_out(3)

        await asyncio.gather(one("t1"), one("t2"))

    asyncio.run(main())
    tracer.flush()
    spans = otlp.spans
    assert len(spans) == 2 * (1 + 1 + 3)
    roots = {s["name"]: s for s in spans if s["parent_id"] is None}
    assert set(roots) == {"t1", "t2"}
    for root in roots.values():
        mine = [s for s in spans if s["trace_id"] == root["trace_id"]]
        [fan] = [s for s in mine if s["name"] == "fan_out"]
        assert fan["parent_id"] == root["span_id"]
        leaves = [s for s in mine if s["name"] == "leaf"]
        assert len(leaves) == 3 and all(s["parent_id"] == fan["span_id"] for s in leaves)
        assert json.loads(fan["attributes"]["output.value"]) == [0, 2, 4]


def test_context_follows_threads_when_handed_over(tracer: Tracer, otlp: OtlpServer) -> None:
    @tracer.observe(name="work")
    def work(i: int) -> int:
        return i

    def in_thread() -> str | None:
        return psl.get_current_trace_id()

    with tracer.trace("threads") as t:
        with ThreadPoolExecutor(2) as pool:
            # copy_context().run carries the current observation into the worker thread
            futures = [pool.submit(contextvars.copy_context().run, work, i) for i in range(4)]
            [f.result() for f in futures]
            handed = pool.submit(contextvars.copy_context().run, in_thread).result()
            assert handed == t.trace_id_hex
            assert pool.submit(in_thread).result() is None  # a bare thread starts empty
        asyncio.run(asyncio.to_thread(work, 9))  # to_thread copies the context itself
        seen: list[str | None] = []
        thread = threading.Thread(target=lambda: seen.append(psl.get_current_trace_id()))
        thread.start()
        thread.join()
        assert seen == [None]
    tracer.flush()
    spans = otlp.spans
    [root] = [s for s in spans if s["name"] == "threads"]
    works = [s for s in spans if s["name"] == "work"]
    assert len(works) == 5
    assert all(s["parent_id"] == root["span_id"] for s in works)
    assert all(s["trace_id"] == root["trace_id"] for s in works)


def test_generators_are_traced_until_consumed(tracer: Tracer, otlp: OtlpServer) -> None:
    @tracer.observe(name="child")
    def child() -> str:
        return "c"

    @tracer.observe(name="tokens", as_type="generation")
    def tokens(n: int):
        for i in range(n):
            child()
            yield f"t{i} "
        return "done"

    @tracer.observe(name="agen")
    async def agen(n: int):
        for i in range(n):
            yield i

    @tracer.observe(name="returns_stream")
    def returns_stream():
        return (w for w in ["a", "b"])

    async def consume() -> list[int]:
        return [i async for i in agen(3)]

    async def consume_one() -> int:
        stream = agen(10)
        async for i in stream:
            await stream.aclose()  # the consumer stops after the first item
            return i
        return -1

    with tracer.trace("streams"):
        assert list(tokens(2)) == ["t0 ", "t1 "]
        partial = tokens(5)
        assert next(partial) == "t0 "
        partial.close()  # the consumer stops early
        assert asyncio.run(consume()) == [0, 1, 2]
        assert asyncio.run(consume_one()) == 0
        assert list(returns_stream()) == ["a", "b"]
    tracer.flush()
    spans = otlp.spans
    full, cut = sorted(
        (s for s in spans if s["name"] == "tokens"),
        key=lambda s: -len(s["attributes"]["output.value"]),
    )
    assert json.loads(full["attributes"]["output.value"]) == {
        "items": ["t0 ", "t1 "],
        "return": "done",
    }
    assert full["attributes"]["passerelle.ttft_ms"] >= 0
    assert cut["attributes"]["output.value"] == "t0 "
    children = [s for s in spans if s["name"] == "child"]
    assert len(children) == 3
    assert {c["parent_id"] for c in children} == {full["span_id"], cut["span_id"]}
    by_name = {s["name"]: s for s in spans}
    agens = sorted(
        json.loads(s["attributes"]["output.value"]) for s in spans if s["name"] == "agen"
    )
    assert agens == [[0], [0, 1, 2]]
    assert by_name["returns_stream"]["attributes"]["output.value"] == "ab"


def test_events_spans_and_manual_updates(tracer: Tracer, otlp: OtlpServer) -> None:
    @tracer.observe(as_type="event", name="cache_hit")
    def cache_hit(key: str) -> bool:
        return True

    with tracer.trace("manual") as t:
        cache_hit("k")
        with tracer.span("lookup", as_type="tool", input="q") as obs:
            assert psl.get_current_observation() is obs
            obs.update(
                output={"rows": 2},
                metadata={"table": "docs"},
                level="WARNING",
                status_message="slow",
                model="m-1",
                usage={"input": 3, "output": 4, "total": 7, "cached": 1},
                cost=0.002,
                prompt_name="qa",
                prompt_version=3,
                model_parameters={"temperature": 0.2, "max_tokens": 50, "seed": 7},
            )
        assert psl.get_current_observation() is t
    assert psl.get_current_observation() is None
    tracer.flush()
    spans = otlp.by_name()
    event = spans["cache_hit"]
    assert event["start"] == event["end"]
    assert event["attributes"]["passerelle.observation.type"] == "event"
    a = spans["lookup"]["attributes"]
    assert a["passerelle.observation.type"] == "tool"
    assert a["input.value"] == "q" and a["input.mime_type"] == "text/plain"
    assert json.loads(a["output.value"]) == {"rows": 2}
    assert json.loads(a["passerelle.metadata"]) == {"table": "docs"}
    assert a["passerelle.level"] == "WARNING" and a["passerelle.status_message"] == "slow"
    assert a["gen_ai.request.model"] == "m-1"
    assert a["gen_ai.usage.input_tokens"] == 3 and a["gen_ai.usage.output_tokens"] == 4
    assert a["passerelle.usage.total_tokens"] == 7
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1
    assert a["passerelle.cost.total"] == 0.002
    assert a["passerelle.prompt.name"] == "qa" and a["passerelle.prompt.version"] == "3"
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 50
    assert json.loads(a["passerelle.model_parameters"])["seed"] == 7
    assert spans["lookup"]["status"][0] == 0  # a warning is not an error


def test_methods_leave_self_out(tracer: Tracer, otlp: OtlpServer) -> None:
    class Bot:
        @tracer.observe(name="reply")
        def reply(self, text: str, *extra: str, loud: bool = False) -> str:
            return text.upper() if loud else text

    assert Bot().reply("hi", "x", loud=True) == "HI"
    tracer.flush()
    [span] = otlp.spans
    assert json.loads(span["attributes"]["input.value"]) == {
        "text": "hi",
        "extra": ["x"],
        "loud": True,
    }


def test_module_functions_use_the_injected_default_tracer(tracer: Tracer, otlp: OtlpServer) -> None:
    psl.set_default_tracer(tracer)
    try:

        @psl.observe
        def step(x: int) -> int:
            return x + 1

        with psl.trace("default", user_id="u") as t:
            step(1)
            psl.score("helpful", True, comment="ok")
            trace_id = psl.get_current_trace_id()
            assert trace_id == t.trace_id_hex
        assert psl.get_current_trace_id() is None
        assert psl.flush()
        stats = psl.tracing_stats()
    finally:
        psl.set_default_tracer(None)
    assert stats.exported == 2 and stats.dropped == 0 and stats.queued == 0
    assert {s["name"] for s in otlp.spans} == {
        "default",
        "test_module_functions_use_the_injected_default_tracer.<locals>.step",
    }
    assert otlp.scores == [
        {
            "trace_id": trace_id,
            "observation_id": None,
            "name": "helpful",
            "value": True,
            "source": "api",
            "comment": "ok",
        }
    ]


def test_bad_arguments_fail_at_the_call(tracer: Tracer) -> None:
    with pytest.raises(ValueError, match="as_type"):
        tracer.observe(as_type="chain")
    with pytest.raises(ValueError, match="sample_rate"):
        Tracer(tracer.exporter, sample_rate=1.5)
    with pytest.raises(ValueError, match="source"):
        tracer.score("x", 1, trace_id="0" * 32, source="robot")
    with pytest.raises(ValueError, match="level"), tracer.span("s") as obs:
        obs.update(level="LOUD")  # type: ignore[arg-type]


def test_a_cancelled_task_is_a_warning_not_an_error(tracer: Tracer, otlp: OtlpServer) -> None:
    @tracer.observe(name="slow")
    async def slow() -> None:
        await asyncio.sleep(30)

    async def main() -> None:
        task = asyncio.create_task(slow())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    tracer.flush()
    [span] = otlp.spans
    assert span["status"][0] == 0 and span["events"] == []
    assert span["attributes"]["passerelle.level"] == "WARNING"
    assert span["attributes"]["passerelle.status_message"] == "interrupted: CancelledError"


def test_trace_fields_set_later_from_a_nested_observation(tracer: Tracer, otlp: OtlpServer) -> None:
    @tracer.observe(name="authenticate")
    def authenticate(token: str) -> str:
        psl.get_current_observation().update_trace(user_id="u-9", tags="vip")
        return "u-9"

    @tracer.observe(name="handle")
    def handle(token: str) -> str:
        return authenticate(token)

    handle("t")
    tracer.flush()
    spans = otlp.by_name()
    assert spans["handle"]["attributes"]["passerelle.trace.name"] == "handle"  # its own trace
    auth = spans["authenticate"]["attributes"]
    assert auth["user.id"] == "u-9" and auth["passerelle.trace.tags"] == ["vip"]
    assert spans["authenticate"]["trace_id"] == spans["handle"]["trace_id"]
