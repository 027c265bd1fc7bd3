"""Time windows over the Parquet inference log, summarised once and cached when finished.

Windows are aligned on multiples of their length since the epoch (UTC), so the same hour is
the same window in every query. A window that ended long enough ago for every replica to have
compacted its spool is finished: its column summaries and a small sample of its rows are
stored under the reference's profile, and a later query reads that object instead of the log.
Only the current, unfinished window and windows never seen before are read from the log, with
DuckDB, straight from the Parquet parts (through the store's fsspec filesystem on S3).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from passerelle.core.errors import InvalidInput
from passerelle.core.store import ObjectStore
from passerelle.monitoring.drift.compare import PREDICTION, Profile
from passerelle.monitoring.drift.multivariate import _sample
from passerelle.monitoring.drift.reference import put_with_meta, read_with_meta
from passerelle.monitoring.drift.sketches import Sketch, sketch_from_dict
from passerelle.serving.log_parts import live_parts

LOG_PREFIX = "inference"
INPUT = "input."
TS = "__ts"
WINDOW_SAMPLE = 1000  # rows kept per window for the multivariate detector
BATCH_ROWS = 100_000  # rows read from the log at a time
MAX_WINDOWS = 2000
DAY_MS = 86_400_000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}


def parse_duration(value: str | int | float, field: str) -> int:
    """``90s``, ``15m``, ``24h``, ``7d``, ``2w`` (or milliseconds) as milliseconds; never zero."""
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be a duration such as 1h or 7d", field=field)
    if isinstance(value, int | float):
        ms = int(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise InvalidInput(
                f"{field} {str(value)[:40]!r} is not a duration: use a number and s, m, h, d or w "
                "(15m, 24h, 7d)",
                field=field,
            )
        ms = int(float(match.group(1)) * _UNIT_MS[match.group(2)])
    if ms <= 0:
        raise InvalidInput(f"{field} must be longer than zero", field=field)
    if ms > 3650 * DAY_MS:
        raise InvalidInput(f"{field} is longer than ten years", field=field)
    return ms


def bounds(since_ms: int, until_ms: int, window_ms: int) -> list[tuple[int, int]]:
    """Aligned windows covering ``[since_ms, until_ms)``, oldest first."""
    start = since_ms - since_ms % window_ms
    count = -(-(until_ms - start) // window_ms)
    if count > MAX_WINDOWS:
        raise InvalidInput(
            f"{count} windows of this length in the period: the most is {MAX_WINDOWS}; "
            "choose a longer window or a shorter period",
            field="window",
        )
    return [(s, s + window_ms) for s in range(start, until_ms, window_ms)]


@dataclass
class WindowSummary:
    start: int
    end: int
    rows: int
    sketches: dict[str, Sketch]
    sample: pa.Table
    cached: bool

    def to_meta(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "rows": self.rows,
            "sketches": {k: s.to_dict() for k, s in self.sketches.items()},
        }


def _day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")


class LogReader:
    """Reads windows of one endpoint's log parts with DuckDB."""

    def __init__(self, store: ObjectStore, endpoint: str) -> None:
        self.store = store
        self.parts = live_parts(store, f"{LOG_PREFIX}/endpoint={endpoint}/")
        self._con: Any = None

    def _connection(self) -> Any:
        if self._con is None:
            import duckdb

            self._con = duckdb.connect()
            self._con.execute("SET threads TO 1")  # one core: the server serves meanwhile
            if not self.store.is_local:
                self._con.register_filesystem(self.store.fs)
        return self._con

    def _path(self, key: str) -> str:
        path = f"{self.store.root}/named/{key}"
        if self.store.is_local:
            return path
        protocol = self.store.fs.protocol
        return f"{protocol[0] if isinstance(protocol, tuple) else protocol}://{path}"

    def columns(self) -> set[str]:
        """Columns the log holds (inputs without their ``input.`` prefix, and ``output``)."""
        if not self.parts:
            return set()
        files = [self._path(k) for k in self.parts]
        source = f"read_parquet({files!r}, union_by_name = true)"
        names = [
            row[0]
            for row in self._connection().execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        ]
        return {n[len(INPUT) :] for n in names if n.startswith(INPUT)} | (
            {PREDICTION} if PREDICTION in names else set()
        )

    def read(
        self, start: int, end: int, columns: list[str], version: int | None = None
    ) -> Iterator[pa.Table]:
        """Rows answered in ``[start, end)``: to callers (shadow copies and errors left out),
        or with ``version``, every answer of that version, a shadow's included; in batches of
        at most ``BATCH_ROWS`` rows (memory stays bounded however busy the endpoint), with
        ``input.<name>`` renamed ``<name>`` and the time as ``__ts``."""
        days = {_day(t) for t in range(start - start % DAY_MS, end, DAY_MS)}
        files = [self._path(k) for k in self.parts if k.split("date=", 1)[-1][:10] in days]
        if not files:
            return
        con = self._connection()
        source = f"read_parquet({files!r}, union_by_name = true)"
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        # Column names come from users: quoted as identifiers, and the result's columns are
        # named positionally, then renamed in Arrow, so no name ever reaches the SQL text raw.
        sources = [c if c == PREDICTION else INPUT + c for c in columns]
        select = ", ".join(
            ('"' + src.replace('"', '""') + '"' if src in present else "NULL") + f" AS c{i}"
            for i, src in enumerate(sources)
        )
        where, params = "ts >= ? AND ts < ?", [start, end]
        if version is not None:
            if "version" not in present:
                return
            where += " AND version = ?"
            params.append(version)
        if version is None and "route" in present:
            where += " AND route <> 'shadow'"
        if "status" in present:
            where += " AND status = 'ok'"
        query = f"SELECT {select}, ts AS t FROM {source} WHERE {where}"
        reader = con.sql(query, params=params).to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            if batch.num_rows:
                yield pa.Table.from_batches([batch]).rename_columns([*columns, TS])

    def close(self) -> None:
        if self._con is not None:
            self._con.close()


def window_prefix(profile_base: str, window_ms: int, version: int | None = None) -> str:
    """Where a window length's summaries are cached: one folder for all the traffic, one
    per model version asked for alone."""
    scope = "" if version is None else f"v{version}/"
    return f"{profile_base}/{scope}w{window_ms}/"


def window_key(profile_base: str, window_ms: int, start: int, version: int | None = None) -> str:
    return f"{window_prefix(profile_base, window_ms, version)}{start}.parquet"


def _batches(spans: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Consecutive windows grouped up to a day of log per query (at least one window each)."""
    batches: list[list[tuple[int, int]]] = []
    for span in spans:
        last = batches[-1] if batches else None
        if last and last[-1][1] == span[0] and span[1] - last[0][0] <= DAY_MS:
            last.append(span)
        else:
            batches.append([span])
    return batches


def _summarise_batch(
    reader: LogReader, profile: Profile, spans: list[tuple[int, int]], version: int | None
) -> list[WindowSummary]:
    """Summaries of consecutive windows, from one streamed read of their time range: each
    chunk of rows is split by window and added to that window's (mergeable) summaries."""
    first, length = spans[0][0], spans[0][1] - spans[0][0]
    rows = [0] * len(spans)
    sketches: list[dict[str, Sketch]] = [{} for _ in spans]
    samples: list[list[pa.Table]] = [[] for _ in spans]
    for chunk in reader.read(first, spans[-1][1], list(profile.columns), version):
        window_of = (chunk.column(TS).to_numpy() - first) // length
        chunk = chunk.drop_columns([TS])
        for w in np.unique(window_of):
            part = chunk.filter(pa.array(window_of == w))
            i = int(w)
            rows[i] += part.num_rows
            for name, sketch in profile.summarise(part).items():
                sketches[i][name] = sketch + sketches[i][name] if name in sketches[i] else sketch
            samples[i].append(_sample(part, WINDOW_SAMPLE, spans[i][0] % 100_003))
    out = []
    for i, (start, end) in enumerate(spans):
        kept = [t for t in samples[i] if t.num_rows]
        sample = (
            _sample(pa.concat_tables(kept, promote_options="permissive"), WINDOW_SAMPLE, 1)
            if kept
            else pa.table({c: pa.array([], pa.null()) for c in profile.columns})
        )
        out.append(WindowSummary(start, end, rows[i], sketches[i], sample, False))
    return out


def summarise_windows(
    store: ObjectStore,
    endpoint: str,
    profile: Profile,
    profile_base: str,
    windows: list[tuple[int, int]],
    finished_before: int,
    version: int | None = None,
) -> list[WindowSummary]:
    """Each window's summaries (of ``version``'s answers alone, when given): cached ones read
    back, the others read from the log (and cached once finished). Windows not cached are
    read a day of log per query."""
    if not windows:
        return []
    cached = set(
        store.list_named(window_prefix(profile_base, windows[0][1] - windows[0][0], version))
    )
    found: dict[int, WindowSummary] = {}
    missing = []
    for start, end in windows:
        key = window_key(profile_base, end - start, start, version)
        if key in cached:
            sample, meta = read_with_meta(store, key)
            sketches = {k: sketch_from_dict(v) for k, v in meta["sketches"].items()}
            found[start] = WindowSummary(start, end, int(meta["rows"]), sketches, sample, True)
        else:
            missing.append((start, end))
    reader = LogReader(store, endpoint)
    try:
        for batch in _batches(missing):
            for summary in _summarise_batch(reader, profile, batch, version):
                if summary.end <= finished_before:
                    length = summary.end - summary.start
                    key = window_key(profile_base, length, summary.start, version)
                    put_with_meta(store, key, summary.sample, summary.to_meta())
                found[summary.start] = summary
    finally:
        reader.close()
    return [found[start] for start, _ in windows]
