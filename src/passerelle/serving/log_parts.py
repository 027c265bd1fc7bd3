"""The inference log's Parquet parts: which to read, how to join them, and merging compaction,
which turns a day's many small parts into a few.

Compaction writes a part every few seconds per serving process while traffic flows, so a day can
leave tens of thousands of small parts, and every reader (the log API, feedback lookups, drift
and performance windows) pays per part. One process at a time (a lease in the database) merges
a day's small parts into parts of up to ``TARGET_ROWS`` rows.

A merged part names its sources in its Parquet metadata, and writing it is the commit: a reader
that lists a merged part hides its sources (``live_parts``), so every prediction is read once
whether the reader listed before the merge or after it. Sources are deleted ``GRACE_MS`` after
the merge, so a reader that listed them just before can still read them. A merged part is merged
again only once its own sources are gone, so deleting it later never uncovers them.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from passerelle.core.store import ObjectStore

log = logging.getLogger(__name__)

SOURCES_KEY = b"passerelle.merged_from"
MERGED = "merged-"
MIN_PARTS = 16  # a day with fewer small parts is left as it is
TARGET_ROWS = 250_000  # rows per merged part, at most (and bounded by TARGET_BYTES in memory)
TARGET_BYTES = 128 * 2**20
GRACE_MS = 5 * 60_000  # sources outlive their merge this long, for readers that listed them


@dataclass(frozen=True)
class Footer:
    rows: int
    sources: frozenset[str]  # what a merged part holds; empty for a part compaction wrote


_footers: dict[tuple[str, str], Footer] = {}  # parts never change once written: read once
_footers_lock = threading.Lock()


def as_text(value: Any) -> str | None:
    """A value as a log text column holds it: text as is, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def concat_parts(tables: list[pa.Table]) -> pa.Table:
    """Parts written at different times may type a column differently: numbers widen to
    float64, anything else that disagrees becomes text."""
    types: dict[str, set[pa.DataType]] = defaultdict(set)
    for t in tables:
        for f in t.schema:
            if not pa.types.is_null(f.type):
                types[f.name].add(f.type)
    target = {}
    for name, found in types.items():
        if len(found) == 1:
            target[name] = next(iter(found))
        elif all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in found):
            target[name] = pa.float64()
        else:
            target[name] = pa.string()
    fixed = []
    for t in tables:
        for i, f in enumerate(t.schema):
            want = target.get(f.name)
            if want is not None and f.type != want:
                col = t.column(i)
                if pa.types.is_string(want) and not pa.types.is_string(f.type):
                    col = pa.array([as_text(v) for v in col.to_pylist()], pa.string())
                else:
                    col = col.cast(want)
                t = t.set_column(i, f.name, col)
        fixed.append(t)
    return pa.concat_tables(fixed, promote_options="permissive")


def is_merged(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith(MERGED)


def created_ms(key: str) -> int:
    """When a merged part (``merged-<ms>-<random>.parquet``) was written."""
    return int(key.rsplit("/", 1)[-1][len(MERGED) :].split("-", 1)[0])


def footer(store: ObjectStore, key: str) -> Footer:
    cache_key = (store.root, key)
    with _footers_lock:
        found = _footers.get(cache_key)
    if found is None:
        meta = store.read_named_footer(key)
        raw = (meta.metadata or {}).get(SOURCES_KEY, b"[]")
        found = Footer(meta.num_rows, frozenset(orjson.loads(raw)))
        with _footers_lock:
            if len(_footers) > 100_000:
                _footers.clear()
            _footers[cache_key] = found
    return found


def resolve(store: ObjectStore, keys: list[str]) -> tuple[list[str], dict[str, frozenset[str]]]:
    """``(live parts, merged parts in force with their sources)`` among ``keys``.

    Merged parts are taken oldest first; one that shares a source with a merged part already
    taken is left out (two processes merged the same parts: the first one counts), and its
    other sources stay live."""
    covered: set[str] = set()
    in_force: dict[str, frozenset[str]] = {}
    ignored: set[str] = set()
    for key in sorted((k for k in keys if is_merged(k)), key=created_ms):
        sources = footer(store, key).sources
        if sources & covered:
            ignored.add(key)
            continue
        in_force[key] = sources
        covered |= sources
    return [k for k in keys if k not in covered and k not in ignored], in_force


def live_parts(store: ObjectStore, prefix: str) -> list[str]:
    """The parts below ``prefix`` a reader should read, sorted: each prediction is in one."""
    keys = [k for k in store.list_named(prefix) if k.endswith(".parquet")]
    return resolve(store, keys)[0]


def merge_parts(store: ObjectStore, prefix: str, now_ms: int) -> int:
    """One pass over every partition (endpoint and day) below ``prefix``: delete what merges
    older than ``GRACE_MS`` hold, then merge each partition's small parts. Returns the number
    of parts merged. The caller holds the lease: one process at a time."""
    by_partition: dict[str, list[str]] = defaultdict(list)
    for key in store.list_named(prefix):
        if key.endswith(".parquet"):
            by_partition[key.rsplit("/", 1)[0]].append(key)
    merged = 0
    for partition, keys in sorted(by_partition.items()):
        live, in_force = resolve(store, keys)
        # a duplicate merge that ``resolve`` leaves out goes first: were the merge it duplicates
        # deleted before it, it would come into force and hold its rows a second time
        for key in sorted(set(keys) - set(live) - set(in_force)):
            if is_merged(key) and now_ms - created_ms(key) >= GRACE_MS:
                store.delete_named(key)
        present = set(keys)
        settled = set(live)
        for key, sources in in_force.items():
            if not sources & present:
                continue
            if now_ms - created_ms(key) >= GRACE_MS:
                for source in sorted(sources & present):
                    store.delete_named(source)
            else:
                settled.discard(key)  # merged again only once its sources are gone
        small = [k for k in sorted(settled) if footer(store, k).rows < TARGET_ROWS]
        merged += _merge_small(store, partition, small, now_ms)
    return merged


def _merge_small(store: ObjectStore, partition: str, small: list[str], now_ms: int) -> int:
    """Merge ``small`` (sorted keys of one partition) in groups of up to ``TARGET_ROWS``."""
    done = 0
    while len(small) >= MIN_PARTS:
        group, tables, rows, size = [], [], 0, 0
        while small and rows < TARGET_ROWS and size < TARGET_BYTES:
            key = small.pop(0)
            table = store.read_named_table(key).replace_schema_metadata(None)
            group.append(key)
            tables.append(table)
            rows += table.num_rows
            size += table.nbytes
        if len(group) < 2:
            continue
        table = concat_parts(tables).sort_by("ts")
        key = f"{partition}/{MERGED}{now_ms}-{secrets.token_hex(6)}.parquet"
        store.put_named_table(
            key, table.replace_schema_metadata({SOURCES_KEY: orjson.dumps(group)})
        )
        done += len(group)
        log.info("merged %d inference log parts (%d rows) into %s", len(group), rows, key)
    return done
