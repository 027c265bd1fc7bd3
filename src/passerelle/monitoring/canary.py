"""Canary analysis: is the canary worse than the primary, no worse, or is it too early to say?

Both routes are compared over the same period (since the canary was deployed), figure by
figure, each with a one-sided test of "the canary is worse" and a minimum sample per route:

- error rate: share of logged predictions whose status is not ``ok``; two-proportion z-test,
  Fisher's exact test when an expected count is under five;
- latency: one sample per model call; Mann-Whitney U, and only counted as worse when the p95
  also grew by more than the tolerated share (a significant but negligible slowdown is not a
  reason to roll back);
- quality from feedback (when any labelled prediction exists): accuracy (two-proportion test)
  for classifiers, absolute error (Mann-Whitney U) for regressors.

The significance level is split across the figures tested (Bonferroni), so that three tests at
5% do not raise a false "worse" one time in seven.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from passerelle.monitoring.outputs import label_text
from passerelle.monitoring.service import Labelled, detect_task


@dataclass
class Comparison:
    figure: str
    primary: float | None
    canary: float | None
    primary_n: int
    canary_n: int
    test: str
    p_value: float | None
    enough: bool
    worse: bool = False


@dataclass
class Thresholds:
    min_samples: int = 200
    alpha: float = 0.05
    max_latency_increase: float = 0.2


def two_proportions_greater(x1: int, n1: int, x2: int, n2: int) -> tuple[float, str]:
    """P-value of "proportion 1 is greater than proportion 2" (one-sided)."""
    from scipy import stats

    pooled = (x1 + x2) / (n1 + n2)
    expected = min(n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled))
    if expected < 5:
        _, p = stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="greater")
        return float(p), "fisher exact"
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0, "two-proportion z"
    z = (x1 / n1 - x2 / n2) / se
    return float(stats.norm.sf(z)), "two-proportion z"


def greater_samples(a: np.ndarray, b: np.ndarray) -> float:
    """P-value of "values of ``a`` tend to be greater than those of ``b``" (Mann-Whitney U)."""
    from scipy import stats

    if len(a) == 0 or len(b) == 0:
        return 1.0
    return float(stats.mannwhitneyu(a, b, alternative="greater").pvalue)


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(f"{value:.6g}")


def compare(
    loaded: Labelled,
    primary_version: int,
    canary_version: int,
    thresholds: Thresholds,
) -> list[Comparison]:
    frame = loaded.frame
    arms = {
        "primary": frame.filter(
            (pl.col("route") == "primary") & (pl.col("version") == primary_version)
        ),
        "canary": frame.filter(
            (pl.col("route") == "canary") & (pl.col("version") == canary_version)
        ),
    }
    m = thresholds.min_samples
    out = []
    # error rate
    n = {k: f.height for k, f in arms.items()}
    errors = {k: f.filter(pl.col("status") != "ok").height for k, f in arms.items()}
    enough = n["primary"] >= m and n["canary"] >= m
    p_err, test = (
        two_proportions_greater(errors["canary"], n["canary"], errors["primary"], n["primary"])
        if n["primary"] and n["canary"]
        else (None, "two-proportion z")
    )
    out.append(
        Comparison(
            "error_rate",
            _round(errors["primary"] / n["primary"]) if n["primary"] else None,
            _round(errors["canary"] / n["canary"]) if n["canary"] else None,
            n["primary"],
            n["canary"],
            test,
            _round(p_err),
            enough,
        )
    )
    # latency: one value per model call (rows of one call share their time and latency)
    calls = {
        k: f.filter(pl.col("status") == "ok")
        .unique(subset=["ts", "latency_ms"])["latency_ms"]
        .drop_nulls()
        .to_numpy()
        for k, f in arms.items()
    }
    p95 = {k: float(np.percentile(v, 95)) if len(v) else None for k, v in calls.items()}
    out.append(
        Comparison(
            "latency_p95_ms",
            _round(p95["primary"]),
            _round(p95["canary"]),
            len(calls["primary"]),
            len(calls["canary"]),
            "mann-whitney u",
            _round(greater_samples(calls["canary"], calls["primary"])),
            len(calls["primary"]) >= m and len(calls["canary"]) >= m,
        )
    )
    quality = _quality(loaded, arms, m)
    if quality is not None:
        out.append(quality)
    tested = [c for c in out if c.enough and c.p_value is not None]
    level = thresholds.alpha / max(len(out), 1)
    for c in tested:
        if c.p_value is not None and c.p_value < level:
            if c.figure == "latency_p95_ms":
                c.worse = (c.canary or 0) > (c.primary or 0) * (1 + thresholds.max_latency_increase)
            else:
                c.worse = True
    return out


def _quality(loaded: Labelled, arms: dict[str, pl.DataFrame], m: int) -> Comparison | None:
    rows = {
        k: [i for i in f["row"].to_list() if loaded.truth[i] is not None] for k, f in arms.items()
    }
    if not rows["primary"] and not rows["canary"]:
        return None  # no feedback at all: quality is not part of the decision
    enough = len(rows["primary"]) >= m and len(rows["canary"]) >= m
    if detect_task(loaded) == "regression":
        errors = {}
        for k, idx in rows.items():
            errs = []
            for i in idx:
                try:
                    errs.append(abs(float(loaded.truth[i]) - float(loaded.outputs.labels[i])))  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    continue
            errors[k] = np.array(errs)
        mae = {k: float(v.mean()) if len(v) else None for k, v in errors.items()}
        return Comparison(
            "mae",
            _round(mae["primary"]),
            _round(mae["canary"]),
            len(errors["primary"]),
            len(errors["canary"]),
            "mann-whitney u",
            _round(greater_samples(errors["canary"], errors["primary"])),
            enough,
        )
    right = {
        k: sum(label_text(loaded.truth[i]) == loaded.outputs.labels[i] for i in idx)
        for k, idx in rows.items()
    }
    n = {k: len(idx) for k, idx in rows.items()}
    wrong = {k: n[k] - right[k] for k in n}
    p, test = (
        two_proportions_greater(wrong["canary"], n["canary"], wrong["primary"], n["primary"])
        if n["primary"] and n["canary"]
        else (None, "two-proportion z")
    )
    return Comparison(
        "accuracy",
        _round(right["primary"] / n["primary"]) if n["primary"] else None,
        _round(right["canary"] / n["canary"]) if n["canary"] else None,
        n["primary"],
        n["canary"],
        test,
        _round(p),
        enough,
    )


def verdict(comparisons: list[Comparison]) -> str:
    """``worse`` as soon as one figure is; ``no_worse`` once every figure has its sample."""
    if any(c.worse for c in comparisons):
        return "worse"
    if all(c.enough for c in comparisons):
        return "no_worse"
    return "insufficient"


def summary(comparisons: list[Comparison], result: str) -> str:
    """One sentence for the deployment history: which figures, values, p-values, samples."""
    shown = [c for c in comparisons if c.worse] if result == "worse" else comparisons
    parts = [
        f"{c.figure} {c.canary} vs {c.primary} on the primary (p={c.p_value}, "
        f"n={c.canary_n}/{c.primary_n})"
        for c in shown
    ]
    head = {
        "worse": "canary worse than the primary",
        "no_worse": "canary no worse than the primary",
        "insufficient": "not enough data yet",
    }[result]
    return f"{head}: " + "; ".join(parts)


def as_dicts(comparisons: list[Comparison]) -> list[dict[str, Any]]:
    return [asdict(c) for c in comparisons]
