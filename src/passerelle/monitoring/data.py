"""The monitored data: an endpoint's logged predictions with their feedback, as a Polars frame.

Predictions come from serving's inference log (Parquet parts), feedback through serving's
feedback service; nothing here reads serving's tables. Outputs are decoded once into a label
and, when the model logged them, class probabilities (``output`` as ``{class: p}`` or a list,
``{"label": ..., "proba": ...}``, or a separate ``proba`` column).
"""

from __future__ import annotations

import math
import re
import time

import orjson
import polars as pl
import pyarrow as pa

from passerelle.core.errors import InvalidInput

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
MAX_WINDOWS = 1000  # windows in one answer: more would be a typo (1s over a year)
LOG_COLUMNS = ("prediction_id", "version", "route", "output", "latency_ms", "status", "ts")


def duration_ms(value: str | int | float, field: str) -> int:
    """``"30m"``, ``"6h"``, ``"1d"``, ``"2w"`` (or milliseconds) as milliseconds, over zero."""
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be a duration like '1h' or '1d'", field=field)
    if isinstance(value, int | float):
        ms = float(value)
    else:
        text = str(value)
        match = _DURATION.match(text)
        if match is None:
            if re.fullmatch(r"\s*\d+\s*", text):
                ms = float(text)
            else:
                raise InvalidInput(
                    f"{field}={text[:40]!r}: give a duration like '30m', '6h', '1d' or '2w'",
                    field=field,
                )
        else:
            ms = float(match[1]) * UNIT_MS[match[2]]
    if not math.isfinite(ms) or ms < 1:
        raise InvalidInput(f"{field} must be longer than zero", field=field)
    if ms > 3650 * UNIT_MS["d"]:
        raise InvalidInput(f"{field} must be at most ten years", field=field)
    return int(ms)


def since_ms(value: str | int | None, default_ms: int, now: int) -> int:
    """A start time: epoch milliseconds or a duration back from now (default ``default_ms``)."""
    if value is None or value == "":
        return now - default_ms
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        ms = int(value)
        if ms > 10**11:  # an epoch time in milliseconds, not a bare duration
            return ms
    if isinstance(value, str) and not _DURATION.match(value) and value[:1].isdigit():
        import datetime as dt

        try:  # an ISO 8601 date or time (UTC unless it says otherwise)
            when = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
            return int(when.timestamp() * 1000)
    return now - duration_ms(value, "since")


def window_text(ms: int) -> str:
    """``15m``, ``1h``, ``1d``: a window as it was most likely typed."""
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms / 1000:g}s"


def predictions_frame(table: pa.Table, since: int, until: int) -> pl.DataFrame:
    """The log's rows between ``since`` and ``until`` (ms), with only the columns monitoring
    reads (a log with no row yet gives an empty frame of those columns)."""
    if table.num_rows == 0 or "ts" not in table.column_names:
        return pl.DataFrame(
            {
                "prediction_id": [],
                "version": [],
                "route": [],
                "output": [],
                "latency_ms": [],
                "status": [],
                "ts": [],
            },
            schema={
                "prediction_id": pl.Utf8,
                "version": pl.Int64,
                "route": pl.Utf8,
                "output": pl.Utf8,
                "latency_ms": pl.Float64,
                "status": pl.Utf8,
                "ts": pl.Int64,
            },
        )
    keep = [c for c in (*LOG_COLUMNS, "proba") if c in table.column_names]
    table = table.select(keep)
    if "output" in keep and not pa.types.is_string(table.schema.field("output").type):
        # numbers, booleans: keep the value as JSON text so every part has one type
        values = table["output"].to_pylist()
        texts = [None if v is None else orjson.dumps(v).decode() for v in values]
        table = table.set_column(keep.index("output"), "output", pa.array(texts, pa.string()))
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.filter((pl.col("ts") >= since) & (pl.col("ts") < until)).with_columns(
        pl.col("version").cast(pl.Int64), pl.col("latency_ms").cast(pl.Float64)
    )


def now_ms() -> int:
    return time.time_ns() // 1_000_000
