"""The metric ingestion hot path: a batch of values parsed, checked and stored in a few ms.

The rules are exactly ``schemas.MetricIn``'s (a key of 1 to 250 characters without control
characters; a number, or "NaN" / "Infinity" / "-Infinity"; integer step and timestamp within 64
bits; no other field), checked in one loop instead of a model per value, and the rows go to the
database through one ``executemany`` instead of the ORM's bulk machinery. Errors name the
offending item, e.g. ``metrics[12].value``.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import InvalidInput
from passerelle.core.ids import INT64_MAX, INT64_MIN, now_ms
from passerelle.core.upsert import upsert
from passerelle.tracking.models import LatestMetric, Metric
from passerelle.tracking.schemas import SPECIAL_FLOATS
from passerelle.tracking.service import load_run

MAX_BATCH = 100_000
FIELDS = frozenset({"key", "value", "step", "timestamp"})
Row = tuple[str, float, int, int | None]  # key, value, step, timestamp


def _bad(index: int, field: str, message: str) -> InvalidInput:
    return InvalidInput(f"metrics[{index}].{field}: {message}", field=f"metrics.{index}.{field}")


def _int64(index: int, field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(index, field, f"must be an integer, got {type(value).__name__}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise _bad(index, field, "must fit in 64 bits")
    return value


def parse_batch(raw: bytes) -> list[Row]:
    """Decode and check ``{"metrics": [{"key", "value", "step"?, "timestamp"?}, ...]}``."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}", field="body") from None
    if not isinstance(body, dict) or not isinstance(body.get("metrics"), list):
        raise InvalidInput('expected an object {"metrics": [...]}', field="metrics")
    if set(body) - {"metrics"}:
        extra = sorted(set(body) - {"metrics"})[0]
        raise InvalidInput(f"unexpected field '{extra}'", field=extra)
    items = body["metrics"]
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} metrics per batch", field="metrics")
    rows: list[Row] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput(f"metrics[{i}] must be an object", field=f"metrics.{i}")
        if not FIELDS.issuperset(item):
            extra = sorted(set(item) - FIELDS)[0]
            raise _bad(i, extra, "unexpected field")
        key = item.get("key")
        if not isinstance(key, str) or not 0 < len(key) <= 250:
            raise _bad(i, "key", "must be a string of 1 to 250 characters")
        if not key.isprintable() and any(ord(c) < 32 for c in key):
            raise _bad(i, "key", "may not contain control characters")
        value = item.get("value")
        if isinstance(value, float | int) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and value in SPECIAL_FLOATS:
            number = SPECIAL_FLOATS[value]
        elif value is None and "value" not in item:
            raise _bad(i, "value", "is required")
        else:
            raise _bad(i, "value", f"metric value must be a number, got {type(value).__name__}")
        step = _int64(i, "step", item.get("step", 0))
        ts = item.get("timestamp")
        rows.append((key, number, step, None if ts is None else _int64(i, "timestamp", ts)))
    return rows


def store_rows(session: Session, principal: Principal, run_id: str, rows: list[Row]) -> int:
    """Append the values and move each key's latest value forward; returns how many."""
    load_run(session, principal, run_id, Action.WRITE)
    if not rows:
        return 0
    default_ts = now_ms()
    records = []
    latest: dict[str, tuple[int, int, float]] = {}
    for key, value, step, ts in rows:
        ts = default_ts if ts is None else ts
        nan = math.isnan(value)
        records.append((run_id, key, 0.0 if nan else value, nan, step, ts))
        current = latest.get(key)
        if current is None or (step, ts) >= current[:2]:
            latest[key] = (step, ts, value)
    conn = session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    table = Metric.__table__.name
    conn.exec_driver_sql(
        f'INSERT INTO {table} (run_id, "key", value, is_nan, step, "timestamp") '
        f"VALUES ({', '.join([mark] * 6)})",
        records,
    )
    upsert(
        session,
        LatestMetric,
        [
            {
                "run_id": run_id,
                "key": k,
                "step": s,
                "timestamp": t,
                "value": 0.0 if math.isnan(v) else v,
                "is_nan": math.isnan(v),
            }
            for k, (s, t, v) in latest.items()
        ],
        ["run_id", "key"],
        ["step", "timestamp", "value", "is_nan"],
        only_if_newer=True,
    )
    return len(records)
