"""What each logged prediction said: its label and, when the model gave them, its class
probabilities, decoded column-wise so a million predictions take a fraction of a second.

The log's ``output`` holds a plain label (text, or a number or boolean kept as JSON text), or
JSON: ``{"label": ..., "proba": {class: p}}``, ``{class: p}`` or ``[p0, p1, ...]``; a separate
``proba`` column may hold the probabilities too. Labels get one spelling per class (``1``,
``1.0``, ``true`` and ``"1"`` are the same class).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import polars as pl

PLAIN_INTEGER = r"^(-?\d+)\.0+$"


@dataclass
class Decoded:
    """One prediction decoded on its own (the row-by-row path)."""

    label: str | None
    proba: dict[str, float] | None


@dataclass
class Outputs:
    """Labels and probabilities of a frame's rows, in its order.

    ``proba`` has one column per class of ``classes`` (NaN where a row gave no probability for
    that class) and ``has_proba`` says which rows gave probabilities at all.
    """

    labels: list[str | None]
    classes: list[str]
    proba: np.ndarray
    has_proba: np.ndarray

    def classes_of(self, rows: np.ndarray) -> list[str]:
        """The classes some of ``rows`` gave a probability for."""
        if not self.classes or len(rows) == 0:
            return []
        seen = ~np.isnan(self.proba[rows]).all(axis=0)
        return [c for c, s in zip(self.classes, seen, strict=True) if s]

    def matrix(self, rows: np.ndarray, classes: list[str]) -> np.ndarray | None:
        """Rows x ``classes``, or ``None`` unless every row gave probabilities."""
        if len(rows) == 0 or not classes or not self.has_proba[rows].all():
            return None
        cols = [self.classes.index(c) for c in classes]
        return np.nan_to_num(self.proba[np.ix_(rows, cols)], nan=0.0)


def label_text(value: Any) -> str | None:
    """One spelling per class: ``1``, ``1.0``, ``True`` and ``"1"`` are the same label."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def decode_output(raw: Any, proba_raw: Any = None) -> Decoded:
    """One output, whatever its shape (see the module's docstring)."""
    value = raw
    if isinstance(raw, str) and raw[:1] in ("{", "["):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = raw
    proba = _proba(proba_raw) if proba_raw is not None else None
    if isinstance(value, dict):
        inner = value.get("proba", value.get("probabilities"))
        if inner is not None:
            proba = proba or _proba(inner)
            label = value.get("label", value.get("prediction"))
            return Decoded(label_text(label) if label is not None else _argmax(proba), proba)
        proba = proba or _proba(value)
        return Decoded(_argmax(proba), proba)
    if isinstance(value, list):
        proba = proba or _proba(value)
        return Decoded(_argmax(proba), proba)
    return Decoded(label_text(value), proba)


def _proba(value: Any) -> dict[str, float] | None:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    if isinstance(value, dict):
        items = [(label_text(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return None
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for _, v in items)
    if not items or not numeric:
        return None
    return {str(k): float(v) for k, v in items}


def _argmax(proba: dict[str, float] | None) -> str | None:
    return max(proba, key=proba.__getitem__) if proba else None


# -- column-wise ---------------------------------------------------------------------------------
def _normalise(labels: pl.Series) -> list[str | None]:
    """Text labels as ``label_text`` spells them, in one vectorised pass."""
    labels = labels.cast(pl.Utf8)
    return (
        pl.select(
            pl.when(labels == "true")
            .then(pl.lit("1"))
            .when(labels == "false")
            .then(pl.lit("0"))
            .when(labels == "null")
            .then(pl.lit(None, pl.Utf8))
            .otherwise(labels.str.replace(PLAIN_INTEGER, "${1}"))
        )
        .to_series()
        .to_list()
    )


def _numeric_struct(dtype: Any) -> bool:
    return isinstance(dtype, pl.Struct) and all(f.dtype.is_numeric() for f in dtype.fields)


def _from_json(outputs: pl.Series) -> Outputs | None:
    """Every output JSON of one shape, decoded by Polars; ``None`` when they are not."""
    if not outputs.str.starts_with("{").all() and not outputs.str.starts_with("[").all():
        return None
    try:
        decoded = outputs.str.json_decode(infer_schema_length=None)
    except Exception:  # shapes that do not agree: the row-by-row path sorts them out
        return None
    dtype = decoded.dtype
    labels: pl.Series | None = None
    if isinstance(dtype, pl.Struct) and {f.name for f in dtype.fields} & {"proba", "label"}:
        frame = decoded.struct.unnest()
        if "proba" not in frame.columns or not _numeric_struct(frame["proba"].dtype):
            return None
        probas = frame["proba"].struct.unnest()
        if "label" in frame.columns:
            labels = frame["label"]
    elif _numeric_struct(dtype):
        probas = decoded.struct.unnest()
    elif isinstance(dtype, pl.List) and dtype.inner.is_numeric():
        widths = decoded.list.len().unique().to_list()
        if len(widths) != 1 or widths[0] is None:
            return None
        names = [str(i) for i in range(widths[0])]
        probas = decoded.list.to_struct(fields=names).struct.unnest()
    else:
        return None
    classes = [label_text(_number_or_text(c)) or c for c in probas.columns]
    matrix = probas.cast(pl.Float64).to_numpy().astype(float)
    has = ~np.isnan(matrix).all(axis=1) if len(matrix) else np.zeros(0, bool)
    if labels is not None and labels.null_count() < len(labels):
        text = _normalise(labels)
    else:
        best = np.nan_to_num(matrix, nan=-1.0).argmax(axis=1) if matrix.size else []
        text = [classes[b] if h else None for b, h in zip(best, has, strict=True)]
    order = sorted(range(len(classes)), key=classes.__getitem__)
    return Outputs(text, [classes[i] for i in order], matrix[:, order], has)


def _number_or_text(name: str) -> Any:
    try:
        return orjson.loads(name)
    except orjson.JSONDecodeError:
        return name


def _row_by_row(outputs: list[Any], probas: list[Any]) -> Outputs:
    decoded = []
    for raw, proba in zip(outputs, probas, strict=True):
        value: Any = raw
        if isinstance(raw, str) and raw[:1] not in ("{", "["):
            try:  # numbers and booleans were stored as JSON text
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                value = raw
        decoded.append(decode_output(value, proba))
    classes = sorted({c for d in decoded if d.proba for c in d.proba})
    matrix = np.full((len(decoded), len(classes)), np.nan)
    index = {c: j for j, c in enumerate(classes)}
    for i, d in enumerate(decoded):
        for c, p in (d.proba or {}).items():
            matrix[i, index[c]] = p
    has = np.array([d.proba is not None for d in decoded], dtype=bool)
    return Outputs([d.label for d in decoded], classes, matrix, has)


def decode_frame(frame: pl.DataFrame) -> Outputs:
    """Labels and probabilities of every row: vectorised for plain labels and for JSON outputs
    of one shape, row by row for anything else."""
    if "output" not in frame.columns or frame.height == 0:
        n = frame.height
        return Outputs([None] * n, [], np.zeros((n, 0)), np.zeros(n, dtype=bool))
    outputs = frame["output"].cast(pl.Utf8)
    if "proba" not in frame.columns and outputs.null_count() == 0:
        if not (outputs.str.starts_with("{") | outputs.str.starts_with("[")).any():
            labels = _normalise(outputs)
            n = len(labels)
            return Outputs(labels, [], np.zeros((n, 0)), np.zeros(n, dtype=bool))
        found = _from_json(outputs)
        if found is not None:
            return found
    probas = frame["proba"].to_list() if "proba" in frame.columns else [None] * frame.height
    return _row_by_row(outputs.to_list(), probas)
