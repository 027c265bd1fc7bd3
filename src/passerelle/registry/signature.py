"""Model signatures: the columns a model expects, inferred from an input example.

Prediction input is checked against it column by column; nothing is coerced silently. An integer
column accepts integers only, a float column integers or floats, a string column strings, a
boolean column booleans, a datetime column datetimes.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from passerelle.core.errors import InvalidInput

MAX_LEVELS = 100


class SignatureError(InvalidInput):
    """Input that does not match the signature; ``details`` lists every offending column."""


def _kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or str(t) == "string_view":
        return "string"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "datetime"
    if pa.types.is_null(t):
        return "null"
    return "other"


ACCEPTS = {
    "integer": {"integer", "null"},
    "float": {"float", "integer", "null"},
    "string": {"string", "null"},
    "boolean": {"boolean", "null"},
    "datetime": {"datetime", "null"},
    "other": {"other", "null"},
}


def to_table(data: Any) -> pa.Table:
    """Records, columns, pandas, Polars or Arrow, as an Arrow table."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, list):
        if not all(isinstance(r, dict) for r in data):
            raise InvalidInput("inputs must be a list of records (objects)", field="inputs")
        return pa.Table.from_pylist(data)
    if isinstance(data, dict):
        return pa.Table.from_pydict(data)
    from passerelle.sdk.fingerprint import to_arrow

    return to_arrow(data)[0]


def infer_signature(example: Any, output: Any = None) -> dict[str, Any]:
    """Column names, kinds, nullability and (for strings) the levels seen in the example."""
    table = to_table(example)
    inputs = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        kind = _kind(col.type)
        spec: dict[str, Any] = {"name": name, "type": kind, "nullable": col.null_count > 0}
        if kind == "string":
            levels = col.combine_chunks().unique().drop_null().to_pylist()
            if len(levels) <= MAX_LEVELS:
                spec["levels"] = sorted(str(v) for v in levels)
        inputs.append(spec)
    signature: dict[str, Any] = {"inputs": inputs}
    if output is not None:
        signature["outputs"] = _output_spec(output)
    return signature


def _output_spec(output: Any) -> dict[str, Any]:
    import numpy as np

    arr = np.asarray(output)
    return {"dtype": str(arr.dtype), "shape": [-1, *arr.shape[1:]]}


def _schema_problems(
    table: pa.Table, expected: dict[str, dict[str, Any]], extra: str
) -> list[dict[str, str]]:
    """What the column names and types alone say is wrong (the same for every table with this
    schema, so callers may remember it)."""
    problems: list[dict[str, str]] = []
    names = set(table.column_names)
    for name, spec in expected.items():
        if name not in names:
            problems.append({"column": name, "problem": "missing"})
            continue
        kind = _kind(table.schema.field(name).type)
        if kind not in ACCEPTS.get(spec["type"], {spec["type"]}):
            problems.append({"column": name, "problem": f"expected {spec['type']}, got {kind}"})
    if extra == "reject":
        problems += [
            {"column": c, "problem": "unexpected column"}
            for c in table.column_names
            if c not in expected
        ]
    return problems


def validate_input(
    data: Any,
    signature: dict[str, Any],
    *,
    extra: str = "reject",
    cache: dict[Any, list[dict[str, str]]] | None = None,
) -> pa.Table:
    """Check ``data`` against ``signature``; return it with the signature's column order.

    ``extra``: ``"reject"`` (default) refuses unknown columns, ``"drop"`` removes them.
    ``cache``: a dict kept by the caller (one per signature) where the verdict on each input
    schema is remembered, so a stream of same-shaped requests is checked in microseconds.
    Raises ``SignatureError`` naming every missing, mistyped, unexpected or null column.
    """
    table = to_table(data)
    expected = {c["name"]: c for c in signature.get("inputs", [])}
    key = (table.schema, extra)
    found = cache.get(key) if cache is not None else None
    if found is None:
        found = _schema_problems(table, expected, extra)
        if cache is not None and len(cache) < 512:
            cache[key] = found
    problems = list(found)
    if not problems:
        for name, spec in expected.items():
            if not spec.get("nullable", True):
                nulls = table.column(name).null_count
                if nulls:
                    problems.append({"column": name, "problem": f"{nulls} null value(s)"})
    if problems:
        summary = "; ".join(f"{p['column']}: {p['problem']}" for p in problems)
        raise SignatureError(
            f"input does not match the model signature: {summary}",
            field=problems[0]["column"],
            details=problems,
        )
    if not expected or table.column_names == list(expected):
        return table
    return table.select(list(expected))
