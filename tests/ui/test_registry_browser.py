"""The registry pages in a real headless Chromium against a live server: browse from the models
list to a version, read its lineage graph, and move an alias through the confirmation page."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from passerelle.core.settings import Settings
from tests.conftest import LiveServer
from tests.ui.test_registry_pages import Registry, alias_of, seed_registry

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


@pytest.fixture
def database_url() -> None:
    """SQLite only: test_registry_pages.py covers PostgreSQL; here the browser is under test."""
    return None


@pytest.fixture
def registry(app: FastAPI, settings: Settings) -> Registry:
    return seed_registry(app, settings.home)


def test_browse_from_the_models_list_to_a_version_and_its_lineage(
    page: Any, live_server: LiveServer, registry: Registry
) -> None:
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Models", exact=True).click()
    page.wait_for_url("**/models")
    assert page.locator("#models tbody tr").count() == 1
    assert page.inner_text("#models td.aliases") == "@challenger v3@champion v2"

    page.get_by_role("link", name="churn", exact=True).click()
    page.wait_for_url("**/models/churn?project=default")
    versions = page.locator("#versions .timeline-item").evaluate_all(
        "items => items.map(li => li.dataset.version)"
    )
    assert versions == ["3", "2", "1"]
    # the metric chart is drawn by plotly: one line through the three versions
    page.wait_for_selector("#versions-chart.js-plotly-plot svg.main-svg", timeout=TIMEOUT_MS)
    assert page.locator("#versions-chart.js-plotly-plot g.scatterlayer path.js-line").count() == 1
    assert page.locator("#versions-chart.js-plotly-plot g.scatterlayer .point").count() == 3
    page.get_by_role("link", name="f1", exact=True).click()
    page.wait_for_url("**metric=f1")
    page.wait_for_selector("#versions-chart.js-plotly-plot", timeout=TIMEOUT_MS)
    assert page.locator("#versions-chart .gtitle").text_content() == "f1"

    page.get_by_role("link", name="Version 2", exact=True).click()
    page.wait_for_url("**/models/churn/versions/2?project=default")
    graph = page.locator("#lineage-svg")
    assert graph.is_visible()
    box = graph.bounding_box()
    assert box is not None and box["width"] > 800 and box["height"] > 80
    text = graph.text_content() or ""
    assert "customers" in text and registry.dataset_digest[:12] in text
    assert "lr-c1" in text and "churn v2" in text and "@champion" in text
    assert graph.locator("path.edge").count() == 3
    # the boxes really are laid out left to right, in the order of the lineage
    xs = graph.locator("g.node rect").evaluate_all(
        "rects => rects.map(r => r.getBoundingClientRect().x)"
    )
    assert xs == sorted(xs) and len(set(xs)) == 5
    assert page.locator("#signature-table tbody tr").count() == 3

    graph.locator("g.node-run a").click()
    page.wait_for_url(f"**/runs/{registry.runs[1]}")
    assert "customers" in page.inner_text("#datasets")


def test_move_an_alias_through_the_confirmation_page(
    page: Any, app: FastAPI, live_server: LiveServer, registry: Registry
) -> None:
    page.goto(live_server.url + "/models/churn/versions/3?project=default")
    page.fill("#alias-name", "champion")
    page.fill("#alias-reason", "better recall on the March holdout")
    page.click("#set-alias")
    page.wait_for_selector("#confirm-form")
    assert (
        page.inner_text("#confirm-question") == "Move alias champion from version 2 to version 3?"
    )
    cards = page.locator(".version-card .version-card-title a").all_inner_texts()
    assert cards == ["Version 2", "Version 3"]
    assert page.input_value("#confirm-reason") == "better recall on the March holdout"
    assert alias_of(app, "champion") == 2  # nothing moved yet

    page.click("#confirm-button")
    page.wait_for_url("**/models/churn?project=default&changed=champion#aliases")
    assert page.inner_text("#notice") == "Alias champion now points at version 3."
    row = page.locator("#aliases-table tr[data-alias='champion']")
    assert row.locator("td").nth(1).inner_text() == "v3"
    assert "@champion" in page.inner_text("#versions .timeline-item[data-version='3']")
    latest = page.locator("#alias-history li").first.inner_text()
    assert "v2 → v3" in latest and "better recall on the March holdout" in latest
    assert alias_of(app, "champion") == 3

    # a removal asks too, and cancelling it leaves the alias where it is
    row.get_by_role("button", name="Remove").click()
    page.wait_for_selector("#confirm-form")
    assert "Remove alias champion from version 3" in page.inner_text("#confirm-question")
    page.click("#cancel")
    page.wait_for_url("**/models/churn/versions/3?project=default")
    assert alias_of(app, "champion") == 3
