"""``strict_event_loop``: a database call made on the server's event loop fails at once.

Such a call once waited out SQLite's 30-second lock timeout: it blocked the loop while the
writer holding the lock waited on that loop to commit.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from passerelle.core.db import make_engine, refuse_calls_on_this_loop


def test_statements_on_the_loop_fail_and_off_it_succeed(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")

    def one() -> int:
        with engine.connect() as conn:
            return conn.execute(text("SELECT 1")).scalar_one()

    async def scenario() -> tuple[int, int]:
        lift = refuse_calls_on_this_loop(engine)
        with pytest.raises(RuntimeError, match="event loop"):
            one()
        in_a_thread = await asyncio.to_thread(one)
        lift()
        return in_a_thread, one()

    try:
        assert asyncio.run(scenario()) == (1, 1)
        assert one() == 1  # another loop, or none, was never refused
    finally:
        engine.dispose()


def test_another_loop_is_not_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")

    async def banned_elsewhere() -> None:
        refuse_calls_on_this_loop(engine)

    async def here() -> int:
        with engine.connect() as conn:
            return conn.execute(text("SELECT 2")).scalar_one()

    try:
        asyncio.run(banned_elsewhere())
        assert asyncio.run(here()) == 2
    finally:
        engine.dispose()
