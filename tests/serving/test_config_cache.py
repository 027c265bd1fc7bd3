"""The endpoint config cached per process, read on the event loop without a database call."""

from __future__ import annotations

import asyncio
import types

import pytest

from passerelle.core.auth import ANONYMOUS_ADMIN
from passerelle.core.db import refuse_calls_on_this_loop
from passerelle.serving import runtime as runtime_module
from tests.serving.conftest import Served


def test_a_fresh_cached_config_is_served_without_a_query_even_as_it_expires(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.change(action="deploy", version=1)
    runtime = served.app.state.serving
    runtime.config("churn", ANONYMOUS_ADMIN)  # cached now
    cached_at = runtime._configs[("churn", None)][0]
    # the clock crosses the refresh age right after the freshness check: any second look at
    # the cache would find it stale and query the database, on the event loop
    readings = iter([cached_at + runtime_module.REFRESH_SECONDS / 2])
    clock = types.SimpleNamespace(monotonic=lambda: next(readings, cached_at + 60))
    monkeypatch.setattr(runtime_module, "time", clock)

    async def on_the_servers_loop() -> dict | None:
        lift_ban = refuse_calls_on_this_loop(served.app.state.engine)
        try:
            return runtime.cached_config("churn", ANONYMOUS_ADMIN)
        finally:
            lift_ban()

    config = asyncio.run(on_the_servers_loop())
    assert config is not None and config["primary_version"] == 1
    # once stale, the cached copy is not served: the caller loads it off the loop
    assert asyncio.run(on_the_servers_loop()) is None
