"""Mergeable summaries of one column: what drift statistics need, without the rows.

A numeric column is counted into bins whose edges come from the reference (every distinct
reference value when there are at most ``MAX_EDGES`` of them, else ``MAX_EDGES`` reference
quantiles plus its hundred lowest and highest values), keeping apart the values equal to an
edge and the distance of the values beyond the reference's minimum and maximum. A categorical
column is counted per category. Two summaries of the same column add up, so the summary of a
day is the sum of its hours: a finished window is summarised once, cached, and never read
again from the log.

With every distinct reference value as an edge, the Kolmogorov-Smirnov statistic computed from
the summaries is exact; with quantile edges it is within one bin's mass (0.1%) of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_EDGES = 1000
TAIL_EDGES = 100  # the lowest and highest reference values kept as edges as well
MAX_CATEGORIES = 1000
OTHER = "(other)"  # categories beyond the most frequent MAX_CATEGORIES, counted together


@dataclass
class NumericSketch:
    """Counts of a numeric column against fixed edges ``e_0 < ... < e_{E-1}``.

    ``inside[i]`` counts values strictly between ``e_{i-1}`` and ``e_i`` (``inside[0]``: below
    ``e_0``, ``inside[E]``: above ``e_{E-1}``); ``equal[i]`` counts values equal to ``e_i``.
    """

    inside: np.ndarray
    equal: np.ndarray
    below_sum: float  # sum of (e_0 - x) over values below the first edge
    above_sum: float  # sum of (x - e_last) over values above the last edge
    missing: int

    @property
    def count(self) -> int:
        return int(self.inside.sum() + self.equal.sum())

    def __add__(self, other: NumericSketch) -> NumericSketch:
        return NumericSketch(
            self.inside + other.inside,
            self.equal + other.equal,
            self.below_sum + other.below_sum,
            self.above_sum + other.above_sum,
            self.missing + other.missing,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "inside": _sparse(self.inside),
            "equal": _sparse(self.equal),
            "size": len(self.equal),
            "below_sum": self.below_sum,
            "above_sum": self.above_sum,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericSketch:
        size = int(d["size"])
        return cls(
            _dense(d["inside"], size + 1),
            _dense(d["equal"], size),
            float(d["below_sum"]),
            float(d["above_sum"]),
            int(d["missing"]),
        )


@dataclass
class CategoricalSketch:
    """Rows per category (as text) and rows with no value."""

    counts: dict[str, int]
    missing: int

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def __add__(self, other: CategoricalSketch) -> CategoricalSketch:
        merged = dict(self.counts)
        for key, n in other.counts.items():
            merged[key] = merged.get(key, 0) + n
        return CategoricalSketch(_cap(merged), self.missing + other.missing)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "categorical", "counts": self.counts, "missing": self.missing}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalSketch:
        return cls({str(k): int(v) for k, v in d["counts"].items()}, int(d["missing"]))


Sketch = NumericSketch | CategoricalSketch


def sketch_from_dict(d: dict[str, Any]) -> Sketch:
    return NumericSketch.from_dict(d) if d["kind"] == "numeric" else CategoricalSketch.from_dict(d)


def _sparse(a: np.ndarray) -> list[list[int]]:
    idx = np.flatnonzero(a)
    return [idx.tolist(), a[idx].tolist()]


def _dense(pairs: list[list[int]], size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.int64)
    if pairs and pairs[0]:
        out[np.asarray(pairs[0], dtype=np.int64)] = np.asarray(pairs[1], dtype=np.int64)
    return out


def _cap(counts: dict[str, int]) -> dict[str, int]:
    if len(counts) <= MAX_CATEGORIES:
        return counts
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[: MAX_CATEGORIES - 1])
    kept[OTHER] = kept.get(OTHER, 0) + sum(n for _, n in ranked[MAX_CATEGORIES - 1 :])
    return kept


# -- numeric -------------------------------------------------------------------------------------
def as_float_array(values: Any) -> np.ndarray:
    """Numbers as float64 with NaN for missing; text that is not a number counts as missing."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False)
    arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_null(arr.type):
        return np.full(len(arr), np.nan)
    if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
        if pa.types.is_boolean(arr.type):
            arr = pc.cast(arr, pa.int8())
        else:
            import pandas as pd

            text = pc.cast(arr, pa.string()).to_pandas()
            return pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)


def reference_edges(sorted_values: np.ndarray) -> np.ndarray:
    """Every distinct value when there are few, else ``MAX_EDGES`` quantiles (data values)."""
    n = len(sorted_values)
    if n == 0:
        return sorted_values
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=new[1:])
    distinct = sorted_values[new]
    if len(distinct) <= MAX_EDGES:
        return distinct
    positions = np.round(np.linspace(0, n - 1, MAX_EDGES + 1)).astype(np.int64)
    # The extreme values too: tails are where quantile bins are widest and drift hides.
    tails = np.r_[sorted_values[:TAIL_EDGES], sorted_values[-TAIL_EDGES:]]
    return np.unique(np.r_[sorted_values[positions], tails])


def sketch_sorted(sorted_values: np.ndarray, edges: np.ndarray, missing: int) -> NumericSketch:
    """Summary of already sorted values (the reference): binary searches of the edges only."""
    n = len(sorted_values)
    if len(edges) == 0:  # no value at all (a column always missing)
        return NumericSketch(np.zeros(1, np.int64), np.zeros(0, np.int64), 0.0, 0.0, missing)
    left = np.searchsorted(sorted_values, edges, side="left")
    right = np.searchsorted(sorted_values, edges, side="right")
    inside = np.empty(len(edges) + 1, dtype=np.int64)
    inside[0] = left[0]
    inside[1:-1] = left[1:] - right[:-1]
    inside[-1] = n - right[-1]
    below = sorted_values[: left[0]]
    above = sorted_values[right[-1] :]
    return NumericSketch(
        inside,
        (right - left).astype(np.int64),
        float((edges[0] - below).sum()),
        float((above - edges[-1]).sum()),
        missing,
    )


def sketch_numeric(values: Any, edges: np.ndarray) -> NumericSketch:
    """Summary of any values (a window of the log).

    Sorting the values and searching the edges in them is nine times faster than searching
    each value among the edges (a sort runs at memory speed; a million random binary searches
    miss the cache at every step)."""
    x = as_float_array(values)
    finite = ~np.isnan(x)
    missing = int(len(x) - finite.sum())
    if missing:
        x = x[finite]
    if len(edges) == 0:  # a reference with no values in this column: everything is out of range
        return NumericSketch(
            np.array([len(x)], dtype=np.int64), np.zeros(0, np.int64), 0, 0, missing
        )
    return sketch_sorted(np.sort(x), edges, missing)


# -- categorical ---------------------------------------------------------------------------------
def as_text_array(values: Any) -> pa.Array:
    """Categories as text; a float NaN is a missing value, not a category."""
    arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_floating(arr.type):
        arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, arr.type), arr)
        as_int = pc.cast(arr, pa.int64(), safe=False)
        if pc.all(pc.equal(pc.cast(as_int, arr.type), arr)).as_py() in (True, None):
            arr = as_int  # 1.0 and 1 are the same class label
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    return arr


def sketch_categorical(values: Any) -> CategoricalSketch:
    arr = as_text_array(values)
    missing = arr.null_count
    counts = pc.value_counts(arr.drop_null() if missing else arr)
    keys = counts.field("values").to_pylist()
    ns = counts.field("counts").to_pylist()
    return CategoricalSketch(_cap(dict(zip(keys, ns, strict=True))), int(missing))
