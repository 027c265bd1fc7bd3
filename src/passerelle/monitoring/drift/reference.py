"""An endpoint's reference data, and its profile, kept in the object store.

The reference is the training snapshot logged with a model version's run (context
``training``), a tracked dataset's snapshot, or any table a user uploads. It is stored once
per endpoint under ``monitoring/drift/endpoint-<id>/reference.parquet`` with where it came
from; its profile (bin edges, counts, a sample of rows) is computed once per reference and
column kinds and stored beside it, so a drift query never sorts the reference again.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from passerelle.core.errors import InvalidInput, NotFound
from passerelle.core.ids import now_ms
from passerelle.core.store import ObjectStore
from passerelle.monitoring.drift.compare import PREDICTION, Profile, build_profile
from passerelle.monitoring.drift.profiles import ColumnProfile

PREFIX = "monitoring/drift"
META_KEY = b"passerelle.drift"


def folder(endpoint_id: int) -> str:
    return f"{PREFIX}/endpoint-{endpoint_id}"


def put_with_meta(store: ObjectStore, key: str, table: pa.Table, meta: dict[str, Any]) -> None:
    """A table and a JSON document in one Parquet object (the document in its metadata)."""
    store.put_named_table(key, table.replace_schema_metadata({META_KEY: orjson.dumps(meta)}))


def read_with_meta(store: ObjectStore, key: str) -> tuple[pa.Table, dict[str, Any]]:
    table = store.read_named_table(key)
    meta = (table.schema.metadata or {}).get(META_KEY)
    if meta is None:
        raise NotFound(f"{key} holds no drift metadata", field="reference")
    return table.replace_schema_metadata(None), orjson.loads(meta)


def table_digest(table: pa.Table) -> str:
    sink = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(None), sink, compression="none")
    return hashlib.sha256(sink.getvalue()).hexdigest()


def parquet_table(store: ObjectStore, sha256: str, field: str) -> pa.Table:
    try:
        return pq.read_table(pa.BufferReader(store.read_bytes(sha256)))
    except (pa.ArrowInvalid, OSError) as exc:
        message = f"snapshot {sha256[:12]} is not a Parquet table: {exc}"
        raise InvalidInput(message, field=field) from None


def save_reference(
    store: ObjectStore, endpoint_id: int, table: pa.Table, source: dict[str, Any]
) -> dict[str, Any]:
    """Check, then store the reference (nothing is written when it is refused)."""
    if table.num_rows == 0:
        raise InvalidInput("the reference has no rows", field="reference")
    if table.num_columns == 0:
        raise InvalidInput("the reference has no columns", field="reference")
    twice = sorted({c for c in table.column_names if table.column_names.count(c) > 1})
    if twice:
        raise InvalidInput(f"the reference names a column twice: {twice[:5]}", field="reference")
    meta = {
        "source": source,
        "rows": table.num_rows,
        "columns": table.column_names,
        "digest": table_digest(table),
        "created_at": now_ms(),
        "has_predictions": PREDICTION in table.column_names,
    }
    put_with_meta(store, f"{folder(endpoint_id)}/reference.parquet", table, meta)
    return meta


def load_reference(store: ObjectStore, endpoint_id: int) -> tuple[pa.Table, dict[str, Any]] | None:
    try:  # one read, not a listing of the endpoint's folder (its window summaries are many)
        return read_with_meta(store, f"{folder(endpoint_id)}/reference.parquet")
    except FileNotFoundError:
        return None


def kinds_digest(kinds: dict[str, str]) -> str:
    return hashlib.sha256(orjson.dumps(kinds, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def profile_key(endpoint_id: int, digest: str, kinds: dict[str, str]) -> str:
    return f"{folder(endpoint_id)}/profiles/{digest[:32]}-{kinds_digest(kinds)}"


def load_profile(
    store: ObjectStore, endpoint_id: int, reference: pa.Table, digest: str, kinds: dict[str, str]
) -> tuple[Profile, str]:
    """The profile of these columns of the reference: from the store, or built and stored."""
    base = profile_key(endpoint_id, digest, kinds)
    key = base + ".parquet"
    if key in store.list_named(f"{folder(endpoint_id)}/profiles/"):
        sample, meta = read_with_meta(store, key)
        columns = {k: ColumnProfile.from_dict(v) for k, v in meta["columns"].items()}
        return Profile(columns, sample, int(meta["rows"])), base
    profile = build_profile(reference.select(list(kinds)), kinds)
    meta = {"rows": profile.rows, "columns": {k: p.to_dict() for k, p in profile.columns.items()}}
    put_with_meta(store, key, profile.sample, meta)
    return profile, base
