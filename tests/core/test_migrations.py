"""The schema comes from Alembic migrations only, and they agree with the models."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

import passerelle.core.db as db
from passerelle.app import create_app
from passerelle.core.db import make_engine, migrate
from passerelle.core.settings import Settings
from passerelle.schema import metadata
from tests.api._helpers import create_run, get_run


def script_directory() -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    return ScriptDirectory.from_config(cfg)


def test_migrations_form_one_line():
    script = script_directory()
    heads = script.get_heads()
    assert len(heads) == 1, f"several migration heads, merge them: {heads}"
    assert len(script.get_bases()) == 1


def test_models_and_migrations_agree(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
        migrate(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, metadata)
            assert context.get_current_revision() == script_directory().get_current_head()
        assert diff == [], "models and migrations differ; write a migration:\n" + "\n".join(
            map(str, diff)
        )
    finally:
        engine.dispose()


def test_every_model_table_is_created(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        assert set(metadata.tables) <= tables
        assert "alembic_version" in tables
    finally:
        engine.dispose()


def test_migrate_twice_is_a_no_op(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO projects (name, description, created_at) VALUES ('p', '', 1)")
            )
        migrate(engine)
        with engine.connect() as conn:
            names = conn.execute(text("SELECT name FROM projects")).scalars().all()
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert names == ["p"]
        assert len(versions) == 1
    finally:
        engine.dispose()


def test_replicas_starting_together_migrate_once(empty_database_url):
    """Several processes may start on a fresh database at once (replicas, a server and a
    notebook): every one of them must come up."""
    engines = [make_engine(empty_database_url) for _ in range(4)]
    try:
        assert _start_together(engines, migrate) == []
        with engines[0].connect() as conn:
            context = MigrationContext.configure(conn)
            assert context.get_current_revision() == script_directory().get_current_head()
    finally:
        for e in engines:
            e.dispose()


def _start_together(engines: list, work) -> list[BaseException]:
    """Run ``work(engine)`` on every engine at once (threads behind a barrier); the errors."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(engines))

    def start(engine) -> None:
        try:
            barrier.wait()
            work(engine)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def test_replicas_starting_together_on_a_fresh_sqlite_file_all_come_up(tmp_path):
    """Switching a fresh file to write-ahead logging needs it alone, and SQLite refuses a
    connection that tries meanwhile at once ("database is locked") instead of letting it wait:
    about one start in ten failed before connections retried. Twenty starts of four replicas."""
    for attempt in range(20):
        engines = [make_engine(f"sqlite:///{tmp_path / f'fresh-{attempt}.db'}") for _ in range(4)]
        try:
            errors = _start_together(engines, migrate)
            assert errors == [], f"start {attempt}: {errors[0]}"
            with engines[0].connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        finally:
            for e in engines:
                e.dispose()


def test_create_app_twice_on_the_same_home(tmp_path, database_url):
    settings = Settings(home=tmp_path / "home", database_url=database_url, _env_file=None)
    first = create_app(settings)
    try:
        with TestClient(first) as client:
            run = create_run(client)
            client.post(f"/api/v1/runs/{run['id']}/params", json={"params": {"a": 1}})
            stored = get_run(client, run["id"])
    finally:
        first.state.engine.dispose()
    second = create_app(settings)
    try:
        with TestClient(second) as client:
            assert get_run(client, run["id"]) == stored
            projects = client.get("/api/v1/projects").json()
            assert [p["name"] for p in projects] == ["default"]
    finally:
        second.state.engine.dispose()
