"""Reference versus current distributions of a column, small enough to draw on a page.

Numeric columns: shares in twenty bins of the reference (every 5% of its rows), plus a bin
below its minimum and one above its maximum; categorical columns: the commonest categories.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from passerelle.monitoring.drift.profiles import ColumnProfile
from passerelle.monitoring.drift.sketches import CategoricalSketch, NumericSketch, Sketch

NUMERIC_BINS = 20
TOP_CATEGORIES = 20


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).tolist() if total else [0.0] * len(counts)


def numeric(profile: ColumnProfile, cur: NumericSketch) -> dict[str, Any]:
    ref = profile.sketch
    assert isinstance(ref, NumericSketch)
    edges = profile.edges
    if len(edges) == 0:
        return {"labels": [], "reference": [], "current": []}
    r_cum = np.cumsum(ref.inside[:-1] + ref.equal)
    c_cum = np.cumsum(cur.inside[:-1] + cur.equal)
    targets = np.linspace(0, ref.count, NUMERIC_BINS + 1)[1:-1]
    cuts = np.unique(np.r_[np.searchsorted(r_cum, targets, side="left"), len(edges) - 1])
    r_at = np.r_[ref.inside[0], r_cum[cuts]]
    c_at = np.r_[cur.inside[0], c_cum[cuts]]
    r_bins = np.r_[np.diff(r_at, prepend=0), ref.inside[-1]]
    c_bins = np.r_[np.diff(c_at, prepend=0), cur.inside[-1]]
    lo = f"< {edges[0]:.4g}"
    labels = [lo, *(f"≤ {edges[i]:.4g}" for i in cuts), f"> {edges[-1]:.4g}"]
    return {"labels": labels, "reference": _shares(r_bins), "current": _shares(c_bins)}


def categorical(ref: CategoricalSketch, cur: CategoricalSketch) -> dict[str, Any]:
    total: dict[str, int] = dict(ref.counts)
    for k, n in cur.counts.items():
        total[k] = total.get(k, 0) + n
    keys = sorted(total, key=lambda k: -total[k])[:TOP_CATEGORIES]
    r = np.array([ref.counts.get(k, 0) for k in keys], float)
    c = np.array([cur.counts.get(k, 0) for k in keys], float)
    rn, cn = max(ref.count, 1), max(cur.count, 1)
    return {"labels": keys, "reference": (r / rn).tolist(), "current": (c / cn).tolist()}


def distribution(profile: ColumnProfile, cur: Sketch) -> dict[str, Any]:
    if isinstance(cur, NumericSketch):
        return numeric(profile, cur)
    assert isinstance(profile.sketch, CategoricalSketch)
    return categorical(profile.sketch, cur)
