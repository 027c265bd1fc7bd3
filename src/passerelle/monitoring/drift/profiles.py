"""The reference side of a column, learned once: its summary, bin edges and spread.

A detector fitted on raw values builds one; a report fits every detector of a column on the
same profile, so the reference is sorted once per column however many tests read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from passerelle.monitoring.drift.sketches import (
    CategoricalSketch,
    NumericSketch,
    Sketch,
    as_float_array,
    reference_edges,
    sketch_categorical,
    sketch_from_dict,
    sketch_numeric,
    sketch_sorted,
)

KINDS = ("numeric", "categorical")


@dataclass
class ColumnProfile:
    kind: str
    sketch: Sketch
    edges: np.ndarray  # numeric only (empty for categorical columns)
    spread: float  # standard deviation of the reference (numeric), for normalised distances
    minimum: float | None = None
    maximum: float | None = None

    @property
    def rows(self) -> int:
        return self.sketch.count + self.sketch.missing

    def summarise(self, values: Any) -> Sketch:
        """Summary of new values of this column, comparable with the reference's."""
        if self.kind == "numeric":
            return sketch_numeric(values, self.edges)
        return sketch_categorical(values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "sketch": self.sketch.to_dict(),
            "edges": self.edges.tolist(),
            "spread": self.spread,
            "minimum": self.minimum,
            "maximum": self.maximum,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnProfile:
        return cls(
            d["kind"],
            sketch_from_dict(d["sketch"]),
            np.asarray(d["edges"], dtype=np.float64),
            float(d["spread"]),
            d.get("minimum"),
            d.get("maximum"),
        )


def profile_column(values: Any, kind: str) -> ColumnProfile:
    """Learn the reference side of one column (``kind``: numeric or categorical)."""
    if kind == "categorical":
        return ColumnProfile(kind, sketch_categorical(values), np.zeros(0), 0.0)
    x = as_float_array(values)
    finite = x[~np.isnan(x)]
    missing = len(x) - len(finite)
    finite = np.sort(finite)
    edges = reference_edges(finite)
    sketch = sketch_sorted(finite, edges, missing)
    spread = float(finite.std()) if len(finite) else 0.0
    lo = float(finite[0]) if len(finite) else None
    hi = float(finite[-1]) if len(finite) else None
    return ColumnProfile(kind, sketch, edges, spread, lo, hi)


def as_profile(reference: Any, kind: str) -> ColumnProfile:
    if isinstance(reference, ColumnProfile):
        return reference
    return profile_column(reference, kind)


def as_sketch(profile: ColumnProfile, current: Any) -> Sketch:
    if isinstance(current, NumericSketch | CategoricalSketch):
        return current
    return profile.summarise(current)
