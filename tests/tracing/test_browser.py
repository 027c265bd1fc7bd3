"""The tracing pages in a real headless Chromium against a live server: search, open a trace,
its waterfall, a session, the dashboard's chart."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.tracing._otlp import PROTOBUF, request, span, span_id, trace_id

pytestmark = pytest.mark.browser
TIMEOUT_MS = 15_000


@pytest.fixture
def database_url() -> None:
    """SQLite only: test_pages.py runs the pages on both backends; here the browser is tested."""
    return None


def send_turns(url: str) -> str:
    now = time.time_ns()
    last = ""
    for i, question in enumerate(("Where is Paris?", "And Rome?")):
        t, root, gen = trace_id(), span_id(), span_id()
        messages = [{"role": "user", "content": question}]
        body = request(
            span(
                "ask",
                t,
                root,
                start_ns=now + i * 10**9,
                duration_ms=800,
                attributes={"session.id": "trip", "input.value": question},
            ),
            span(
                "chat",
                t,
                gen,
                root,
                start_ns=now + i * 10**9 + 2 * 10**8,
                duration_ms=400,
                attributes={
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 50,
                    "gen_ai.usage.output_tokens": 5,
                    "input.value": json.dumps(messages),
                    "output.value": json.dumps([{"role": "assistant", "content": f"answer {i}"}]),
                },
            ),
        )
        r = httpx.post(f"{url}/v1/traces", content=body.SerializeToString(), headers=PROTOBUF)
        assert r.status_code == 200
        last = t.hex()
    return last


def test_search_open_a_trace_and_read_its_timeline(page: Any, live_server: LiveServer) -> None:
    second = send_turns(live_server.url)
    page.goto(live_server.url + "/traces", timeout=TIMEOUT_MS)
    page.wait_for_selector("#traces tbody tr", timeout=TIMEOUT_MS)
    assert page.locator("#traces tbody tr").count() == 2
    page.fill("input[name=q]", "rome")
    page.click("#trace-filters button[type=submit]")
    page.wait_for_url("**q=rome**", timeout=TIMEOUT_MS)
    page.wait_for_selector("#traces tbody tr", timeout=TIMEOUT_MS)
    assert page.locator("#traces tbody tr").count() == 1
    page.locator("#traces tbody tr a", has_text="ask").click()
    page.wait_for_url(f"**/traces/{second}**", timeout=TIMEOUT_MS)
    page.wait_for_selector("#waterfall .bar", timeout=TIMEOUT_MS)

    bars = page.locator("#waterfall .bar")
    assert bars.count() == 2
    lane = page.locator("#waterfall .lane").first.bounding_box()
    root_bar, chat_bar = bars.nth(0).bounding_box(), bars.nth(1).bounding_box()
    assert root_bar["width"] == pytest.approx(lane["width"], abs=2)  # the root spans the trace
    assert chat_bar["width"] == pytest.approx(lane["width"] / 2, abs=2)  # 400 of 800 ms
    assert chat_bar["x"] - lane["x"] == pytest.approx(lane["width"] / 4, abs=2)  # at +200 ms
    generation = page.locator(".observation", has_text="gpt-4o-mini")
    assert generation.locator(".message.role-user").inner_text().endswith("And Rome?")
    assert generation.locator(".message.role-assistant").inner_text().endswith("answer 1")

    page.get_by_role("link", name="trip").first.click()
    page.wait_for_url("**/sessions/trip**", timeout=TIMEOUT_MS)
    page.wait_for_selector(".turn", timeout=TIMEOUT_MS)
    assert page.locator(".turn").count() == 2

    page.goto(live_server.url + "/tracing", timeout=TIMEOUT_MS)
    page.wait_for_selector("#cost-chart .main-svg", timeout=TIMEOUT_MS)  # plotly drew it
    assert "gpt-4o-mini" in page.locator("#by-model").inner_text()
