"""Dataset fingerprints: the sha256 of a canonical encoding of a table's content.

The same data gives the same hash whichever library holds it (pandas, Polars, Arrow, a Parquet
file), however it is chunked, and whatever garbage sits under its nulls; any changed cell, column
name or type changes it. Each column contributes its canonical type name, its validity bitmap and
its values with nulls zeroed: fixed-width values as little-endian bytes, strings and binaries as
lengths plus bytes, anything nested as JSON.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Fingerprint:
    digest: str
    num_rows: int
    num_columns: int
    schema: list[dict[str, Any]]
    source: str


def to_arrow(data: Any) -> tuple[pa.Table, str]:
    """Accept pandas, Polars, Arrow or a Parquet path; return an Arrow table and its source."""
    if isinstance(data, pa.Table):
        return data, "pyarrow.Table"
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data]), "pyarrow.RecordBatch"
    if isinstance(data, (str, Path)):
        import pyarrow.parquet as pq

        path = Path(data)
        if not path.exists():
            raise FileNotFoundError(f"dataset file {path} does not exist")
        return pq.read_table(path), str(path.resolve())
    module = type(data).__module__
    if module.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False), "pandas.DataFrame"
    if module.startswith("polars"):
        return data.to_arrow(), "polars.DataFrame"
    raise TypeError(
        f"cannot log a {type(data).__name__} as a dataset: pass a pandas or Polars DataFrame, "
        "a pyarrow Table or the path of a Parquet file"
    )


def _canonical(arr: pa.Array) -> pa.Array:
    """One representation per logical type: decoded dictionaries, large strings, ns timestamps."""
    t = arr.type
    if pa.types.is_dictionary(t):
        return _canonical(arr.dictionary_decode())
    if pa.types.is_string(t) or pa.types.is_large_string(t) or str(t) == "string_view":
        return arr.cast(pa.large_string())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or str(t) == "binary_view":
        return arr.cast(pa.large_binary())
    if pa.types.is_timestamp(t) and t.unit != "ns":
        try:
            return arr.cast(pa.timestamp("ns", tz=t.tz))
        except pa.ArrowInvalid:  # out of the nanosecond range: keep the unit
            return arr
    return arr


def type_name(t: pa.DataType) -> str:
    if pa.types.is_large_string(t):
        return "string"
    if pa.types.is_large_binary(t):
        return "binary"
    return str(t)


def _fixed_width(t: pa.DataType) -> bool:
    try:
        return t.num_fields == 0 and t.bit_width % 8 == 0
    except ValueError:  # variable-width types have no bit width
        return False


def _column_chunks(arr: pa.Array) -> list[bytes]:
    valid = np.asarray(arr.is_valid(), dtype=bool)
    parts = [np.packbits(valid).tobytes()]
    t = arr.type
    n = len(arr)
    if pa.types.is_boolean(t):
        parts.append(np.asarray(arr.fill_null(False), dtype=bool).tobytes())
    elif pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        filled = arr.cast(pa.large_binary()).fill_null(b"")
        offsets = np.frombuffer(filled.buffers()[1], dtype=np.int64)[filled.offset :][: n + 1]
        data = filled.buffers()[2]
        parts.append(np.diff(offsets).astype("<i8").tobytes())
        if data is not None and n:
            parts.append(data.to_pybytes()[offsets[0] : offsets[-1]])
    elif _fixed_width(t) and arr.buffers()[1] is not None:
        width = t.bit_width // 8
        buf = arr.buffers()[1]
        raw = np.frombuffer(buf, dtype=np.uint8)[arr.offset * width : (arr.offset + n) * width]
        values = raw.reshape(n, width).copy()
        values[~valid] = 0
        if pa.types.is_floating(t):
            floats = values.view(f"<f{width}").reshape(n)
            floats[np.isnan(floats)] = np.nan  # one NaN bit pattern
            floats[floats == 0] = 0.0  # -0.0 and 0.0 are one value
        parts.append(values.tobytes())
    else:
        parts.append(json.dumps(arr.to_pylist(), default=str, sort_keys=True).encode())
    return parts


def fingerprint(data: Any) -> tuple[Fingerprint, pa.Table]:
    """Fingerprint a table; also return the Arrow table it was computed on (for the snapshot)."""
    table, source = to_arrow(data)
    table = table.replace_schema_metadata(None)
    digest = hashlib.sha256()
    columns = [_canonical(col.combine_chunks()) for col in table.columns]
    schema = [
        {"name": name, "type": type_name(col.type), "nullable": col.null_count > 0}
        for name, col in zip(table.column_names, columns, strict=True)
    ]
    header = {"rows": table.num_rows, "columns": [[c["name"], c["type"]] for c in schema]}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for col in columns:
        for part in _column_chunks(col):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
    fp = Fingerprint(digest.hexdigest(), table.num_rows, table.num_columns, schema, source)
    return fp, table
