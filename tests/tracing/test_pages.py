"""Tracing pages, in-process: the list with its filters, a trace's tree, waterfall and
conversation, sessions and the dashboard. Plus the display helpers (pure logic)."""

from __future__ import annotations

import json
import re
import time

import pytest

from passerelle.tracing import views
from tests.tracing._otlp import PROTOBUF, request, span, span_id, trace_id

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Which port?"}]


@pytest.fixture
def seeded(http):
    now = time.time_ns()
    t, root, gen, tool = trace_id(), span_id(), span_id(), span_id()
    spans = [
        span(
            "ask",
            t,
            root,
            start_ns=now,
            duration_ms=1000,
            attributes={
                "session.id": "conv-1",
                "user.id": "ada",
                "passerelle.trace.tags": ["beta"],
                "input.value": "Which port?",
                "output.value": "5050",
            },
        ),
        span(
            "chat",
            t,
            gen,
            root,
            start_ns=now + 500_000_000,
            duration_ms=400,
            attributes={
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.output_tokens": 2,
                "input.value": json.dumps(MESSAGES),
                "output.value": json.dumps([{"role": "assistant", "content": "5050"}]),
            },
        ),
        span("lookup", t, tool, gen, start_ns=now + 600_000_000, duration_ms=100, error="boom"),
        span("stray", t, span_id(), span_id(), start_ns=now, duration_ms=1),
    ]
    other = trace_id()
    spans.append(
        span(
            "other <b>name</b>",
            other,
            span_id(),
            start_ns=now - 10**9,
            attributes={"input.value": "unrelated"},
        )
    )
    r = http.post("/v1/traces", content=request(*spans).SerializeToString(), headers=PROTOBUF)
    assert r.status_code == 200
    return t.hex(), other.hex()


def rows_of(html: str) -> list[str]:
    return re.findall(r'data-trace="([0-9a-f]{32})"', html)


def test_traces_list_filters_and_search(http, seeded):
    ask, other = seeded
    page = http.get("/traces")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert rows_of(page.text) == [ask, other]
    assert "other &lt;b&gt;name&lt;/b&gt;" in page.text  # escaped
    assert rows_of(http.get("/traces", params={"q": "PORT"}).text) == [ask]
    assert rows_of(http.get("/traces", params={"errors": "yes"}).text) == [ask]
    assert rows_of(http.get("/traces", params={"user_id": "ada", "tag": "beta"}).text) == [ask]
    assert rows_of(http.get("/traces", params={"min_latency_ms": "500"}).text) == [ask]
    future = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() + 3600))
    assert rows_of(http.get("/traces", params={"start": future}).text) == []
    kept = http.get("/traces", params={"q": "port", "errors": "yes"}).text
    assert 'value="port"' in kept and '<option value="yes" selected>' in kept
    assert http.get("/traces", params={"errors": "maybe"}).status_code == 400
    assert "min_cost must be a number" in http.get("/traces", params={"min_cost": "lots"}).text
    blank = {"q": "port", "min_cost": "", "max_latency_ms": "", "start": "", "errors": ""}
    assert rows_of(http.get("/traces", params=blank).text) == [ask]  # a submitted empty form


def test_trace_page_shows_the_tree_the_waterfall_and_the_conversation(http, seeded):
    ask, _ = seeded
    html = http.get(f"/traces/{ask}").text
    depths = re.findall(r'data-observation="[0-9a-f]{16}" data-depth="(\d+)"', html)
    names = re.findall(r'class="level-\w+">([^<]+)</a>', html)
    assert list(zip(names, depths, strict=True)) == [
        ("ask", "0"),
        ("chat", "1"),
        ("lookup", "2"),
        ("stray", "0"),
    ]
    assert "parent missing" in html
    assert 'id="no-root"' not in html  # the root arrived; only "stray" misses its parent
    bars = re.findall(r'style="left: ([\d.]+)%; width: ([\d.]+)%"', html)
    assert bars[0] == ("0.0", "100.0") and bars[1] == ("50.0", "40.0")
    assert '<div class="message role-system"><span class="role">system</span>be brief</div>' in html
    assert '<span class="role">assistant</span>5050' in html
    assert "ERROR: boom" in html
    assert http.get("/traces/" + "0" * 32).status_code == 404
    headless = trace_id()
    body = request(span("child first", headless, span_id(), span_id())).SerializeToString()
    assert http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    assert 'id="no-root"' in http.get(f"/traces/{headless.hex()}").text


def test_sessions_and_dashboard(http, seeded):
    ask, _ = seeded
    sessions = http.get("/sessions").text
    assert "/sessions/conv-1" in sessions
    turn = http.get("/sessions/conv-1").text
    assert rows_of(turn) == [ask] and "Which port?" in turn and "5050" in turn
    board = http.get("/tracing").text
    assert re.search(r"traces</span><b>2</b>", board)
    assert re.search(r"error rate</span><b>50.0%</b>", board)
    assert "gpt-4o" in board and 'class="plotly-figure"' in board


def test_chat_messages_understands_the_usual_shapes():
    assert views.chat_messages(json.dumps(MESSAGES)) == MESSAGES
    genai = [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert views.chat_messages(json.dumps(genai)) == [{"role": "user", "content": "hi"}]
    openai_parts = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"text": "b"}]}]
    assert views.chat_messages(json.dumps(openai_parts)) == [{"role": "user", "content": "a\nb"}]
    choices = [{"index": 0, "message": {"role": "assistant", "content": "yo"}}]
    assert views.chat_messages(json.dumps(choices)) == [{"role": "assistant", "content": "yo"}]
    for not_chat in ("plain text", "[1, 2]", '{"a": 1}', "[", None, "[]"):
        assert views.chat_messages(not_chat) is None
    assert views.pretty('{"a":1}') == '{\n  "a": 1\n}' and views.pretty("[x") == "[x"
    assert views.parse_local_time("1970-01-02T00:00") == 86_400_000
    assert views.parse_local_time("yesterday") is None
