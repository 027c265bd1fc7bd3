"""Reading traces back: filters and search, sessions, scores, prices, totals, the dashboard."""

from __future__ import annotations

import time

import pytest

from tests.tracing._otlp import PROTOBUF, request, span, span_id, trace_id

DAY_NS = 86_400 * 10**9


def export(http, *spans):
    r = http.post("/v1/traces", content=request(*spans).SerializeToString(), headers=PROTOBUF)
    assert r.status_code == 200, r.text


def conversation_turn(
    http,
    *,
    name,
    user,
    session,
    tags,
    question,
    answer,
    model,
    tokens,
    start_ns,
    duration_ms,
    error=None,
):
    t, root, gen = trace_id(), span_id(), span_id()
    export(
        http,
        span(
            name,
            t,
            root,
            start_ns=start_ns,
            duration_ms=duration_ms,
            error=error,
            attributes={
                "user.id": user,
                "session.id": session,
                "passerelle.trace.tags": tags,
                "input.value": question,
            },
        ),
        span(
            "llm",
            t,
            gen,
            root,
            start_ns=start_ns + 1000,
            duration_ms=duration_ms / 2,
            attributes={
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": tokens,
                "gen_ai.usage.output_tokens": tokens // 10,
                "output.value": answer,
            },
        ),
    )
    return t.hex()


@pytest.fixture
def turns(http):
    now = time.time_ns()
    return {
        "a": conversation_turn(
            http,
            name="ask",
            user="ada",
            session="s1",
            tags=["beta"],
            question="Where is Paris?",
            answer="In France",
            model="gpt-4o",
            tokens=1000,
            start_ns=now - 2 * DAY_NS,
            duration_ms=100,
        ),
        "b": conversation_turn(
            http,
            name="ask",
            user="ada",
            session="s1",
            tags=["beta", "eu"],
            question="And Rome?",
            answer="In Italy",
            model="gpt-4o-mini",
            tokens=2000,
            start_ns=now - DAY_NS,
            duration_ms=900,
        ),
        "c": conversation_turn(
            http,
            name="summarise",
            user="bob",
            session="s2",
            tags=[],
            question="Summarise 100% of it",
            answer="done",
            model="my-own-model",
            tokens=50,
            start_ns=now,
            duration_ms=3000,
            error="timeout",
        ),
    }


def ids(http, **params) -> set[str]:
    r = http.get("/api/v1/traces", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == len(body["traces"])
    return {t["id"] for t in body["traces"]}


def test_filters_and_search(http, turns):
    a, b, c = turns["a"], turns["b"], turns["c"]
    assert ids(http) == {a, b, c}
    assert ids(http, name="summarise") == {c}
    assert ids(http, user_id="ada") == {a, b}
    assert ids(http, session_id="s2") == {c}
    assert ids(http, tag="eu") == {b}
    assert ids(http, tag="e") == set()  # a tag matches whole
    assert ids(http, min_latency_ms=500) == {b, c}
    assert ids(http, max_latency_ms=500) == {a}
    assert ids(http, errors=True) == {c}
    assert ids(http, errors=False) == {a, b}
    assert ids(http, min_cost=0.001) == {a}  # gpt-4o: 1000 in + 100 out = 0.0035 USD
    assert ids(http, max_cost=0.0) == {c}  # a model without a price costs nothing
    assert ids(http, q="paris") == {a}  # inputs, case-insensitive
    assert ids(http, q="italy") == {b}  # outputs of any observation
    assert ids(http, q="100%") == {c}  # LIKE wildcards are plain text
    assert ids(http, q="100%x") == set()
    trace_b = http.get(f"/api/v1/traces/{b}").json()["trace"]
    assert ids(http, since=trace_b["start_time"]) == {b, c}
    assert ids(http, until=trace_b["start_time"]) == {a, b}
    page = http.get("/api/v1/traces", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and [t["id"] for t in page["traces"]] == [b]  # newest first


def test_sessions_totals_and_dashboard(http, turns):
    sessions = http.get("/api/v1/sessions").json()
    assert sessions["total"] == 2
    assert [s["session_id"] for s in sessions["sessions"]] == ["s2", "s1"]
    s1 = http.get("/api/v1/sessions/s1").json()
    assert [t["id"] for t in s1["traces"]] == [turns["a"], turns["b"]]
    assert [t["input"] for t in s1["traces"]] == ["Where is Paris?", "And Rome?"]
    assert http.get("/api/v1/sessions/nope").status_code == 404

    by_user = http.get("/api/v1/tracing/costs", params={"group_by": "user"}).json()["totals"]
    totals = {row["key"]: row for row in by_user}
    assert totals["ada"]["count"] == 2 and totals["ada"]["input_tokens"] == 3000
    assert totals["bob"]["cost"] == 0.0
    by_day = http.get("/api/v1/tracing/costs", params={"group_by": "day"}).json()["totals"]
    assert len(by_day) == 3 and all(len(row["key"]) == 10 for row in by_day)
    r = http.get("/api/v1/tracing/costs", params={"group_by": "colour"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "group_by"

    board = http.get("/api/v1/tracing/dashboard").json()
    assert (board["traces"], board["observations"], board["error_traces"]) == (3, 6, 1)
    assert board["error_rate"] == pytest.approx(1 / 3)
    assert board["latency_ms"]["p50"] == pytest.approx(900.0)
    assert 900 < board["latency_ms"]["p95"] < board["latency_ms"]["p99"] <= 3000
    models = {row["model"] for row in board["by_model_day"]}
    assert models == {"gpt-4o", "gpt-4o-mini", "my-own-model"}


def test_scores_may_arrive_before_their_trace(http):
    t = trace_id()
    r = http.post(
        "/api/v1/scores",
        json={
            "scores": [
                {"trace_id": t.hex(), "name": "user_feedback", "value": 1},
                {"trace_id": t.hex(), "name": "tone", "value": "good", "source": "judge"},
                {
                    "trace_id": t.hex(),
                    "name": "helpful",
                    "value": True,
                    "source": "human",
                    "observation_id": "00000000000000aa",
                    "comment": "nice",
                },
            ]
        },
    )
    assert r.status_code == 201 and r.json() == {"accepted": 3}
    export(http, span("later", t, span_id()))
    scores = http.get(f"/api/v1/traces/{t.hex()}").json()["scores"]
    assert [(s["name"], s["data_type"], s["value"], s["source"]) for s in scores] == [
        ("user_feedback", "numeric", 1.0, "api"),
        ("tone", "categorical", "good", "judge"),
        ("helpful", "boolean", True, "human"),
    ]
    assert scores[2]["comment"] == "nice"


@pytest.mark.parametrize(
    ("score", "field"),
    [
        ({"trace_id": "xyz", "name": "n", "value": 1}, "scores.0.trace_id"),
        (
            {"trace_id": "a" * 32, "name": "n", "value": "high", "data_type": "numeric"},
            "scores.0.value",
        ),
        ({"trace_id": "a" * 32, "name": "n", "value": 2, "data_type": "boolean"}, "scores.0.value"),
        ({"trace_id": "a" * 32, "name": "n", "value": 1, "source": "robot"}, "scores.0.source"),
    ],
)
def test_bad_scores_name_the_field(http, score, field):
    r = http.post("/api/v1/scores", json={"scores": [score]})
    assert r.status_code == 422
    assert r.json()["error"]["field"].startswith(field), r.json()


def test_project_prices_override_the_shipped_ones_for_new_spans(http, keys):
    listed = {p["model"]: p for p in http.get("/api/v1/tracing/prices").json()}
    assert listed["gpt-4o"]["source"] == "default"
    r = http.put(
        "/api/v1/tracing/prices/acme/llm-1", json={"input_per_mtok": 1.0, "output_per_mtok": 2.0}
    )
    assert r.status_code == 200, r.text
    r = http.put(
        "/api/v1/tracing/prices/acme/llm-1", json={"input_per_mtok": 1.0, "output_per_mtok": 4.0}
    )
    assert r.json()["output_per_mtok"] == 4.0
    viewer = {"Authorization": f"Bearer {keys.viewer}"}
    assert (
        http.put(
            "/api/v1/tracing/prices/x",
            json={"input_per_mtok": 1, "output_per_mtok": 1},
            headers=viewer,
        ).status_code
        == 403
    )
    t, s, given = trace_id(), span_id(), span_id()
    export(
        http,
        span(
            "gen",
            t,
            s,
            attributes={
                "gen_ai.request.model": "acme/llm-1",
                "gen_ai.usage.input_tokens": 1_000_000,
                "gen_ai.usage.output_tokens": 1_000_000,
            },
        ),
        span(
            "priced by the caller",
            t,
            given,
            attributes={
                "gen_ai.request.model": "acme/llm-1",
                "gen_ai.usage.input_tokens": 5,
                "passerelle.cost.total": 0.25,
            },
        ),
    )
    obs = {o["id"]: o for o in http.get(f"/api/v1/traces/{t.hex()}").json()["observations"]}
    assert obs[s.hex()]["cost"] == pytest.approx(5.0)
    assert (obs[given.hex()]["cost"], obs[given.hex()]["cost_source"]) == (0.25, "provided")
    assert http.delete("/api/v1/tracing/prices/acme/llm-1").status_code == 204
    assert http.delete("/api/v1/tracing/prices/acme/llm-1").status_code == 404
    r = http.put("/api/v1/tracing/prices/gpt-4o", json={"input_per_mtok": -1, "output_per_mtok": 1})
    assert r.status_code == 422 and r.json()["error"]["field"] == "input_per_mtok"
