"""What is recorded: sampling whole traces, masking sensitive fields, cutting large values,
and how Python values become OTLP attributes."""

from __future__ import annotations

import json

import numpy as np

import passerelle as psl
from passerelle.sdk.tracing.exporter import SpanExporter
from passerelle.sdk.tracing.tracer import Tracer
from tests.tracing._sdk_servers import (  # noqa: F401 (fixtures)
    OtlpServer,
    exporter_fixture,
    otlp_fixture,
    tracer_fixture,
)


def traced_pipeline(tracer: Tracer, n: int) -> int:
    @tracer.observe(name="child")
    def child(i: int) -> int:
        return i

    @tracer.observe(name="root")
    def root(i: int) -> int:
        assert (psl.get_current_trace_id() is None) == (psl.get_current_observation() is None)
        return child(i) + child(i)

    return sum(root(i) for i in range(n))


def test_sampling_keeps_whole_traces(exporter: SpanExporter, otlp: OtlpServer) -> None:
    tracer = Tracer(exporter, sample_rate=0.5)
    assert traced_pipeline(tracer, 400) == 2 * sum(range(400))  # every call still runs
    tracer.flush()
    traces: dict[str, list[dict]] = {}
    for span in otlp.spans:
        traces.setdefault(span["trace_id"], []).append(span)
    assert 140 <= len(traces) <= 260  # binomial(400, 0.5): six standard deviations
    for spans in traces.values():  # a kept trace is whole: its root and both children
        assert sorted(s["name"] for s in spans) == ["child", "child", "root"]


def test_sample_rate_zero_and_disabled_record_nothing(
    exporter: SpanExporter, otlp: OtlpServer
) -> None:
    for tracer in (Tracer(exporter, sample_rate=0.0), Tracer(exporter, enabled=False)):
        assert traced_pipeline(tracer, 10) == 90
        with tracer.trace("t", user_id="u") as t:
            assert psl.get_current_trace_id() is None
            t.update(output="x")
            t.score("s", 1)  # nothing to score: silently nothing
    tracer.flush()
    assert otlp.spans == [] and otlp.scores == []


def test_masking_hides_sensitive_fields(exporter: SpanExporter, otlp: OtlpServer) -> None:
    tracer = Tracer(exporter, mask=psl.redact_keys("password", "API_KEY"))

    @tracer.observe(name="login")
    def login(user: str, password: str, options: dict) -> dict:
        return {"user": user, "api_key": "sk-123", "nested": [{"password": "again"}]}

    with tracer.trace("t", metadata={"password": "in-metadata"}):
        login("ada", "hunter2", {"api_key": "sk-456"})
    tracer.flush()
    text = json.dumps(otlp.spans)
    for secret in ("hunter2", "sk-123", "sk-456", "again", "in-metadata"):
        assert secret not in text
    a = otlp.by_name()["login"]["attributes"]
    assert json.loads(a["input.value"]) == {
        "user": "ada",
        "password": "***",
        "options": {"api_key": "***"},
    }
    assert json.loads(a["output.value"])["nested"] == [{"password": "***"}]


def test_a_failing_mask_withholds_instead_of_leaking(
    exporter: SpanExporter, otlp: OtlpServer
) -> None:
    def mask(value: object) -> object:
        raise RuntimeError("bug in the mask")

    tracer = Tracer(exporter, mask=mask)

    @tracer.observe(name="f")
    def f(secret: str) -> str:
        return secret

    assert f("s3cr3t") == "s3cr3t"
    tracer.flush()
    a = otlp.by_name()["f"]["attributes"]
    assert "s3cr3t" not in json.dumps(a)
    assert a["input.value"].startswith("<masking failed")


def test_large_and_odd_values(exporter: SpanExporter, otlp: OtlpServer) -> None:
    tracer = Tracer(exporter, max_field_bytes=100)

    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    circular: list = []
    circular.append(circular)

    @tracer.observe(name="odd")
    def odd(a: object, b: object, c: object) -> str:
        return "y" * 1000

    odd(np.arange(3), Opaque(), {1: "int key"})

    @tracer.observe(name="loop")
    def loop(x: object) -> None:
        return None

    loop(circular)
    with tracer.span("attrs") as obs:
        obs.update(
            attributes={
                "flag": True,
                "n": 3,
                "ratio": 0.5,
                "names": ["a", "b"],
                "huge": 2**70,
                "obj": {"k": 1},
            }
        )
    tracer.flush()
    spans = otlp.by_name()
    a = spans["odd"]["attributes"]
    assert json.loads(a["input.value"]) == {"a": [0, 1, 2], "b": "<Opaque>", "c": {"1": "int key"}}
    assert a["output.value"].startswith("y" * 100) and a["output.value"].endswith("[truncated]")
    assert a["output.mime_type"] == "text/plain"
    assert spans["loop"]["attributes"]["input.mime_type"] == "text/plain"  # repr, not JSON
    attrs = spans["attrs"]["attributes"]
    assert attrs["flag"] is True and attrs["n"] == 3 and attrs["ratio"] == 0.5
    assert attrs["names"] == ["a", "b"]
    assert attrs["huge"] == str(2**70) and json.loads(attrs["obj"]) == {"k": 1}


def test_values_are_recorded_when_the_call_ends(tracer: Tracer, otlp: OtlpServer) -> None:
    # A chat history appended to after the call is recorded as it was during the call.
    @tracer.observe(name="turn")
    def turn(history: list[str]) -> list[str]:
        return history

    history = ["hello"]
    turn(history)
    history.append("later")
    tracer.flush()
    assert json.loads(otlp.by_name()["turn"]["attributes"]["input.value"]) == {"history": ["hello"]}


def test_capture_can_be_turned_off(tracer: Tracer, otlp: OtlpServer) -> None:
    @tracer.observe(name="quiet", capture_input=False, capture_output=False)
    def quiet(secret: str) -> str:
        return secret

    quiet("s")
    tracer.flush()
    attrs = otlp.by_name()["quiet"]["attributes"]
    assert "input.value" not in attrs and "output.value" not in attrs
