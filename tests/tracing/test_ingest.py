"""The ingester on its own (a migrated SQLite file, no app): idempotent passes, files left by a
dead process, rows the database refuses set aside instead of blocking the rest."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from passerelle.core.auth import ensure_project
from passerelle.core.db import make_engine, make_session_factory, migrate, session_scope
from passerelle.tracing.ingest import TraceIngester
from passerelle.tracing.mapping import map_request
from passerelle.tracing.models import Observation, Trace
from tests.tracing._otlp import request, span, span_id, trace_id


@pytest.fixture
def ingester(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        project_id = ensure_project(session, "default").id
    ing = TraceIngester(tmp_path / "spool", sessions, fsync=False, interval=60)
    ing.project_id = project_id  # type: ignore[attr-defined]
    yield ing
    engine.dispose()


def rows_for(project_id: int, n: int = 3) -> tuple[str, list[dict]]:
    t, root = trace_id(), span_id()
    spans = [
        span(
            "root",
            t,
            root,
            attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 100},
        )
    ]
    spans += [span(f"child {i}", t, span_id(), root) for i in range(n - 1)]
    batch = map_request(request(*spans), project_id, max_attribute_bytes=1024)
    return t.hex(), batch.rows


def counts(ing: TraceIngester, tid: str) -> tuple[int, int, int]:
    with ing.sessions() as session:
        n = session.scalar(select(func.count()).select_from(Observation))
        trace = session.get(Trace, tid)
        return n, trace.observation_count, trace.input_tokens


def test_a_spool_file_ingested_twice_counts_once(ingester, tmp_path):
    tid, rows = rows_for(ingester.project_id)
    ingester.append(rows)
    assert ingester.pending == 3
    ingester.spool.seal()
    (sealed,) = (tmp_path / "spool").glob("*.sealed")
    shutil.copy(sealed, tmp_path / "copy")
    assert ingester.drain() == 3 and ingester.pending == 0
    assert not sealed.exists()
    shutil.copy(tmp_path / "copy", sealed)  # killed after the commit, before the removal
    assert ingester.drain() == 3
    assert counts(ingester, tid) == (3, 3, 100)


def test_files_of_a_dead_process_are_recovered(ingester):
    tid, rows = rows_for(ingester.project_id, n=2)
    orphan = ingester.spool_dir / "spans-999999-deadbeef0000.spool"  # no process holds it
    orphan.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + b'{"torn')
    ingester.sync()  # the first read recovers
    assert not orphan.exists()
    assert counts(ingester, tid) == (2, 2, 100)


def test_rows_the_database_refuses_are_set_aside(ingester):
    tid, rows = rows_for(ingester.project_id)
    broken = dict(rows[1], name=None)  # NOT NULL: the database refuses the row
    ingester.append([rows[0], broken, rows[2]])
    ingester.drain()
    n, _, _ = counts(ingester, tid)
    assert n == 2
    (failed,) = ingester.spool_dir.glob("failed-*.jsonl")
    kept = [orjson.loads(line) for line in failed.read_bytes().splitlines()]
    assert [k["row"]["id"] for k in kept] == [rows[1]["id"]]
    assert kept[0]["error"]
