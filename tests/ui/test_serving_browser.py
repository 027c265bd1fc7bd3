"""The endpoint pages in a real headless Chromium against a live server: read what serves where,
roll back through the confirmation page, and find the change in the history."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from passerelle.core.settings import Settings
from tests.conftest import LiveServer
from tests.ui.test_serving_pages import REQUESTS, Served, endpoint_of, seed_serving

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


@pytest.fixture
def database_url() -> None:
    """SQLite only: test_serving_pages.py covers PostgreSQL; here the browser is under test."""
    return None


@pytest.fixture
def served(app: FastAPI, settings: Settings) -> Served:
    return seed_serving(app, settings.home)


def split_widths(page: Any, scope: str) -> list[float]:
    """Rendered widths of the traffic bar's segments, as a share of the bar (percent)."""
    return page.locator(f"{scope} .split-bar").first.evaluate(
        """bar => [...bar.querySelectorAll('.split-seg')].map(
             seg => Math.round(1000 * seg.getBoundingClientRect().width
                               / bar.getBoundingClientRect().width) / 10)"""
    )


def test_roll_back_a_canary_through_the_confirmation_page(
    page: Any, app: FastAPI, live_server: LiveServer, served: Served
) -> None:
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Endpoints", exact=True).click()
    page.wait_for_url("**/endpoints")
    card = page.locator("section.endpoint[data-endpoint='churn']")
    assert card.is_visible()
    widths = split_widths(page, "section.endpoint[data-endpoint='churn']")
    assert widths == pytest.approx([80, 20], abs=1)
    roles = card.locator("table.versions tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.version, r.dataset.role])"
    )
    assert roles == [["2", "primary"], ["3", "canary"], ["1", "shadow"]]
    requests = card.locator("table.versions td[data-stat='requests']").all_inner_texts()
    assert int(requests[0]) + int(requests[1]) == REQUESTS and int(requests[2]) == REQUESTS
    assert card.locator("[data-kpi='requests']").inner_text() == str(REQUESTS)

    card.get_by_role("button", name="Roll back…").click()
    page.wait_for_selector("#confirm-form")
    assert page.inner_text("h1") == "Roll back churn?"
    assert page.inner_text("#confirm-question") == (
        "The canary, version 3, stops receiving requests at once; version 2 answers all of them."
    )
    assert split_widths(page, "#traffic-now") == pytest.approx([80, 20], abs=1)
    assert split_widths(page, "#traffic-after") == pytest.approx([100], abs=1)
    assert endpoint_of(app)["canary_version"] == 3  # nothing changed yet

    page.fill("#confirm-reason", "p99 doubled on v3")
    page.click("#confirm-button")
    page.wait_for_url("**/endpoints/churn?project=default&changed=5#history")
    assert page.inner_text("#notice") == (
        "Rolled back: v2 80% · canary v3 20% · shadow v1 → v2 · shadow v1."
    )
    first = page.locator("#history-table tbody tr").first
    assert first.get_attribute("data-action") == "rollback"
    cells = first.locator("td").all_inner_texts()
    assert cells[1:] == [
        "anonymous",
        "Rolled back",
        "v2 80% · canary v3 20% · shadow v1 → v2 · shadow v1",
        "p99 doubled on v3",
        "5",
    ]
    assert split_widths(page, "#traffic") == pytest.approx([100], abs=1)
    assert page.locator("#change").get_by_role("button", name="Promote v3…").count() == 0
    # the charts are drawn by plotly, one line per version that answered
    page.wait_for_selector("#requests-chart.js-plotly-plot svg.main-svg", timeout=TIMEOUT_MS)
    lines = page.locator("#requests-chart g.scatterlayer path.js-line").count()
    assert lines == len([v for v in (1, 2, 3) if v == 1 or served.answered[v]])
    assert endpoint_of(app)["canary_version"] is None

    page.get_by_role("link", name="Endpoints", exact=True).first.click()
    page.wait_for_url("**/endpoints")
    latest = page.locator("section.endpoint[data-endpoint='churn'] .recent li").first.inner_text()
    assert "Rolled back" in latest and "p99 doubled on v3" in latest


def test_cancelling_a_promotion_changes_nothing(
    page: Any, app: FastAPI, live_server: LiveServer, served: Served
) -> None:
    page.goto(live_server.url + "/endpoints/churn?project=default")
    page.locator("#change").get_by_role("button", name="Promote v3…").click()
    page.wait_for_selector("#confirm-form")
    assert page.inner_text("h1") == "Promote the canary of churn?"
    page.click("#cancel")
    page.wait_for_url("**/endpoints/churn?project=default")
    state = endpoint_of(app)
    assert (state["primary_version"], state["canary_version"]) == (2, 3)
