"""Live performance of an endpoint per time window and version: measured from feedback where
labels have arrived, estimated from the model's confidences where they have not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import InvalidInput
from passerelle.monitoring import data, estimate, performance
from passerelle.monitoring.outputs import Outputs, decode_frame, label_text
from passerelle.serving import feedback as serving_feedback
from passerelle.serving import service as serving
from passerelle.serving.inference_log import InferenceLog

TASKS = ("classification", "regression")
DEFAULT_WINDOWS = 30  # without ``since``: the last 30 windows
MAX_CLASSES_FOR_INTEGERS = 20  # integer outputs with more distinct values are a regression
CI = {
    "level": 0.95,
    "accuracy": "wilson",
    "others": f"percentile bootstrap, {performance.BOOTSTRAP} resamples",
}


@dataclass
class Labelled:
    """An endpoint's predictions in a time range, decoded, with the feedback joined."""

    frame: pl.DataFrame  # one row per prediction, plus ``row`` (index into the lists below)
    outputs: Outputs
    truth: list[Any]  # the ground truth, or None while pending
    endpoint_id: int
    endpoint_name: str


def load(
    session: Session, log: InferenceLog, endpoint_id: int, name: str, since: int, until: int
) -> Labelled:
    table = log.read(name, since, columns=[*data.LOG_COLUMNS, "proba"])
    frame = data.predictions_frame(table, since, until)
    frame = frame.with_row_index("row")
    known = serving_feedback.feedback_for(session, endpoint_id, since)
    truth = [
        (known[pid]["ground_truth"] if pid in known else None)
        for pid in frame["prediction_id"].to_list()
    ]
    return Labelled(frame, decode_frame(frame), truth, endpoint_id, name)


def detect_task(loaded: Labelled) -> str:
    """Classification when probabilities are logged or labels are text, booleans or a few
    integers; regression when predictions or truths are non-integer numbers or many integers."""
    if loaded.outputs.has_proba.any():
        return "classification"
    values = [t for t in loaded.truth if t is not None]
    values += [label for label in loaded.outputs.labels[:1000] if label is not None]
    numbers = []
    for v in values:
        if isinstance(v, bool):
            return "classification"
        if isinstance(v, int | float):
            numbers.append(float(v))
            continue
        try:
            numbers.append(float(v))
        except (TypeError, ValueError):
            return "classification"
    if not numbers:
        return "classification"
    if any(not x.is_integer() for x in numbers):
        return "regression"
    return "classification" if len(set(numbers)) <= MAX_CLASSES_FOR_INTEGERS else "regression"


def version_models(loaded: Labelled, rows: np.ndarray) -> tuple[list[str], estimate.Calibrator]:
    """The class columns of one version and its calibrator, fitted on all its labelled rows."""
    classes = loaded.outputs.classes_of(rows)
    labelled = np.array([i for i in rows if loaded.truth[i] is not None], dtype=int)
    calibrator = estimate.Calibrator()
    matrix = loaded.outputs.matrix(labelled, classes) if classes else None
    if matrix is not None:
        calibrator.fit(matrix, [label_text(loaded.truth[i]) or "" for i in labelled], classes)
    return classes, calibrator


def group_figures(
    loaded: Labelled,
    rows: np.ndarray,
    task: str,
    classes: list[str],
    calibrator: estimate.Calibrator,
) -> dict[str, Any]:
    """Measured metrics with intervals, and the estimate, of one window and version."""
    labelled = [int(i) for i in rows if loaded.truth[i] is not None]
    out: dict[str, Any] = {"predictions": len(rows), "labelled": len(labelled)}
    out["pending"] = out["predictions"] - out["labelled"]
    labels = loaded.outputs.labels
    if task == "classification":
        y_true = [label_text(loaded.truth[i]) or "" for i in labelled]
        y_pred = [labels[i] or "" for i in labelled]
        matrix = loaded.outputs.matrix(np.array(labelled, dtype=int), classes)
        values, intervals = performance.classification_metrics(y_true, y_pred, matrix, classes)
    else:
        y_true_n, y_pred_n = _numbers(loaded, labelled)
        values, intervals = performance.regression_metrics(y_true_n, y_pred_n)
    out["metrics"] = performance.rounded(values)
    out["intervals"] = {
        k: list(v) if v else None for k, v in performance.rounded(intervals).items()
    }
    out["estimate"] = None
    if task == "classification" and classes:
        matrix = loaded.outputs.matrix(np.asarray(rows, dtype=int), classes)
        if matrix is not None:
            expected = estimate.estimate(
                calibrator.transform(matrix), [labels[int(i)] or "" for i in rows], classes
            )
            if expected is not None:
                out["estimate"] = {
                    "predictions": len(rows),
                    "calibrated": calibrator.fitted,
                    "metrics": performance.rounded(expected),
                }
    return out


def _numbers(loaded: Labelled, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
    truths, preds = [], []
    for i in rows:
        try:
            t = float(loaded.truth[i])
            p = float(loaded.outputs.labels[i])  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue  # a label that is not a number cannot enter a regression metric
        truths.append(t)
        preds.append(p)
    return np.array(truths), np.array(preds)


def performance_report(
    session: Session,
    principal: Principal,
    log: InferenceLog,
    name: str,
    *,
    window: str | int = "1d",
    since: str | int | None = None,
    task: str | None = None,
    project: str | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """Per window (aligned on multiples of the window since the epoch, in UTC) and version."""
    if task is not None and task not in TASKS:
        raise InvalidInput(f"task must be one of {', '.join(TASKS)}", field="task")
    window_ms = data.duration_ms(window, "window")
    endpoint = serving.get_endpoint(session, principal, name, Action.READ, project)
    now = now if now is not None else data.now_ms()
    start = data.since_ms(since, DEFAULT_WINDOWS * window_ms, now)
    if start >= now:
        raise InvalidInput("since must be in the past", field="since")
    start -= start % window_ms
    if (now - start) / window_ms > data.MAX_WINDOWS:
        raise InvalidInput(
            f"{(now - start) // window_ms} windows requested: at most {data.MAX_WINDOWS}; "
            "widen the window or shorten since",
            field="window",
        )
    loaded = load(session, log, endpoint.id, endpoint.name, start, now + 1)
    task = task or detect_task(loaded)
    frame = loaded.frame.with_columns((pl.col("ts") - pl.col("ts") % window_ms).alias("window"))
    rows_out = []
    per_version: dict[int, tuple[list[str], estimate.Calibrator]] = {}
    for (version,), group in frame.group_by(["version"], maintain_order=True):
        per_version[int(version)] = version_models(loaded, group["row"].to_numpy())
    for (win, version), group in sorted(
        frame.group_by(["window", "version"]), key=lambda g: (g[0][0], g[0][1])
    ):
        classes, calibrator = per_version[int(version)]
        figures = group_figures(loaded, group["row"].to_numpy(), task, classes, calibrator)
        rows_out.append(
            {
                "window_start": int(win),
                "window_end": int(win) + window_ms,
                "version": int(version),
                **figures,
            }
        )
    return {
        "endpoint": endpoint.name,
        "task": task,
        "window_ms": window_ms,
        "since": start,
        "until": now,
        "metrics": list(
            performance.CLASSIFICATION if task == "classification" else performance.REGRESSION
        ),
        "confidence_interval": CI,
        "estimate_method": "confidence-based (CBPE)" if task == "classification" else None,
        "windows": rows_out,
    }
