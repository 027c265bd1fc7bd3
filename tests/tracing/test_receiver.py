"""The OTLP receiver through the app: both encodings, re-sent spans, bad input, auth."""

from __future__ import annotations

import gzip
import shutil

import orjson
import pytest
from fastapi.testclient import TestClient
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2

from passerelle.app import create_app
from passerelle.core.settings import Settings
from tests.tracing._otlp import PROTOBUF, parse_response, request, span, span_id, trace_id
from tests.tracing.conftest import ADMIN_KEY, Keys


def refusal(r) -> tuple[int, str, str | None]:
    """An OTLP error answer: a google.rpc.Status (protobuf, or JSON for a JSON export), its
    code, message and the field its BadRequest detail names."""
    if r.headers["content-type"].startswith("application/json"):
        status = json_format.Parse(r.text, status_pb2.Status())
    else:
        assert r.headers["content-type"] == "application/x-protobuf"
        status = status_pb2.Status.FromString(r.content)
    field = None
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        assert detail.Unpack(bad)
        field = bad.field_violations[0].field
    return status.code, status.message, field


def send(http: TestClient, req, **headers):
    return http.post("/v1/traces", content=req.SerializeToString(), headers={**PROTOBUF, **headers})


def get_trace(http: TestClient, tid: bytes) -> dict:
    r = http.get(f"/api/v1/traces/{tid.hex()}")
    assert r.status_code == 200, r.text
    return r.json()


def test_resent_spans_are_stored_once(http):
    t, root, child = trace_id(), span_id(), span_id()
    req = request(
        span("root", t, root),
        span(
            "llm",
            t,
            child,
            root,
            attributes={
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 10,
            },
        ),
    )
    for _ in range(3):  # an exporter retrying after a lost answer
        r = send(http, req)
        assert r.status_code == 200, r.text
        assert not parse_response(r.content).HasField("partial_success")
    found = get_trace(http, t)
    assert len(found["observations"]) == 2
    assert found["trace"]["observation_count"] == 2
    assert found["trace"]["input_tokens"] == 100  # not 300
    assert found["trace"]["total_cost"] == pytest.approx(found["observations"][1]["cost"])
    assert http.get("/api/v1/traces").json()["total"] == 1


def test_spans_of_one_trace_over_several_exports_make_one_tree(http):
    t, root, child, grandchild = trace_id(), span_id(), span_id(), span_id()
    send(http, request(span("grandchild", t, grandchild, child)))
    partial = get_trace(http, t)
    assert partial["observations"][0]["parent_missing"] is True
    assert partial["trace"]["has_root"] is False
    send(http, request(span("child", t, child, root)))
    send(http, request(span("root", t, root, attributes={"passerelle.trace.name": "ask"})))
    found = get_trace(http, t)
    assert found["trace"]["name"] == "ask" and found["trace"]["has_root"] is True
    assert [(o["name"], o["depth"], o["parent_missing"]) for o in found["observations"]] == [
        ("root", 0, False),
        ("child", 1, False),
        ("grandchild", 2, False),
    ]


def test_json_encoding_is_answered_in_json(http):
    t, s = trace_id(), span_id()
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "j"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": t.hex(),
                                "spanId": s.hex(),
                                "name": "json span",
                                "kind": 1,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000250000000",
                                "attributes": [
                                    {"key": "user.id", "value": {"stringValue": "bo"}},
                                    {"key": "llm.model_name", "value": {"stringValue": "gpt-4o"}},
                                    {"key": "llm.token_count.prompt", "value": {"intValue": "10"}},
                                    {"key": "custom", "value": {"doubleValue": 1.5}},
                                ],
                                "unknownField": True,
                            },
                            {
                                "traceId": "not-hex",
                                "spanId": s.hex(),
                                "name": "bad",
                                "startTimeUnixNano": "1700000000000000000",
                            },
                        ],
                    }
                ],
            }
        ]
    }
    r = http.post("/v1/traces", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    answer = r.json()["partialSuccess"]
    assert answer["rejectedSpans"] == "1"
    assert "invalid trace id" in answer["errorMessage"] and "'bad'" in answer["errorMessage"]
    found = get_trace(http, t)
    obs = found["observations"][0]
    assert (obs["type"], obs["model"], obs["usage"]["input"]) == ("generation", "gpt-4o", 10)
    assert obs["latency_ms"] == 250.0
    assert obs["metadata"]["custom"] == 1.5
    assert found["trace"]["user_id"] == "bo"


def test_malformed_protobuf_is_a_400_naming_the_body(http):
    r = http.post("/v1/traces", content=b"\x0a\xff\xff\xff\xff\x0f garbage", headers=PROTOBUF)
    assert r.status_code == 400
    code, message, field = refusal(r)
    assert (code, field) == (code_pb2.INVALID_ARGUMENT, "body") and "protobuf" in message
    r = http.post(
        "/v1/traces", content=b"not gzip", headers={**PROTOBUF, "content-encoding": "gzip"}
    )
    assert r.status_code == 400 and refusal(r)[2] == "body"
    r = http.post("/v1/traces", content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and refusal(r)[2] == "content-type"
    r = http.post("/v1/traces", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400  # a JSON export is answered a Status in JSON
    code, message, field = refusal(r)
    assert (code, field) == (code_pb2.INVALID_ARGUMENT, "body") and message


def test_bad_spans_are_refused_one_by_one_and_the_others_kept(http):
    t, good, orphan = trace_id(), span_id(), span_id()
    req = request(
        span("good", t, good),
        span("short trace id", t[:15], span_id()),
        span("zero span id", t, b"\x00" * 8),
        span("bad parent", t, span_id(), b"\x01\x02"),
        span("orphan", t, orphan, span_id()),  # its parent never arrives
        span("nul", t, span_id(), attributes={"text": "a\x00b"}),
    )
    r = send(http, req)
    assert r.status_code == 200
    partial = parse_response(r.content).partial_success
    assert partial.rejected_spans == 4
    for expected in (
        "'short trace id'",
        "invalid trace id",
        "invalid span id",
        "invalid parent span id",
        "'text' holds a NUL",
    ):
        assert expected in partial.error_message, partial.error_message
    found = get_trace(http, t)
    kept = {o["name"]: o for o in found["observations"]}
    assert set(kept) == {"good", "orphan"}
    assert kept["orphan"]["parent_missing"] is True and kept["orphan"]["depth"] == 0


def test_an_attribute_over_the_limit_refuses_its_span_only(tmp_path, database_url):
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        tracing_max_attribute_bytes=1024 * 1024,
        _env_file=None,
    )
    app = create_app(settings)
    try:
        with TestClient(app, raise_server_exceptions=False) as http:
            t, big, small = trace_id(), span_id(), span_id()
            req = request(
                span("huge", t, big, attributes={"input.value": "x" * (2 * 1024 * 1024)}),
                span("small", t, small, attributes={"input.value": "fine"}),
            )
            r = http.post(
                "/v1/traces",
                content=gzip.compress(req.SerializeToString()),
                headers={**PROTOBUF, "content-encoding": "gzip"},
            )
            assert r.status_code == 200
            partial = parse_response(r.content).partial_success
            assert partial.rejected_spans == 1
            assert "attribute 'input.value' is 2097152 bytes" in partial.error_message
            assert "PASSERELLE_TRACING_MAX_ATTRIBUTE_BYTES" in partial.error_message
            found = get_trace(http, t)
            assert [o["name"] for o in found["observations"]] == ["small"]
    finally:
        app.state.engine.dispose()


def test_a_100_mb_attribute_is_refused_past_the_body_limit(http):
    t = trace_id()
    body = request(span("huge", t, span_id(), attributes={"input.value": "x" * 100_000_000}))
    r = send(http, body)
    assert r.status_code == 413
    code, message, field = refusal(r)
    assert (code, field) == (code_pb2.RESOURCE_EXHAUSTED, "body")
    assert str(64 * 1024 * 1024) in message
    assert http.get(f"/api/v1/traces/{t.hex()}").status_code == 404


def test_exports_need_a_key_that_may_write(http, keys: Keys):
    req = request(span("s", trace_id(), span_id()))
    r = http.post(
        "/v1/traces", content=req.SerializeToString(), headers={**PROTOBUF, "Authorization": ""}
    )
    assert r.status_code == 401 and refusal(r)[0] == code_pb2.UNAUTHENTICATED
    r = send(http, req, Authorization=f"Bearer {keys.viewer}")
    assert r.status_code == 403 and refusal(r)[0] == code_pb2.PERMISSION_DENIED


def test_an_admin_key_names_the_project_in_a_header(http):
    t = trace_id()
    r = send(
        http,
        request(span("s", t, span_id())),
        Authorization=f"Bearer {ADMIN_KEY}",
        **{"X-Passerelle-Project": "support-bot"},
    )
    assert r.status_code == 200
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    listed = http.get("/api/v1/traces", params={"project": "support-bot"}, headers=admin).json()
    assert [x["id"] for x in listed["traces"]] == [t.hex()]
    assert http.get("/api/v1/traces").json()["total"] == 0  # the editor's project: chatbot


def test_a_zero_span_export_is_acknowledged(http):
    r = http.post("/v1/traces", content=b"", headers=PROTOBUF)
    assert r.status_code == 200
    assert not parse_response(r.content).HasField("partial_success")
    r = http.post(
        "/v1/traces", content=orjson.dumps({}), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200 and r.json() == {}


def test_a_spool_that_cannot_be_written_is_a_retryable_503(http, locked_app):
    spool = locked_app.state.tracing.ingester.spool
    folder = spool.directory
    spool.close()
    shutil.rmtree(folder)
    folder.write_bytes(b"")  # the spool folder is now a file: opening a spool file fails
    t = trace_id()
    r = send(http, request(span("s", t, span_id())))
    assert r.status_code == 503  # OTLP exporters retry 503
    assert refusal(r)[0] == code_pb2.UNAVAILABLE
    folder.unlink()
    folder.mkdir()
    assert send(http, request(span("s", t, span_id()))).status_code == 200
    assert len(get_trace(http, t)["observations"]) == 1


def test_gzip_and_chunked_bodies_stop_at_the_limit(tmp_path):
    app = create_app(
        Settings(home=tmp_path / "home", max_request_bytes=1024 * 1024, _env_file=None)
    )
    try:
        with TestClient(app, raise_server_exceptions=False) as http:
            req = request(
                span(
                    "big",
                    trace_id(),
                    span_id(),
                    attributes={"input.value": "a" * (2 * 1024 * 1024)},
                )
            )
            body = gzip.compress(req.SerializeToString())
            assert len(body) < 1024 * 1024  # small on the wire, over the limit inflated
            r = http.post(
                "/v1/traces", content=body, headers={**PROTOBUF, "content-encoding": "gzip"}
            )
            assert r.status_code == 413
            assert "inflated request body is over the limit of 1048576 bytes" in refusal(r)[1]
            raw = req.SerializeToString()
            chunks = (raw[i : i + 65536] for i in range(0, len(raw), 65536))
            r = http.post("/v1/traces", content=chunks, headers=PROTOBUF)  # no length announced
            assert r.status_code == 413 and refusal(r)[0] == code_pb2.RESOURCE_EXHAUSTED
    finally:
        app.state.engine.dispose()
