"""The inference log: spooled before each response, compacted into Parquet parts.

Parts live in the object store under ``inference/endpoint=<name>/date=<YYYY-MM-DD>/`` and are
named after the spool file they come from, so compacting the same file twice (a crash between
the upload and the removal) rewrites the same part instead of duplicating rows. Once merging
(``log_parts``) has folded that part into a larger one and deleted it, rewriting it would
duplicate its rows: a file left unfinished for longer than ``RECHECK_AFTER_S`` is first looked
up in the log, and what is already there is not written again.

The spool holds two kinds of lines. A row record is one prediction (any input). A frame is one
model call on the numeric fast path: its input matrix as raw float64 bytes (base64), the
prediction ids end to end, the outputs, and which request each row came from. A frame costs a
few microseconds to write whatever its size, and compaction turns thousands of them into
columns with a handful of array operations, where row records cost tens of microseconds each.
Both become the same Parquet rows: one per prediction, with ``input.<column>`` columns.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from sqlalchemy.orm import sessionmaker

from passerelle.core import lease
from passerelle.core.db import session_scope
from passerelle.core.ids import now_ms
from passerelle.core.spool import Spool, read_records, recoverable
from passerelle.core.store import ObjectStore
from passerelle.serving.log_parts import as_text, concat_parts, live_parts, merge_parts

log = logging.getLogger("passerelle.serving")
SPOOL_NAME = "inference"
PREFIX = "inference"
MERGE_LEASE = "inference-log-merge"
MERGE_LEASE_MS = 10 * 60_000  # far longer than a pass: a live holder is never taken over
REDACTED = "***"
ID_LENGTH = 32
# A spool file unfinished for this long may have been compacted before (a crash came between its
# upload and its removal) and its part merged and deleted since, which takes two merge passes
# and at least twice the merge grace (``log_parts.GRACE_MS``, five minutes). Normal compaction
# finishes a file seconds after its last write, so only leftovers pay for the check.
RECHECK_AFTER_S = 60


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    """One row per prediction: ``input.<column>`` and ``output`` columns for columnar scans."""
    row = {k: v for k, v in record.items() if k not in ("inputs", "output")}
    for name, value in (record.get("inputs") or {}).items():
        row[f"input.{name}"] = (
            value if not isinstance(value, dict | list) else orjson.dumps(value).decode()
        )
    out = record.get("output")
    row["output"] = out if not isinstance(out, dict | list) else orjson.dumps(out).decode()
    return row


def frame_record(
    config: dict[str, Any],
    version: int,
    columns: tuple[str, ...],
    integer: tuple[int, ...],
    matrix: np.ndarray,
    ids: list[str],
    outputs: list[Any],
    segments: list[tuple[int, str, str | None, str | None]],
    latency_ms: float,
    ts: int,
    proba: np.ndarray | None = None,
    proba_keys: list[str] | None = None,
) -> dict[str, Any]:
    """One spool line for one model call on the numeric fast path. Redacted columns are left
    out of the matrix here, before anything is written; compaction writes the mask."""
    redact = set(config["redact"])
    kept = [i for i, c in enumerate(columns) if c not in redact]
    data = matrix if len(kept) == len(columns) else matrix[:, kept]
    frame: dict[str, Any] = {
        "frame": 1,
        "endpoint": config["name"],
        "endpoint_id": config["id"],
        "version": version,
        "ts": ts,
        "latency_ms": latency_ms,
        "status": "ok",
        "order": list(columns),
        "kept": kept,
        "integer": list(integer),
        "x": base64.b64encode(np.ascontiguousarray(data, dtype=np.float64)).decode("ascii"),
        "ids": "".join(ids),
        "output": outputs,
        "segments": segments,
    }
    if proba is not None:
        frame["proba"] = base64.b64encode(np.ascontiguousarray(proba, np.float64)).decode("ascii")
        frame["proba_keys"] = proba_keys
    return frame


def proba_texts(proba: np.ndarray, keys: list[str]) -> list[str]:
    """Each row's class probabilities as JSON text, ``{"<class>": p, ...}``: the shape the
    monitoring domain reads (in bulk, a format string is several times faster than a JSON
    encoder per row)."""
    if not np.isfinite(proba).all():  # a broken model: NaN is no JSON number (orjson: null)
        return [orjson.dumps(dict(zip(keys, row, strict=True))).decode() for row in proba.tolist()]
    template = (
        "{" + ",".join(orjson.dumps(k).decode().replace("%", "%%") + ":%r" for k in keys) + "}"
    )
    return [template % tuple(row) for row in proba.tolist()]


def _frames_to_table(frames: list[dict[str, Any]]) -> pa.Table:
    """Frames of one layout (same endpoint, columns, redaction) as one table of rows."""
    first = frames[0]
    counts = np.array([len(f["ids"]) // ID_LENGTH for f in frames])
    total = int(counts.sum())
    order, kept, integer = first["order"], first["kept"], set(first["integer"])
    matrix = np.concatenate(
        [np.frombuffer(binascii.a2b_base64(f["x"]), np.float64) for f in frames]
    ).reshape(total, len(kept))
    ids = "".join(f["ids"] for f in frames).encode("ascii")  # fixed-width: offsets are a range
    offsets = np.arange(0, len(ids) + 1, ID_LENGTH, dtype=np.int32)
    routes: list[str] = []
    keys: list[str | None] = []
    batches: list[str | None] = []
    for f in frames:
        for n, route, key, batch_id in f["segments"]:
            routes += [route] * n
            keys += [key] * n
            batches += [batch_id] * n
    columns: dict[str, Any] = {
        "prediction_id": pa.Array.from_buffers(
            pa.string(), total, [None, pa.py_buffer(offsets), pa.py_buffer(ids)]
        ),
        "endpoint": pa.array([first["endpoint"]] * total, pa.string()),
        "endpoint_id": pa.array(np.repeat(first["endpoint_id"], total).astype(np.int64)),
        "version": pa.array(np.repeat([f["version"] for f in frames], counts).astype(np.int64)),
        "route": pa.array(routes, pa.string()),
        "latency_ms": pa.array(np.repeat([float(f["latency_ms"]) for f in frames], counts)),
        "status": pa.array(["ok"] * total, pa.string()),
        "request_key": pa.array(keys, pa.string()),
        "batch_id": pa.array(batches, pa.string()),
        "ts": pa.array(np.repeat([f["ts"] for f in frames], counts).astype(np.int64)),
    }
    position = {i: j for j, i in enumerate(kept)}
    for i, name in enumerate(order):
        if i not in position:
            columns[f"input.{name}"] = pa.array([REDACTED] * total, pa.string())
            continue
        values = matrix[:, position[i]]
        columns[f"input.{name}"] = pa.array(values.astype(np.int64) if i in integer else values)
    columns["output"] = _outputs([o for f in frames for o in f["output"]])
    if any("proba" in f for f in frames):
        texts: list[str | None] = []
        for f, n in zip(frames, counts.tolist(), strict=True):
            if "proba" not in f:
                texts += [None] * n
                continue
            keys = f["proba_keys"]
            proba = np.frombuffer(binascii.a2b_base64(f["proba"]), np.float64)
            texts += proba_texts(proba.reshape(n, len(keys)), keys)
        columns["proba"] = pa.array(texts, pa.string())
    return pa.table(columns)


def _outputs(values: list[Any]) -> pa.Array:
    """Outputs as the row path writes them: scalars as they are, lists and objects (class
    probabilities, several targets) as JSON text."""
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        array = None
    if array is not None and not pa.types.is_nested(array.type):
        return array
    return pa.array([as_text(v) if isinstance(v, dict | list) else v for v in values], pa.string())


def _frame_layout(frame: dict[str, Any]) -> tuple[Any, ...]:
    return (
        frame["endpoint_id"],
        tuple(frame["order"]),
        tuple(frame["kept"]),
        tuple(frame["integer"]),
    )


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as a table; a column whose values mix types (a field redacted after a while,
    inputs that change shape) is kept as text instead of failing the whole part."""
    names = list(dict.fromkeys(k for r in rows for k in r))
    columns = {}
    for name in names:
        values = [r.get(name) for r in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            columns[name] = pa.array([as_text(v) for v in values], pa.string())
    return pa.table(columns)


class InferenceLog:
    """Appends to this process's spool; compacts sealed spool files into Parquet parts."""

    def __init__(
        self, spool_dir: Path, store: ObjectStore, sessions: sessionmaker, *, fsync: bool = False
    ) -> None:
        self.spool_dir = spool_dir
        self.spool = Spool(spool_dir, SPOOL_NAME, fsync=fsync)
        self.store = store
        self.sessions = sessions
        self._compact_lock = threading.Lock()
        self.holder = lease.new_holder()

    def append(self, records: list[dict[str, Any]]) -> None:
        self.spool.append(records)

    def append_frame(self, frame: dict[str, Any]) -> None:
        self.spool.append((frame,))

    def compact(self) -> int:
        """Seal this process's file and turn every finished spool file into parts."""
        with self._compact_lock:
            self.spool.seal()
            done = 0
            for path in recoverable(self.spool_dir, SPOOL_NAME):
                try:
                    done += self._compact_file(path)
                except FileNotFoundError:
                    continue  # compacted by another process sharing this spool folder
                except Exception:  # keep the file: the next pass retries it
                    log.exception("could not compact %s", path)
            return done

    def merge(self, now: int | None = None) -> int | None:
        """Merge small parts (see ``log_parts``) if this process holds the merge lease, which
        it takes or renews here: the number of parts merged, or None when another holds it."""
        now = now_ms() if now is None else now
        with session_scope(self.sessions) as session:
            if not lease.acquire(session, MERGE_LEASE, self.holder, MERGE_LEASE_MS, now):
                return None
        return merge_parts(self.store, f"{PREFIX}/", now)

    def release_merge_lease(self) -> None:
        """At shutdown, once no merge pass is running: another replica takes over merging at
        its next pass instead of after the lease runs out."""
        with session_scope(self.sessions) as session:
            lease.release(session, MERGE_LEASE, self.holder)

    def _compact_file(self, path: Path) -> int:
        rows: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        frames: dict[tuple[str, str], dict[tuple[Any, ...], list[dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        count = 0
        try:
            leftover = time.time() - path.stat().st_mtime > RECHECK_AFTER_S
        except FileNotFoundError:
            return 0  # compacted by another process sharing this spool folder
        for r in read_records(path):
            day = dt.datetime.fromtimestamp(r["ts"] / 1000, dt.UTC).strftime("%Y-%m-%d")
            if r.get("frame"):
                frames[(r["endpoint"], day)][_frame_layout(r)].append(r)
                count += len(r["ids"]) // ID_LENGTH
            else:
                rows[(r["endpoint"], day)].append(_flatten(r))
                count += 1
        for group in {*rows, *frames}:
            endpoint, day = group
            tables = [_frames_to_table(same) for same in frames[group].values()]
            if rows.get(group):
                tables.append(rows_to_table(rows[group]))
            table = tables[0] if len(tables) == 1 else concat_parts(tables)
            partition = f"{PREFIX}/endpoint={endpoint}/date={day}/"
            if leftover and self._find([table.column("prediction_id")[0].as_py()]):
                log.info("%s: its %s part is already in the log", path.name, partition)
                continue  # written before a crash: a part is all or nothing, one id tells
            self.store.put_named_table(f"{partition}part-{path.stem}.parquet", table)
        path.unlink(missing_ok=True)
        return count

    def lookup(self, prediction_ids: list[str]) -> dict[str, int]:
        """Which endpoint answered each prediction id (ids unknown to the log are left out).

        A prediction id starts with its time, so only the parts of its day (and the day
        before, for answers given across midnight) are read, and only two of their columns.
        """
        self.compact()
        return self._find(prediction_ids)

    def _find(self, prediction_ids: list[str]) -> dict[str, int]:
        """``lookup`` over what is compacted already (compaction itself asks it)."""
        import pyarrow.compute as pc

        by_day: dict[str, list[str]] = defaultdict(list)
        for pid in prediction_ids:
            try:
                day = dt.datetime.fromtimestamp(int(pid[:12], 16) / 1000, dt.UTC)
            except (ValueError, OverflowError, OSError):
                continue  # not an id this server made: unknown
            for d in (day, day - dt.timedelta(days=1)):
                by_day[d.strftime("%Y-%m-%d")].append(pid)
        found: dict[str, int] = {}
        keys = live_parts(self.store, f"{PREFIX}/") if by_day else []
        for day, ids in by_day.items():
            wanted = pa.array(sorted(set(ids) - set(found)), pa.string())
            for key in keys:
                if f"/date={day}/" not in key or not len(wanted):
                    continue
                table = self.store.read_named_table(key, columns=["prediction_id", "endpoint_id"])
                hits = table.filter(pc.is_in(table["prediction_id"], value_set=wanted))
                found.update(
                    zip(
                        hits["prediction_id"].to_pylist(),
                        hits["endpoint_id"].to_pylist(),
                        strict=True,
                    )
                )
        return found

    def read(
        self,
        endpoint: str,
        since_ms: int | None = None,
        limit: int | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """Every compacted prediction of ``endpoint`` (after ``since_ms``), oldest first;
        ``columns`` (those of them a part has) instead of every column, inputs included."""
        self.compact()
        tables = []
        wanted = None if columns is None else list(dict.fromkeys([*columns, "ts"]))  # ts: order
        since_day = (
            dt.datetime.fromtimestamp(since_ms / 1000, dt.UTC).strftime("%Y-%m-%d")
            if since_ms
            else None
        )
        for key in live_parts(self.store, f"{PREFIX}/endpoint={endpoint}/"):
            day = key.split("date=", 1)[1][:10]
            if since_day and day < since_day:
                continue
            part = self.store.read_named_table(key, columns=wanted)
            tables.append(part.replace_schema_metadata(None))  # a merged part names its sources
        if not tables:
            return pa.table({})
        table = concat_parts(tables)
        if since_ms:
            import pyarrow.compute as pc

            table = table.filter(pc.greater_equal(table["ts"], since_ms))
        table = table.sort_by("ts")
        return table.slice(0, limit) if limit else table
