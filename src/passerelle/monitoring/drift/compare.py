"""A drift report: every column's test and checks, p-values corrected together, and the
multivariate detector, from a reference profile and summaries of the current data.

``compare(reference, current)`` does it all for two tables in memory; the monitoring service
feeds ``evaluate`` with summaries of log windows merged from its cache instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from passerelle.core.errors import InvalidInput
from passerelle.monitoring.drift import defaults
from passerelle.monitoring.drift.defaults import CHECKS, ColumnPlan, as_table, infer_kinds
from passerelle.monitoring.drift.detectors import DriftScore
from passerelle.monitoring.drift.distributions import distribution
from passerelle.monitoring.drift.multivariate import MAX_ROWS, DomainClassifier, _sample
from passerelle.monitoring.drift.profiles import ColumnProfile, profile_column
from passerelle.monitoring.drift.sketches import Sketch

PREDICTION = "output"  # the inference log's prediction column


@dataclass
class Profile:
    """The reference of a whole table: one profile per column and a sample of rows."""

    columns: dict[str, ColumnProfile]
    sample: pa.Table
    rows: int

    @property
    def kinds(self) -> dict[str, str]:
        return {name: p.kind for name, p in self.columns.items()}

    def summarise(self, table: pa.Table) -> dict[str, Sketch]:
        return {
            name: p.summarise(table.column(name))
            for name, p in self.columns.items()
            if name in table.column_names
        }


def build_profile(reference: Any, kinds: dict[str, str] | None = None) -> Profile:
    table = as_table(reference)
    if table.num_rows == 0:
        raise InvalidInput("the reference has no rows", field="reference")
    kinds = kinds or infer_kinds(table)
    columns = {name: profile_column(table.column(name), kind) for name, kind in kinds.items()}
    return Profile(columns, _sample(table.select(list(kinds)), MAX_ROWS, 0), table.num_rows)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment: a family of tests at level a raises a false alarm with
    probability at most a, whatever the number of columns."""
    k = len(p_values)
    if not k:
        return []
    order = np.argsort(p_values)
    adjusted = np.empty(k)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted.tolist()


@dataclass
class DriftReport:
    """Per column: the drift test, the checks, whether it drifted; and the multivariate test."""

    rows: dict[str, int]
    columns: list[dict[str, Any]]
    multivariate: dict[str, Any] | None = None
    tests_corrected: int = 0
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def drifted_columns(self) -> list[str]:
        return [c["column"] for c in self.columns if c["drifted"]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "drifted_columns": self.drifted_columns,
            "columns": self.columns,
            "multivariate": self.multivariate,
            "tests_corrected": self.tests_corrected,
            "skipped": self.skipped,
        }


def evaluate(
    profile: Profile,
    current: dict[str, Sketch],
    plans: dict[str, ColumnPlan] | None = None,
    *,
    current_rows: int,
    current_sample: pa.Table | None = None,
    with_distributions: bool = True,
) -> DriftReport:
    """Score every column of ``current`` against ``profile``; p-values adjusted together."""
    plans = plans or {}
    scored: list[tuple[str, str, list[tuple[Any, DriftScore]]]] = []
    for name, ref in profile.columns.items():
        sketch = current.get(name)
        if sketch is None:
            continue
        plan = plans.get(name, ColumnPlan(None, None))
        test = plan.test or defaults.default_test(ref.kind, ref.sketch.count, sketch.count)
        chosen = [defaults.detector(test, plan.threshold, ref.kind)]
        chosen += [defaults.detector(check, None, ref.kind) for check in CHECKS[ref.kind]]
        results = []
        for det in chosen:
            det.fit(ref)
            results.append((det, det.score(sketch)))
        scored.append((name, ref.kind, results))
    family = [s for _, _, rs in scored for d, s in rs if d.uses_p_value and s.p_value is not None]
    for score, adjusted in zip(family, holm([s.p_value for s in family]), strict=True):
        score.details["adjusted_p_value"] = adjusted
    columns = []
    for name, kind, results in scored:
        for det, score in results:
            if det.uses_p_value:
                score.drifted = det.decide(score.statistic, score.details.get("adjusted_p_value"))
        main = results[0][1]
        checks = [s.to_dict() for _, s in results[1:]]
        columns.append(
            {
                "column": name,
                "kind": kind,
                "role": "prediction" if name == PREDICTION else "feature",
                "test": main.test,
                "statistic": main.statistic,
                "p_value": main.p_value,
                "adjusted_p_value": main.details.get("adjusted_p_value"),
                "threshold": main.threshold,
                "drifted": any(s.drifted for _, s in results),
                "drift": main.to_dict(),
                "checks": checks,
                "rows": {
                    "reference": profile.columns[name].rows,
                    "current": current[name].count + current[name].missing,
                },
                "distribution": distribution(profile.columns[name], current[name])
                if with_distributions
                else None,
            }
        )
    multivariate = None
    if current_sample is not None:
        features = {k: v for k, v in profile.kinds.items() if k in current_sample.column_names}
        features.pop(PREDICTION, None)
        if features:
            det = DomainClassifier(kinds=features).fit(profile.sample)
            multivariate = det.score(current_sample).to_dict()
    return DriftReport(
        {"reference": profile.rows, "current": current_rows},
        columns,
        multivariate,
        len(family),
    )


def compare(
    reference: Any,
    current: Any,
    overrides: dict[str, Any] | None = None,
    *,
    multivariate: bool = True,
) -> DriftReport:
    """Drift of ``current`` against ``reference`` (two tables), on the columns they share.

    Args:
        overrides: per column, ``{"test": ..., "threshold": ..., "kind": ...}``.
        multivariate: also train the domain classifier (a second or two on large tables).
    """
    ref, cur = as_table(reference), as_table(current)
    shared = [c for c in ref.column_names if c in cur.column_names]
    if not shared:
        raise InvalidInput("the reference and the current data share no column", field="current")
    if ref.num_rows == 0:
        raise InvalidInput("the reference has no rows", field="reference")
    kinds, plans = defaults.parse_overrides(overrides, infer_kinds(ref.select(shared)))
    profile = build_profile(ref.select(shared), kinds)
    sketches = profile.summarise(cur)
    sample = _sample(cur.select(shared), MAX_ROWS, 1) if multivariate else None
    report = evaluate(profile, sketches, plans, current_rows=cur.num_rows, current_sample=sample)
    report.skipped = {
        **{c: defaults.skip_reason(ref.column(c)) for c in shared if c not in kinds},
        **{c: "not in the current data" for c in ref.column_names if c not in cur.column_names},
    }
    return report
