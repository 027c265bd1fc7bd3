"""The drift page and the offline report in a real headless Chromium: the charts are drawn
under the page's content policy, and the report draws them from a file with no server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import passerelle as psl
from passerelle.core.ids import now_ms
from passerelle.monitoring.report import render, write_atomically
from tests.conftest import LiveServer
from tests.monitoring.drift_fixtures import Deployed, deployed, features
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS

__all__ = ["deployed"]  # the fixture, imported for pytest
pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


@pytest.fixture
def database_url() -> None:
    """SQLite only: the service tests cover PostgreSQL; here the browser is under test."""
    return None


@pytest.fixture
def tab(tmp_path: Path) -> Iterator[tuple[Any, list[str]]]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium`")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            env={**os.environ, "HOME": str(tmp_path)},
            viewport={"width": 1400, "height": 900},
        )
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        try:
            yield page, problems
        finally:
            context.close()


def test_drift_page_and_offline_report_draw_their_charts(
    deployed: Deployed, tab: tuple[Any, list[str]], tmp_path: Path
) -> None:
    page, problems = tab
    psl.reference("churn", version=1, client=deployed.client)
    deployed.predict(features(300, seed=4, income_shift=10))
    server = LiveServer(deployed.app).start()
    try:
        page.goto(f"{server.url}/endpoints/churn/drift?since=24h")
        page.wait_for_selector("#over-time .main-svg", timeout=TIMEOUT_MS)
        assert "income" in page.locator("#drifted").inner_text()
        drawn = page.locator(".js-plotly-plot").count()
        assert drawn >= 4  # statistics over time, and the distribution of every column
        assert page.locator("#distributions .js-plotly-plot").count() == 3  # age, income, output
    finally:
        server.stop()
    assert problems == []  # no script error, no content-policy violation

    with deployed.app.state.sessions() as session:
        from passerelle.core.auth import ANONYMOUS_ADMIN
        from passerelle.monitoring.drift import service

        body = service.drift(
            session, ANONYMOUS_ADMIN, deployed.app.state.store, deployed.app.state.serving, "churn"
        )
    report = tmp_path / "report.html"
    write_atomically(report, render(body, generated_at=now_ms()))
    page.context.set_offline(True)
    page.goto(report.as_uri())
    page.wait_for_selector("#distributions .main-svg", timeout=TIMEOUT_MS)
    assert page.locator("#distributions .js-plotly-plot").count() == 3
    assert page.locator("#over-time .js-plotly-plot").count() >= 1
    assert problems == []
