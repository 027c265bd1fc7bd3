"""The UI in a real headless Chromium against a live server: clicks, charts, filters, compare."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from passerelle.app import create_app
from passerelle.core import auth
from passerelle.core.db import session_scope
from passerelle.core.settings import Settings
from tests.conftest import LiveServer
from tests.ui.conftest import COMMIT, NOTES, Seeded

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


@pytest.fixture
def database_url() -> None:
    """SQLite only: test_pages.py runs the pages on PostgreSQL; here the browser is under test."""
    return None


def row_names(page: Any) -> list[str]:
    return page.locator("#runs-table tbody td.run-name a").all_inner_texts()


def open_experiment(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="churn-model").click()
    page.wait_for_selector("#runs-table")


def test_sort_by_metric_and_filter_runs(page: Any, live_server: LiveServer, seeded: Seeded) -> None:
    open_experiment(page, live_server)
    assert page.url.endswith(f"/experiments/{seeded.experiment_id}")
    before = row_names(page)
    assert before == ["fold-0", "lr-l1-c1", "lr-l2-c10", "lr-l1-c0.1", "lr-l2-c1"]

    page.locator("#runs-table thead a.sort", has_text="f1").click()
    page.wait_for_selector("#runs-table th.sorted[aria-sort=descending]")
    by_f1 = ["lr-l2-c10", "lr-l2-c1", "lr-l1-c0.1", "lr-l1-c1", "fold-0"]
    assert row_names(page) == by_f1
    assert row_names(page) != before
    values = page.evaluate(
        """() => {
          const index = document.querySelector('#runs-table th[data-column="metric:f1"]').cellIndex;
          return [...document.querySelectorAll('#runs-table tbody tr')]
            .map(row => row.cells[index].dataset.value);
        }"""
    )
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers, reverse=True)

    page.locator("#runs-table thead a.sort", has_text="f1").click()
    page.wait_for_selector("#runs-table th.sorted[aria-sort=ascending]")
    assert row_names(page)[:4] == by_f1[:4][::-1]

    page.fill("#filter", "metrics.f1 > 0.8 and params.penalty = 'l2'")
    page.press("#filter", "Enter")
    page.wait_for_url("**filter=**")
    assert sorted(row_names(page)) == ["lr-l2-c1", "lr-l2-c10"]
    assert "ASC" in page.url  # the sort survives the filter

    page.fill("#filter", "metrics.f1 >")
    page.click("#apply-filter")
    page.wait_for_selector("#filter-error")
    assert "malformed filter" in page.inner_text("#filter-error")
    assert row_names(page) == []


def test_run_page_draws_charts_and_shows_lineage_and_previews(
    page: Any, live_server: LiveServer, seeded: Seeded
) -> None:
    open_experiment(page, live_server)
    page.get_by_role("link", name="lr-l2-c1", exact=True).click()
    page.wait_for_url(f"**/runs/{seeded.runs['lr-l2-c1']}")
    page.wait_for_selector("#charts .js-plotly-plot svg.main-svg", timeout=TIMEOUT_MS)
    assert page.locator("#charts .js-plotly-plot").count() == 2
    # a drawn line, not just an empty frame
    assert page.locator("#charts .js-plotly-plot g.scatterlayer path.js-line").count() == 2

    assert COMMIT in page.inner_text("#lineage-code")
    assert "main" in page.inner_text("#lineage-code")
    assert "3.11.9" in page.inner_text("#lineage-environment")
    assert "customers" in page.inner_text("#lineage-data")

    page.locator("a.artifact-link", has_text="notes.txt").click()
    page.wait_for_selector("#text-preview")
    assert page.inner_text("#text-preview").strip() == NOTES.strip()

    page.locator("a.artifact-link", has_text="confusion.png").click()
    image = page.wait_for_selector("img.image-preview")
    page.wait_for_function("img => img.complete", arg=image)
    assert image.evaluate("img => img.naturalWidth") == 2

    page.locator("#datasets summary").click()
    assert "c019" in page.inner_text("#datasets .preview-table")


def test_select_two_runs_and_compare(page: Any, live_server: LiveServer, seeded: Seeded) -> None:
    open_experiment(page, live_server)
    button = page.locator("#compare-button")
    assert button.is_disabled()
    for name in ("lr-l2-c1", "lr-l1-c1"):
        page.check(f"#runs-table tr[data-run-id='{seeded.runs[name]}'] input[name=runs]")
    assert page.inner_text("#selection-count") == "2 selected"
    assert button.is_enabled()
    button.click()
    page.wait_for_url("**/compare?**")

    headers = page.locator("#compare-table thead th a").all_inner_texts()
    assert sorted(headers) == ["lr-l1-c1", "lr-l2-c1"]
    assert page.locator("#compare-table tr.differs[data-key='penalty']").count() == 1

    page.wait_for_selector("#parcoords.js-plotly-plot svg g.parcoords", timeout=TIMEOUT_MS)
    headings = page.locator("#parcoords text.axis-title").all_text_contents()
    assert headings == ["run", "C", "penalty", "accuracy", "f1"]
    assert page.locator("#parcoords canvas").count() >= 1  # lines are drawn with WebGL
    overlaid = page.locator("#charts .js-plotly-plot")
    assert overlaid.count() == 2
    assert overlaid.first.locator("g.scatterlayer path.js-line").count() == 2  # one per run


ADMIN_KEY = "browser-admin-key-0123456789"


@pytest.fixture
def secured_server(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    app = create_app(
        Settings(home=tmp_path / "secured", auth="on", admin_key=ADMIN_KEY, _env_file=None)
    )
    with session_scope(app.state.sessions) as session:
        project = auth.ensure_project(session, "default")
        _, secret = auth.create_key(session, name="carla", role="viewer", project_id=project.id)
    server = LiveServer(app).start()
    yield server, secret
    server.stop()
    app.state.engine.dispose()


def test_sign_in_with_a_key_then_browse(page: Any, secured_server: tuple[LiveServer, str]) -> None:
    server, secret = secured_server
    page.goto(server.url + "/")
    page.wait_for_url("**/login?next=%2F")
    page.fill("#key", "psl_not-a-key")
    page.click("button[type=submit]")
    assert "invalid or revoked API key" in page.inner_text("[role=alert]")
    page.fill("#key", secret)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
    assert page.inner_text(".who") == "carla"
    assert page.evaluate("document.cookie") == ""  # HttpOnly: invisible to scripts
    page.click("text=Sign out")
    page.wait_for_url("**/login")
    page.goto(server.url + "/")
    assert "/login" in page.url
