"""From the durable spool into SQL: the receiver acknowledges once the spans are spooled, and
this ingester moves them into the ``observations`` and ``traces`` tables in large batches.

Every step is idempotent, so a crash anywhere only means doing a step again: observations are
upserted on (trace id, span id), so a re-sent span or a spool file ingested twice (killed between
the commit and the removal of the file) leaves one row; trace summaries are rebuilt from the
stored observations rather than added to. On start-up, files left by a dead process (nobody
holds their lock) are ingested like any other.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from passerelle.core.ids import now_ms
from passerelle.core.spool import Spool, read_records, recoverable
from passerelle.tracing.costs import price_table
from passerelle.tracing.models import Observation, Trace

log = logging.getLogger("passerelle.tracing")
SPOOL_NAME = "spans"
CHUNK = 5000
IN_LIST = 500
OBSERVATION_UPDATE = [c.name for c in Observation.__table__.columns if not c.primary_key]
TRACE_UPDATE = [c.name for c in Trace.__table__.columns if not c.primary_key]


class TraceIngester:
    """Owns this process's span spool and drains every finished spool file into SQL."""

    def __init__(
        self, spool_dir: Path, sessions: sessionmaker[Session], *, fsync: bool, interval: float
    ) -> None:
        self.spool_dir = Path(spool_dir)
        self.spool = Spool(self.spool_dir, SPOOL_NAME, fsync=fsync)
        self.sessions = sessions
        self.interval = interval
        self._drain_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._appended = 0  # spans this process acknowledged
        self._ingested = 0  # of those, how many a finished drain has taken in
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._recovered = False

    # -- receiving side --------------------------------------------------------------------
    def append(self, rows: list[dict[str, Any]]) -> None:
        """Durable once this returns (one ``write`` of the whole batch)."""
        if rows:
            self.spool.append(rows)
            with self._count_lock:
                self._appended += len(rows)

    @property
    def pending(self) -> int:
        """Spans acknowledged by this process and not yet in the database."""
        return self._appended - self._ingested

    # -- ingesting side --------------------------------------------------------------------
    def drain(self) -> int:
        """Ingest everything spooled so far (this process's and any dead process's files)."""
        with self._drain_lock:
            with self._count_lock:
                self.spool.seal()
                sealed = self._appended
            done = 0
            for path in recoverable(self.spool_dir, SPOOL_NAME):
                try:
                    done += self._ingest_file(path)
                except Exception:  # keep the file: the next pass retries it
                    log.exception("could not ingest spool file %s", path)
            self._recovered = True
            self._ingested = max(self._ingested, sealed)
            return done

    def sync(self) -> None:
        """Make what this process acknowledged queryable now (reads call it first); the first
        call also recovers what a dead process left."""
        if self._ingested < self._appended or not self._recovered:
            self.drain()  # waits for a pass in progress, which may hold our spans

    def ensure_started(self) -> None:
        """Start the background ingestion (idempotent): at start-up, or on the first export
        of an app whose lifespan does not run (embedded use)."""
        if self._thread is not None or self._stop.is_set():
            return
        with self._count_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="passerelle-span-ingest", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        """Stop the background thread and ingest what is left (a clean shutdown leaves an
        empty spool)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.drain()

    def _run(self) -> None:
        first = True
        while first or not self._stop.wait(self.interval):
            first = False
            try:
                self.drain()
            except Exception:  # logged; the loop must not die
                log.exception("span ingestion pass failed")

    def _ingest_file(self, path: Path) -> int:
        """Ingest one sealed file under an exclusive lock, so that the worker processes of one
        server never ingest the same file at once (the lock dies with its process)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return 0  # another process finished it
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # another process is ingesting it
            if not path.exists():
                return 0
            records = list(read_records(path))
            for start in range(0, len(records), CHUNK):
                self._ingest_rows(records[start : start + CHUNK])
            path.unlink(missing_ok=True)
            return len(records)
        finally:
            os.close(fd)

    def _ingest_rows(self, rows: list[dict[str, Any]]) -> None:
        try:
            with self.sessions() as session, session.begin():
                write_observations(session, rows)
        except Exception:
            log.exception("a batch of %d spans failed; storing them one by one", len(rows))
            self._ingest_one_by_one(rows)

    def _ingest_one_by_one(self, rows: list[dict[str, Any]]) -> None:
        """Isolate the rows the database refuses: the rest are stored, those are set aside in
        a ``failed-*.jsonl`` file of the spool folder (never silently dropped)."""
        failed = []
        for row in rows:
            try:
                with self.sessions() as session, session.begin():
                    write_observations(session, [row])
            except Exception as exc:
                failed.append({"error": str(exc)[:500], "row": row})
        if failed:
            target = self.spool_dir / f"failed-{now_ms()}.jsonl"
            with open(target, "ab") as fh:
                fh.writelines(orjson.dumps(f, default=str) + b"\n" for f in failed)
            log.error("%d spans could not be stored; kept in %s", len(failed), target)


def _insert(session: Session, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(model)


def write_observations(session: Session, rows: list[dict[str, Any]]) -> None:
    """Upsert observations (costs filled in from the price table) and rebuild their traces."""
    _fill_costs(session, rows)
    unique = list({(r["trace_id"], r["id"]): r for r in rows}.values())
    ins = _insert(session, Observation.__table__)
    session.execute(
        ins.on_conflict_do_update(
            index_elements=["trace_id", "id"],
            set_={c: ins.excluded[c] for c in OBSERVATION_UPDATE},
        ),
        unique,
    )
    trace_ids = sorted({r["trace_id"] for r in unique})
    for start in range(0, len(trace_ids), IN_LIST):
        rebuild_traces(session, trace_ids[start : start + IN_LIST])


def _fill_costs(session: Session, rows: list[dict[str, Any]]) -> None:
    by_project: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("cost") is None and row.get("model"):
            by_project[row["project_id"]].append(row)
    for project_id, needing in by_project.items():
        table = price_table(session, project_id)
        for row in needing:
            cost = table.cost(
                row["model"], row["input_tokens"], row["output_tokens"], row["cached_tokens"]
            )
            if cost is not None:
                row["cost"], row["cost_source"] = cost, "computed"


def rebuild_traces(session: Session, trace_ids: Iterable[str]) -> None:
    """Recompute each trace's summary from all its stored observations."""
    ids = list(trace_ids)
    o = Observation
    totals = session.execute(
        select(
            o.trace_id,
            func.max(o.project_id),
            func.min(o.start_time),
            func.max(o.end_time),
            func.count(),
            func.sum(case((o.level == "ERROR", 1), else_=0)),
            func.coalesce(func.sum(o.input_tokens), 0),
            func.coalesce(func.sum(o.output_tokens), 0),
            func.coalesce(func.sum(o.total_tokens), 0),
            func.coalesce(func.sum(o.cost), 0.0),
        )
        .where(o.trace_id.in_(ids))
        .group_by(o.trace_id)
    ).all()
    details: dict[str, list[Any]] = defaultdict(list)
    for row in session.execute(
        select(
            o.trace_id,
            o.parent_id,
            o.name,
            o.start_time,
            o.latency_ms,
            o.input,
            o.output,
            o.trace_attributes,
        )
        .where(o.trace_id.in_(ids))
        .where(o.parent_id.is_(None) | o.trace_attributes.is_not(None))
        .order_by(o.start_time)
    ):
        details[row.trace_id].append(row)
    now = now_ms()
    rows = []
    for trace_id, project_id, start, end, count, errors, tin, tout, ttotal, cost in totals:
        found = details.get(trace_id, [])
        roots = [r for r in found if r.parent_id is None]
        root = roots[0] if roots else None
        attrs: dict[str, Any] = {}
        for r in reversed([*roots, *[r for r in found if r.parent_id is not None]]):
            attrs.update(r.trace_attributes or {})  # the root's attributes win
        rows.append(
            {
                "id": trace_id,
                "project_id": project_id,
                "name": _text(attrs.get("name") or (root.name if root else "")) or "",
                "session_id": _text(attrs.get("session_id")),
                "user_id": _text(attrs.get("user_id")),
                "tags": sorted({str(t)[:200] for t in attrs.get("tags") or []}),
                "metadata": attrs.get("metadata") or {},
                "release": _text(attrs.get("release")),
                "input": root.input if root else None,
                "output": root.output if root else None,
                "start_time": start,
                "end_time": end,
                "latency_ms": root.latency_ms if root else float(end - start),
                "observation_count": count,
                "error_count": int(errors or 0),
                "input_tokens": int(tin),
                "output_tokens": int(tout),
                "total_tokens": int(ttotal),
                "total_cost": float(cost),
                "has_root": root is not None,
                "updated_at": now,
            }
        )
    if rows:
        ins = _insert(session, Trace.__table__)
        session.execute(
            ins.on_conflict_do_update(
                index_elements=["id"], set_={c: ins.excluded[c] for c in TRACE_UPDATE}
            ),
            rows,
        )


def _text(value: Any, limit: int = 500) -> str | None:
    return None if value is None else str(value)[:limit]
