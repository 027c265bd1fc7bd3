"""Which test each column gets, by its type and the sample size, and the user's overrides.

Up to ``LARGE_SAMPLE`` rows (on the smaller side), p-value tests decide: Kolmogorov-Smirnov
for numbers, chi-squared for categories, corrected for the number of tests in the report
(Holm). Above it, a p-value finds any difference significant, however small, and twenty clean
columns at the 5% level raise about one false alarm per report: effect sizes decide instead
(Wasserstein distance in reference deviations for numbers, Jensen-Shannon distance for
categories). Missing values, the reference's range and new categories are checked always.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from passerelle.core.errors import InvalidInput
from passerelle.monitoring.drift.detectors import DETECTORS, Detector

LARGE_SAMPLE = 1000
MAX_LEVELS_AS_CATEGORIES = 20  # an integer column with this few values is a set of classes
MIN_IDENTIFIER_LEVELS = 50  # text with more distinct values than this and than half its rows
DEFAULT_TESTS = {
    ("numeric", False): "ks",
    ("numeric", True): "wasserstein",
    ("categorical", False): "chi2",
    ("categorical", True): "jensenshannon",
}
CHECKS = {"numeric": ("missing", "range"), "categorical": ("missing", "new_categories")}
DRIFT_TESTS = {
    "numeric": ("ks", "wasserstein", "psi"),
    "categorical": ("chi2", "jensenshannon", "psi"),
}
OVERRIDE_KEYS = ("test", "threshold", "kind")


def as_table(data: Any) -> pa.Table:
    """pandas, Polars, Arrow or a dict of columns, as an Arrow table."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    if isinstance(data, dict):
        return pa.table(data)
    raise InvalidInput(
        f"expected a table (pandas, Polars or Arrow), got {type(data).__name__}", field="data"
    )


def infer_kind(column: pa.ChunkedArray | pa.Array) -> str | None:
    """Numbers are numeric, except integers with few distinct values (class labels); text and
    booleans are categorical; other types (times, lists, binary) are not compared: ``None``."""
    t = column.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_integer(t):
        distinct = pc.count_distinct(column).as_py()
        return "categorical" if distinct <= MAX_LEVELS_AS_CATEGORIES else "numeric"
    if pa.types.is_boolean(t):
        return "categorical"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or str(t) == "string_view":
        return None if _identifier_like(column) else "categorical"
    return None


def _identifier_like(column: pa.ChunkedArray | pa.Array) -> bool:
    """Text with a distinct value on most rows (ids, emails): every new row is a new category,
    which says nothing about drift."""
    distinct = pc.count_distinct(column).as_py()
    return distinct > max(MIN_IDENTIFIER_LEVELS, len(column) // 2)


def skip_reason(column: pa.ChunkedArray | pa.Array) -> str:
    """Why ``infer_kind`` leaves a column out."""
    t = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or str(t) == "string_view":
        return "an identifier: a distinct value on most rows"
    return f"its type ({t}) is not compared"


def infer_kinds(table: pa.Table) -> dict[str, str]:
    """Kinds of the columns that can be compared (see ``infer_kind``)."""
    kinds = {name: infer_kind(table.column(name)) for name in table.column_names}
    return {name: kind for name, kind in kinds.items() if kind is not None}


@dataclass(frozen=True)
class ColumnPlan:
    """The drift test of one column and its threshold (``None``: the test's default)."""

    test: str | None  # None: chosen by sample size
    threshold: float | None


def default_test(kind: str, reference_rows: int, current_rows: int) -> str:
    large = min(reference_rows, current_rows) > LARGE_SAMPLE
    return DEFAULT_TESTS[(kind, large)]


def detector(test: str, threshold: float | None, kind: str) -> Detector:
    cls = DETECTORS[test]
    params: dict[str, Any] = {"threshold": threshold}
    if "kind" in cls().get_params():
        params["kind"] = kind
    return cls(**params)


def parse_overrides(
    overrides: dict[str, Any] | None, kinds: dict[str, str]
) -> tuple[dict[str, str], dict[str, ColumnPlan]]:
    """Check the overrides against the columns compared; return the kinds and plans to use.

    ``overrides`` maps a column to ``{"test": ..., "threshold": ..., "kind": ...}`` (each key
    optional). Anything unknown is refused with the offending field named, before any work.
    """
    kinds = dict(kinds)
    plans: dict[str, ColumnPlan] = {}
    if overrides is None:
        return kinds, plans
    if not isinstance(overrides, dict):
        raise InvalidInput("overrides must map column names to settings", field="overrides")
    for column, spec in overrides.items():
        where = f"overrides.{column}"
        if column not in kinds:
            known = ", ".join(sorted(kinds)[:20]) or "none"
            raise InvalidInput(
                f"unknown column {column!r} in overrides (columns compared: {known})",
                field=where,
            )
        if not isinstance(spec, dict):
            raise InvalidInput("a column's override is an object", field=where)
        extra = sorted(set(spec) - set(OVERRIDE_KEYS))
        if extra:
            raise InvalidInput(
                f"unknown setting {extra[0]!r}: use {', '.join(OVERRIDE_KEYS)}",
                field=f"{where}.{extra[0]}",
            )
        kind = spec.get("kind") or kinds[column]
        if kind not in DRIFT_TESTS:
            raise InvalidInput("kind must be numeric or categorical", field=f"{where}.kind")
        kinds[column] = kind
        test = spec.get("test")
        if test is not None and test not in DRIFT_TESTS[kind]:
            raise InvalidInput(
                f"test {test!r} does not apply to a {kind} column: use "
                f"{', '.join(DRIFT_TESTS[kind])}",
                field=f"{where}.test",
            )
        threshold = spec.get("threshold")
        if threshold is not None and (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not 0 < threshold < 1e6
        ):
            raise InvalidInput("threshold must be a positive number", field=f"{where}.threshold")
        plans[column] = ColumnPlan(test, None if threshold is None else float(threshold))
    return kinds, plans
