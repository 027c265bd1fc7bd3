"""The endpoint pages in-process: what serves where, live figures per version from the inference
log, the traffic split, the history, promote / weight / rollback through the confirmation page,
access and escaping, and the endpoints in a version's lineage graph.

Models are registered and deployed, and predictions made, through the SDK against the test's
app, as a user would.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

import passerelle as psl
from passerelle.app import create_app
from passerelle.core import auth
from passerelle.core.auth import ANONYMOUS_ADMIN
from passerelle.core.db import session_scope
from passerelle.core.ids import now_ms
from passerelle.core.settings import Settings
from passerelle.sdk.client import Client
from passerelle.sdk.transport import InProcessTransport
from passerelle.serving import service, views
from passerelle.serving.models import Endpoint
from passerelle.serving.runtime import new_prediction_id
from tests.ui.test_registry_pages import XSS, Registry, hidden, seed_registry, svg, training_frame

REQUESTS = 40


@dataclass
class Served:
    """The registry of ``seed_registry``, endpoint ``churn`` (v2 primary, v3 canary at 20%,
    v1 shadow), and how many requests each version answered."""

    registry: Registry
    answered: Counter[int] = field(default_factory=Counter)


def seed_serving(app: FastAPI, home: Path, *, api_key: str | None = None) -> Served:
    registry = seed_registry(app, home, api_key=api_key)
    client = Client(home=home, api_key=api_key, transport=InProcessTransport(app))
    served = Served(registry)
    try:
        psl.deploy("churn", version=1, reason="first release", client=client)
        psl.deploy("churn", version=2, reason="better f1 on holdout", client=client)
        psl.deploy("churn", canary=3, weight=20, reason="try C=10", client=client)
        psl.deploy("churn", shadow=1, client=client)
        x, _ = training_frame()
        for i in range(REQUESTS):
            answer = psl.predict("churn", x.iloc[i : i + 1 + i % 3], client=client)
            served.answered[answer.model_version] += 1
    finally:
        client.close()
    return served


@pytest.fixture
def served(app: FastAPI, settings: Settings) -> Served:
    return seed_serving(app, settings.home)


@pytest.fixture(scope="module")
def shared_served(shared_app: FastAPI) -> Served:
    """One seeded endpoint per module and backend, for tests that only read it."""
    return seed_serving(shared_app, shared_app.state.settings.home)


def endpoint_of(app: FastAPI, name: str = "churn") -> dict[str, Any]:
    with session_scope(app.state.sessions) as session:
        return service.endpoint_public(service.get_endpoint(session, ANONYMOUS_ADMIN, name))


def history_of(app: FastAPI, name: str = "churn") -> list[dict[str, Any]]:
    with session_scope(app.state.sessions) as session:
        return service.history(session, ANONYMOUS_ADMIN, name)


def version_rows(html: str) -> dict[int, dict[str, str]]:
    """The versions table of the first endpoint in ``html``: role and figures by version."""
    table = html[html.index('<table class="data compact versions">') :].split("</table>")[0]
    rows = {}
    for version, role, body in re.findall(
        r'<tr data-version="(\d+)" data-role="(\w+)"[^>]*>(.*?)</tr>', table, flags=re.S
    ):
        cells = dict(re.findall(r'data-stat="(\w+)">(.*?)</td>', body, flags=re.S))
        rows[int(version)] = {"role": role, **{k: v.strip() for k, v in cells.items()}}
    return rows


def figures(html: str) -> dict[str, dict[str, Any]]:
    found = re.findall(
        r'<script type="application/json" class="plotly-figure" data-target="([^"]+)">(.*?)'
        r"</script>",
        html,
        flags=re.S,
    )
    return {target: json.loads(body) for target, body in found}


# -- reading -----------------------------------------------------------------------------------
def test_endpoints_page_shows_what_serves_where_with_live_figures(
    shared_client: TestClient, shared_served: Served
) -> None:
    response = shared_client.get("/endpoints")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<a href="/endpoints" class="active">Endpoints</a>' in html
    card = html[html.index('data-endpoint="churn"') :]
    assert '<a href="/endpoints/churn?project=default">churn</a>' in card
    assert '<a href="/models/churn?project=default">churn</a>' in card
    segments = re.findall(r'data-role="(\w+)" data-share="([\d.]+)"', card)
    assert segments == [("primary", "80.0"), ("canary", "20.0")]
    assert "shadow v1 · a copy of every request" in card

    rows = version_rows(card)
    assert [(v, r["role"]) for v, r in rows.items()] == [
        (2, "primary"),
        (3, "canary"),
        (1, "shadow"),
    ]
    answered = shared_served.answered
    assert int(rows[2]["requests"]) == answered[2] and int(rows[3]["requests"]) == answered[3]
    assert answered[2] + answered[3] == REQUESTS
    assert int(rows[1]["requests"]) == REQUESTS  # the shadow saw a copy of every request
    for version in (1, 2, 3):
        if int(rows[version]["requests"]):
            assert rows[version]["error_rate"] == "0.0%"
            assert re.fullmatch(r"[\d.]+ m?s", rows[version]["p50"]), rows[version]
            assert re.fullmatch(r"[\d.]+ m?s", rows[version]["p99"]), rows[version]
    assert '<div class="kpi-value" data-kpi="requests">40</div>' in card  # not the copies
    assert '<div class="kpi-value" data-kpi="errors">0.0%</div>' in card
    assert "Canary weight changed" not in card
    recent = card[card.index('class="recent"') :].split("</ol>")[0]
    assert recent.count("<li>") == 3 and "Shadow added" in recent and "try C=10" in recent
    assert "All 4 changes" in card
    assert 'action="/endpoints/churn/rollback"' in card
    assert 'action="/endpoints/churn/promote"' in card
    assert 'name="weight" min="0" max="100" step="any" value="20"' in card


def test_endpoint_page_charts_traffic_per_minute_and_lists_the_history(
    shared_client: TestClient, shared_served: Served
) -> None:
    html = shared_client.get("/endpoints/churn?project=default").text
    charts = figures(html)
    assert set(charts) == {"requests-chart", "latency-chart"}
    traces = {t["name"]: t for t in charts["requests-chart"]["data"]}
    assert set(traces) == {"v1", "v2", "v3"} - {
        f"v{v}" for v in (2, 3) if not shared_served.answered[v]
    }
    assert sum(traces["v1"]["y"]) == REQUESTS
    assert traces["v2"]["line"]["color"] == views.ROLE_COLORS["primary"]
    assert traces["v1"]["line"]["color"] == views.ROLE_COLORS["shadow"]
    assert len(traces["v1"]["x"]) >= 15  # one point per minute of the window, zeros included
    assert charts["requests-chart"]["layout"]["xaxis"]["type"] == "date"

    table = html[html.index('id="history-table"') :].split("</table>")[0]
    revisions = re.findall(r'<tr data-revision="(\d+)" data-action="(\w+)">', table)
    assert revisions == [("4", "shadow"), ("3", "canary"), ("2", "deploy"), ("1", "deploy")]
    canary = table.split('data-revision="3"')[1].split("</tr>")[0]
    assert "v2 → v2 80% · canary v3 20%" in canary and "try C=10" in canary
    assert "anonymous" in canary
    assert "nothing deployed → v1" in table
    assert "X-Request-Key header only" in html
    assert "<code>POST /v1/endpoints/churn/predict</code>" in html
    links = html[html.index('id="monitoring-links"') :].split("</p>")[0]
    assert 'href="/endpoints/churn/drift?project=default"' in links
    assert 'href="/endpoints/churn/performance?project=default"' in links
    assert 'href="/alerts?endpoint=churn"' in links
    assert '<a href="/alerts">Alerts</a>' in html  # the top navigation


def test_live_figures_follow_the_window_and_count_errors(
    app: FastAPI, client: TestClient, served: Served
) -> None:
    endpoint = endpoint_of(app)
    with session_scope(app.state.sessions) as session:
        endpoint_id = service.get_endpoint(session, ANONYMOUS_ADMIN, "churn").id
    old = now_ms() - 30 * 60_000
    app.state.serving.log.append(  # one failed request of three rows, half an hour ago
        [
            {
                "prediction_id": new_prediction_id(),
                "endpoint": "churn",
                "endpoint_id": endpoint_id,
                "version": 2,
                "route": "primary",
                "inputs": {"age": 30},
                "output": None,
                "latency_ms": 250.0,
                "status": "error",
                "request_key": None,
                "ts": old,
            }
            for _ in range(3)
        ]
    )
    recent = version_rows(client.get("/endpoints/churn?window=15").text)
    hour = version_rows(client.get("/endpoints/churn?window=60").text)
    assert int(hour[2]["requests"]) == int(recent[2]["requests"]) + 1
    assert recent[2]["error_rate"] == "0.0%"
    assert hour[2]["error_rate"] == f"{100 / (served.answered[2] + 1):.1f}%"
    assert hour[2]["p99"] != recent[2]["p99"]
    assert endpoint_of(app) == endpoint  # reading changed nothing
    html = client.get("/endpoints?window=60").text
    assert 'class="chip link chosen" href="/endpoints?window=60" aria-current="true">1 h<' in html
    assert client.get("/endpoints?window=0").status_code == 400
    assert client.get("/endpoints?window=abc").status_code == 400


def test_request_grouping_percentiles_and_observed_shares() -> None:
    def rows(version: int, route: str, ts: int, latency: float, n: int, status: str = "ok"):
        return [
            {
                "prediction_id": new_prediction_id(),
                "endpoint_id": 7,
                "version": version,
                "route": route,
                "ts": ts,
                "latency_ms": latency,
                "status": status,
            }
            for _ in range(n)
        ]

    log = pa.Table.from_pylist(
        rows(2, "primary", 1000, 10.0, 3)
        + rows(2, "primary", 2000, 20.0, 1)
        + rows(2, "primary", 3000, 30.0, 1)
        + rows(3, "canary", 3000, 40.0, 2, "error")
        + rows(1, "shadow", 1000, 5.0, 3)
        + rows(2, "primary", 10, 99.0, 1)  # before the window
        + [{**r, "endpoint_id": 8} for r in rows(2, "primary", 2500, 1.0, 4)]  # elsewhere
    )
    requests = views.requests_of(log, 7, since_ms=100)
    stats = views.version_stats(requests)
    assert (stats[2].requests, stats[2].predictions, stats[2].errors) == (3, 5, 0)
    assert (stats[2].p50_ms, round(stats[2].p99_ms, 1)) == (20.0, 29.8)
    assert (stats[3].requests, stats[3].errors, stats[3].error_rate) == (1, 1, 1.0)
    assert (stats[1].requests, stats[1].routed) == (1, 0)
    endpoint = {
        "primary_version": 2,
        "canary_version": 3,
        "canary_weight": 25.0,
        "shadow_versions": [1],
    }
    table = {r["version"]: r for r in views.role_rows(endpoint, stats, window=1)}
    assert (table[2]["share"], table[2]["observed"]) == (75.0, 75.0)
    assert (table[3]["share"], table[3]["observed"]) == (25.0, 25.0)
    assert (table[1]["share"], table[1]["observed"]) == (None, None)
    assert table[2]["rate"] == 3 / 60
    assert views.requests_of(pa.table({}), 7, 0).num_rows == 0
    assert views.version_stats(views.requests_of(log, 9, 0)) == {}


# -- changes -----------------------------------------------------------------------------------
def test_rolling_back_asks_for_confirmation_then_applies_it(
    app: FastAPI, client: TestClient, served: Served
) -> None:
    before = len(history_of(app))
    ask = client.post("/endpoints/churn/rollback", data={"project": "default"})
    assert ask.status_code == 200
    assert "Roll back churn?" in ask.text
    assert (
        "The canary, version 3, stops receiving requests at once; version 2 answers all of them."
        in ask.text
    )
    now = ask.text[ask.text.index('id="traffic-now"') :].split('id="traffic-after"')[0]
    after = ask.text[ask.text.index('id="traffic-after"') :].split("</form>")[0]
    assert "v2 80% · canary v3 20% · shadow v1" in now
    assert "v2 · shadow v1" in after and "canary" not in after.split("confirm-form")[0]
    assert endpoint_of(app)["canary_version"] == 3  # the preview changed nothing
    assert len(history_of(app)) == before

    data = {
        "project": "default",
        "reason": "p99 doubled on v3",
        "revision": hidden(ask.text, "revision"),
        "token": hidden(ask.text, "token"),
    }
    assert data["revision"] == "4"
    done = client.post("/endpoints/churn/rollback", data=data, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == "/endpoints/churn?project=default&changed=5#history"
    state = endpoint_of(app)
    assert (state["primary_version"], state["canary_version"]) == (2, None)
    event = history_of(app)[0]
    assert (event["action"], event["reason"], event["actor"]) == (
        "rollback",
        "p99 doubled on v3",
        "anonymous",
    )
    page = client.get(done.headers["location"]).text
    assert (
        '<p class="notice" role="status" id="notice">Rolled back: v2 80% · canary v3 20% · '
        "shadow v1 → v2 · shadow v1.</p>" in page
    )
    first = page[page.index('id="history-table"') :].split("</tr>")[1]
    assert 'data-action="rollback"' in first and "p99 doubled on v3" in first
    config = app.state.serving.config("churn", ANONYMOUS_ADMIN)
    assert (config["canary_version"], config["revision"]) == (None, 5)  # in force here at once

    replay = client.post("/endpoints/churn/rollback", data=data)
    assert replay.status_code == 409  # the same token cannot act twice
    assert "changed meanwhile" in replay.text and "Nothing was changed" in replay.text
    assert len(history_of(app)) == before + 1


def test_weight_and_promote_go_through_their_own_confirmations(
    app: FastAPI, client: TestClient, served: Served
) -> None:
    ask = client.post("/endpoints/churn/weight", data={"weight": "35"})
    assert ask.status_code == 200
    assert "The canary, version 3, gets 35% of requests instead of 20%." in ask.text
    assert hidden(ask.text, "weight") == "35.0"
    data = {
        "weight": "35.0",
        "revision": hidden(ask.text, "revision"),
        "token": hidden(ask.text, "token"),
    }
    done = client.post("/endpoints/churn/weight", data=data, follow_redirects=False)
    assert done.status_code == 303
    assert endpoint_of(app)["canary_weight"] == 35
    same = client.post("/endpoints/churn/weight", data={"weight": "35"})
    assert same.status_code == 200 and "Nothing to change" in same.text
    assert 'name="token"' not in same.text
    for bad in ("abc", "150", "-1", "nan", ""):
        refused = client.post("/endpoints/churn/weight", data={"weight": bad})
        assert refused.status_code == 422, bad
        assert "give a percent between 0 and 100" in refused.text
    # a weight token does not apply another weight
    other = {**data, "weight": "90"}
    assert client.post("/endpoints/churn/weight", data=other).status_code == 400
    assert endpoint_of(app)["canary_weight"] == 35

    ask = client.post("/endpoints/churn/promote", data={})
    assert "Version 3 becomes the primary and answers every request" in ask.text
    data = {"revision": hidden(ask.text, "revision"), "token": hidden(ask.text, "token")}
    done = client.post("/endpoints/churn/promote", data=data, follow_redirects=False)
    assert done.status_code == 303
    state = endpoint_of(app)
    assert (state["primary_version"], state["canary_version"]) == (3, None)
    page = client.get("/endpoints/churn").text
    assert 'action="/endpoints/churn/promote"' not in page  # no canary left to promote
    assert 'action="/endpoints/churn/rollback"' in page  # v2 can come back
    refused = client.post("/endpoints/churn/promote", data={})
    assert refused.status_code == 409 and "no canary to promote" in refused.text
    assert [e["action"] for e in history_of(app)[:2]] == ["promote", "weight"]


def test_tampered_tokens_and_cross_site_posts_are_refused(
    app: FastAPI, client: TestClient, served: Served
) -> None:
    ask = client.post("/endpoints/churn/rollback", data={})
    token, revision = hidden(ask.text, "token"), hidden(ask.text, "revision")
    flipped = token[:-1] + ("0" if token[-1] != "0" else "1")
    attempts = [
        ("/endpoints/churn/rollback", {"revision": revision, "token": flipped}),
        ("/endpoints/churn/promote", {"revision": revision, "token": token}),
        ("/endpoints/churn/rollback", {"revision": "3", "token": token}),
        ("/endpoints/churn/rollback", {"revision": revision, "token": "1.abc"}),
        ("/endpoints/churn/rollback", {"revision": revision, "token": "x.y"}),
    ]
    for url, data in attempts:
        response = client.post(url, data=data, follow_redirects=False)
        assert response.status_code == 400, (url, data)
        assert "not valid" in response.text
    altered = client.post("/endpoints/churn/rollback", data={"revision": "four", "token": token})
    assert altered.status_code == 422 and "altered" in altered.text
    evil = client.post(
        "/endpoints/churn/rollback",
        data={"revision": revision, "token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert evil.status_code == 403 and "only accepted from forms of this site" in evil.text
    assert endpoint_of(app)["canary_version"] == 3
    assert len(history_of(app)) == 4


def test_a_confirmation_made_stale_by_another_change_is_shown_again(
    app: FastAPI, client: TestClient, served: Served
) -> None:
    ask = client.post("/endpoints/churn/rollback", data={})
    with session_scope(app.state.sessions) as session:
        service.apply_change(session, ANONYMOUS_ADMIN, "churn", "weight", weight=50)
    data = {"revision": hidden(ask.text, "revision"), "token": hidden(ask.text, "token")}
    stale = client.post("/endpoints/churn/rollback", data=data)
    assert stale.status_code == 409
    assert "changed meanwhile (it now serves v2 50% · canary v3 50% · shadow v1)" in stale.text
    assert endpoint_of(app)["canary_version"] == 3
    fresh = {"revision": hidden(stale.text, "revision"), "token": hidden(stale.text, "token")}
    assert fresh["revision"] == "5"
    done = client.post("/endpoints/churn/rollback", data=fresh, follow_redirects=False)
    assert done.status_code == 303 and endpoint_of(app)["canary_version"] is None


# -- the version page --------------------------------------------------------------------------
def test_version_pages_show_the_endpoints_serving_them(
    shared_client: TestClient, shared_served: Served
) -> None:
    expected = {
        1: "shadow · a copy of traffic",
        2: "primary · 80% of traffic",
        3: "canary · 20% of traffic",
    }
    for version, detail in expected.items():
        graph = svg(shared_client.get(f"/models/churn/versions/{version}").text)
        deployment = graph[graph.index('data-kind="deployment"') :].split("</g>")[0]
        assert '<a href="/endpoints/churn?project=default">' in deployment
        assert ">churn</text>" in deployment and f">{detail}</text>" in deployment
        assert "no deployment" not in graph
    graph = svg(shared_client.get("/models/churn/versions/2").text)
    # data → run → version → @champion, and version → churn (under the aliases)
    assert len(re.findall(r'<path class="edge"', graph)) == 4


# -- access, escaping, errors ------------------------------------------------------------------
ADMIN_KEY = "serving-admin-key-0123456789"


@pytest.fixture
def secured(tmp_path: Path) -> Any:
    """A keyed app with the seeded endpoint, a viewer key and two editor keys."""
    settings = Settings(home=tmp_path / "secured", auth="on", admin_key=ADMIN_KEY, _env_file=None)
    application = create_app(settings)
    with session_scope(application.state.sessions) as session:
        project = auth.ensure_project(session, "default")
        keys = {
            name: auth.create_key(session, name=name, role=role, project_id=project.id)[1]
            for name, role in [("vera", "viewer"), ("ed", "editor"), ("eli", "editor")]
        }
    seed_serving(application, settings.home, api_key=ADMIN_KEY)
    with TestClient(application, raise_server_exceptions=False) as c:
        yield application, c, keys
    application.state.engine.dispose()


def test_a_viewer_reads_the_pages_but_cannot_change_an_endpoint(secured: Any) -> None:
    application, client, keys = secured
    assert client.get("/endpoints", follow_redirects=False).status_code == 303  # sign in first
    client.cookies.set("passerelle_key", keys["vera"])
    for url in ("/endpoints", "/endpoints/churn"):
        page = client.get(url)
        assert page.status_code == 200
        assert "can read this endpoint but not change it" in page.text
        assert "/rollback" not in page.text
    refused = client.post("/endpoints/churn/rollback", data={})
    assert refused.status_code == 403 and "may not write" in refused.text
    assert endpoint_of(application)["canary_version"] == 3


def test_a_confirmation_only_works_for_the_key_it_was_issued_to(secured: Any) -> None:
    application, client, keys = secured
    client.cookies.set("passerelle_key", keys["ed"])
    ask = client.post("/endpoints/churn/rollback", data={})
    data = {"revision": hidden(ask.text, "revision"), "token": hidden(ask.text, "token")}
    client.cookies.set("passerelle_key", keys["eli"])
    assert client.post("/endpoints/churn/rollback", data=data).status_code == 400
    assert endpoint_of(application)["canary_version"] == 3
    client.cookies.set("passerelle_key", keys["ed"])
    done = client.post("/endpoints/churn/rollback", data=data, follow_redirects=False)
    assert done.status_code == 303
    assert history_of(application)[0]["actor"] == "ed"  # recorded under the confirming key


def test_text_from_users_is_escaped(app: FastAPI, client: TestClient, served: Served) -> None:
    # The service refuses such a name; one stored by other means must still be escaped.
    odd = 'odd"<b>name'
    with session_scope(app.state.sessions) as session:
        service.apply_change(session, ANONYMOUS_ADMIN, "churn", "weight", weight=5, reason=XSS)
        service.apply_change(
            session, ANONYMOUS_ADMIN, "oddname", "deploy", version=1, model="churn", reason=XSS
        )
        session.execute(update(Endpoint).where(Endpoint.name == "oddname").values(name=odd))
    for url in ("/endpoints", "/endpoints/churn", views.endpoint_path(odd)):
        page = client.get(url)
        assert page.status_code == 200, url
        assert "<script>alert" not in page.text and "<b>name" not in page.text, url
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page.text, url
    listing = client.get("/endpoints").text
    assert 'href="/endpoints/odd%22%3Cb%3Ename?project=default"' in listing
    assert "odd&#34;&lt;b&gt;name" in listing
    # its log cannot be stored under that name: the figures are missing, not the page
    assert "Live figures unavailable: invalid object name" in listing
    ask = client.post(views.endpoint_path(odd, "weight"), data={"weight": "5"})
    assert ask.status_code == 409 and "has no canary" in ask.text and "<b>name" not in ask.text


def test_no_endpoints_and_unknown_ones(client: TestClient) -> None:
    empty = client.get("/endpoints")
    assert empty.status_code == 200
    assert "No endpoints yet." in empty.text and "passerelle deploy churn --version 1" in empty.text
    missing = client.get("/endpoints/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "endpoint &#39;nope&#39; not found" in missing.text
    assert client.post("/endpoints/nope/rollback", data={}).status_code == 404
