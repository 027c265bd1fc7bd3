"""The numeric fast path: JSON records straight to a float64 matrix, checked like the signature.

Most served models take a handful of numeric columns. For them, building an Arrow table from the
records, checking its schema, converting it to pandas and letting scikit-learn re-check a
DataFrame costs far more than the model itself (about 0.9 ms against 0.1 ms for a logistic
regression on 20 columns). When the signature is all numeric, the records are checked with the
same rules as ``validate_input`` (an integer column takes integers only, a float column integers
or floats, nothing else, no missing or unexpected column, no null) and stacked into one array.

Anything this path does not take (a null, a wrong type, a missing or extra column) returns
``None``: the caller then goes the general way, which names every offending column. So the fast
path never decides an error message, and never accepts what the general path would refuse.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

_FLOAT_OK = frozenset({int, float})
_INT_OK = frozenset({int})
_EXACT_LIMIT = 2.0**53  # beyond it, integers lose digits as float64


@dataclass(frozen=True)
class MatrixPlan:
    """How records map onto the matrix a model takes: column order, and which are integers."""

    columns: tuple[str, ...]
    integer: tuple[int, ...]  # positions of integer columns (their values must be ints)
    row: Callable[[dict[str, Any]], tuple[Any, ...]]

    @classmethod
    def from_signature(cls, signature: dict[str, Any] | None) -> MatrixPlan | None:
        """A plan when every input is numeric; None when the general path must be taken."""
        inputs = (signature or {}).get("inputs") or []
        if not inputs or any(c.get("type") not in ("integer", "float") for c in inputs):
            return None
        columns = tuple(str(c["name"]) for c in inputs)
        getter = operator.itemgetter(*columns)
        row = getter if len(columns) > 1 else (lambda r: (getter(r),))
        integer = tuple(i for i, c in enumerate(inputs) if c["type"] == "integer")
        return cls(columns, integer, row)

    def matrix(self, records: list[dict[str, Any]]) -> np.ndarray | None:
        """The records as an (n, columns) float64 array, or None when they need a closer look."""
        width = len(self.columns)
        try:
            if any(len(r) != width for r in records):
                return None  # an unexpected column (every expected one is checked below)
            rows = list(map(self.row, records))
        except (KeyError, TypeError):
            return None  # a missing column, or a record that is not an object
        if not set(map(type, chain.from_iterable(rows))) <= _FLOAT_OK:
            return None  # a null, a string, a boolean...
        if self.integer:
            for i in self.integer:
                if not {type(r[i]) for r in rows} <= _INT_OK:
                    return None
        try:
            matrix = np.array(rows, dtype=np.float64)
        except OverflowError:  # an integer beyond float64's range
            return None
        if matrix.size and np.abs(matrix).max() >= _EXACT_LIMIT:
            return None  # perhaps an integer float64 cannot hold exactly: look closer
        return matrix

    def frame(self, matrix: np.ndarray) -> Any:
        """The matrix as the DataFrame the general path would have built (integer columns kept
        as integers), for models that need column names or types."""
        import pandas as pd

        frame = pd.DataFrame(matrix, columns=list(self.columns), copy=False)
        for i in self.integer:
            name = self.columns[i]
            frame[name] = frame[name].astype(np.int64)
        return frame
