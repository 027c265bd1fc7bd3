"""The metadata database: one engine per app, SQLite (WAL) by default, PostgreSQL by URL.

Schema changes go through Alembic migrations only; ``migrate`` runs them at start-up, under an
advisory lock on PostgreSQL so that replicas starting together do not race.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Integer, MetaData, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# An auto-incrementing 64-bit key: SQLite only auto-increments a column typed INTEGER.
BigIntId = BigInteger().with_variant(Integer, "sqlite")

MIGRATIONS_LOCK_ID = 0x7061737365  # "passe": any constant shared by every replica


class Base(DeclarativeBase):
    """Declarative base shared by every domain's ``models.py``."""

    metadata = MetaData(naming_convention=NAMING)


def make_engine(url: str) -> Engine:
    """Create the engine with the settings each backend needs to be safe under concurrency."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=16,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "savepoint", _sqlite_begin_before_savepoint)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=16)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    _enter_wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _enter_wal(cur: Any, wait_seconds: float = 30.0) -> None:
    """Switch the file to write-ahead logging. The switch needs the file to itself, and SQLite
    answers "database is locked" at once, without waiting out the busy timeout, to a connection
    that tries while others open the same fresh file (replicas starting together). The mode is
    stored in the file: retry until this connection or another has switched it."""
    deadline, pause = time.monotonic() + wait_seconds, 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def _sqlite_begin_before_savepoint(conn: Any, _name: Any) -> None:
    """Open the transaction a SAVEPOINT belongs to.

    The sqlite3 driver sends BEGIN only before its first INSERT/UPDATE/DELETE, so a SAVEPOINT
    that comes after reads only started the transaction itself, and releasing it committed:
    the work of a nested block survived a failure later in the same request (on PostgreSQL it
    was rolled back). A savepoint always precedes writes, so take the write lock now.
    """
    dbapi_conn = conn.connection.dbapi_connection
    if not dbapi_conn.in_transaction:
        dbapi_conn.execute("BEGIN IMMEDIATE")


def refuse_calls_on_this_loop(engine: Engine) -> Callable[[], None]:
    """Make every statement sent from the running event loop (the server's) fail; return the
    function that lifts the ban. Call it from a coroutine on that loop.

    A blocking statement on the loop freezes every other request; worse, on SQLite it may wait
    for a write lock held by a request whose commit is queued behind it on that same loop, until
    the busy timeout turns it into "database is locked". The ban makes such a call fail at once,
    in tests, wherever it is.
    """
    loop = asyncio.get_running_loop()

    def refuse(*_args: Any) -> None:
        if asyncio._get_running_loop() is loop:
            raise RuntimeError("database call on the server's event loop: use run_in_threadpool")

    event.listen(engine, "before_cursor_execute", refuse)
    return lambda: event.remove(engine, "before_cursor_execute", refuse)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A short transaction: committed on success, rolled back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent, safe for concurrent replicas)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATIONS_LOCK_ID})
        elif conn.dialect.name == "sqlite":
            # The sqlite3 driver opens no transaction before DDL, so two processes starting on
            # a fresh file both created the tables. Take the write lock first: the second one
            # waits (busy_timeout), then finds the schema current.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
