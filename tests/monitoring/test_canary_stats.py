"""Canary statistics on generated logs, without an app: tests, minimum samples, verdicts."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from passerelle.monitoring import canary
from passerelle.monitoring.outputs import decode_frame
from passerelle.monitoring.service import Labelled


def _loaded(arms: dict[str, dict], seed: int = 0) -> Labelled:
    """``arms``: route -> {n, accuracy, labelled, latency, errors}; primary is v1, canary v2."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    ts = 1_700_000_000_000
    for route, spec in arms.items():
        for i in range(spec["n"]):
            ts += 1
            right = rng.uniform() < spec.get("accuracy", 0.9)
            y = int(rng.integers(0, 2))
            rows.append(
                {
                    "prediction_id": f"{route}{i}",
                    "version": 1 if route == "primary" else 2,
                    "route": route,
                    "output": str(y if right else 1 - y),
                    "latency_ms": float(rng.gamma(4, spec.get("latency", 5.0) / 4)),
                    "status": "error" if rng.uniform() < spec.get("errors", 0.0) else "ok",
                    "ts": ts,
                }
            )
            truth.append(y if i < spec.get("labelled", spec["n"]) else None)
    frame = pl.DataFrame(rows).with_row_index("row")
    return Labelled(frame, decode_frame(frame), truth, 1, "churn")


def _figures(comparisons):
    return {c.figure: c for c in comparisons}


def test_two_proportion_test_agrees_with_scipy_and_falls_back_to_fisher():
    p, test = canary.two_proportions_greater(60, 400, 30, 400)
    assert test == "two-proportion z"
    z = (60 / 400 - 30 / 400) / np.sqrt(90 / 800 * (1 - 90 / 800) * (2 / 400))
    assert p == pytest.approx(stats.norm.sf(z))
    p, test = canary.two_proportions_greater(3, 40, 0, 40)
    assert test == "fisher exact"
    assert p == pytest.approx(stats.fisher_exact([[3, 37], [0, 40]], alternative="greater")[1])


def test_a_worse_canary_is_worse_only_once_its_sample_is_reached():
    thresholds = canary.Thresholds(min_samples=150)
    worse = {"primary": {"n": 400, "accuracy": 0.9}, "canary": {"n": 200, "accuracy": 0.6}}
    comparisons = canary.compare(_loaded(worse), 1, 2, thresholds)
    assert _figures(comparisons)["accuracy"].worse
    assert canary.verdict(comparisons) == "worse"
    few = {"primary": {"n": 400, "accuracy": 0.9}, "canary": {"n": 100, "accuracy": 0.6}}
    comparisons = canary.compare(_loaded(few), 1, 2, thresholds)
    assert not any(c.worse for c in comparisons)
    assert canary.verdict(comparisons) == "insufficient"


def test_an_equal_canary_is_no_worse_and_a_small_difference_is_not_called_worse():
    same = {"primary": {"n": 500, "accuracy": 0.9}, "canary": {"n": 500, "accuracy": 0.88}}
    comparisons = canary.compare(_loaded(same, seed=3), 1, 2, canary.Thresholds(min_samples=200))
    assert canary.verdict(comparisons) == "no_worse"
    assert set(_figures(comparisons)) == {"error_rate", "latency_p95_ms", "accuracy"}


def test_errors_and_latency():
    errors = {"primary": {"n": 600, "errors": 0.01}, "canary": {"n": 600, "errors": 0.08}}
    comparisons = canary.compare(_loaded(errors), 1, 2, canary.Thresholds(min_samples=100))
    assert _figures(comparisons)["error_rate"].worse
    slow = {"primary": {"n": 400, "latency": 5.0}, "canary": {"n": 400, "latency": 15.0}}
    comparisons = canary.compare(_loaded(slow), 1, 2, canary.Thresholds(min_samples=100))
    assert _figures(comparisons)["latency_p95_ms"].worse
    # significantly slower, but within the tolerated increase: not worse
    tolerant = canary.Thresholds(min_samples=100, max_latency_increase=5.0)
    assert not _figures(canary.compare(_loaded(slow), 1, 2, tolerant))["latency_p95_ms"].worse


def test_without_feedback_quality_does_not_take_part():
    unlabelled = {
        "primary": {"n": 300, "labelled": 0},
        "canary": {"n": 300, "labelled": 0},
    }
    comparisons = canary.compare(_loaded(unlabelled), 1, 2, canary.Thresholds(min_samples=100))
    assert set(_figures(comparisons)) == {"error_rate", "latency_p95_ms"}
    assert canary.verdict(comparisons) == "no_worse"
    assert canary.summary(comparisons, "no_worse").startswith("canary no worse")
