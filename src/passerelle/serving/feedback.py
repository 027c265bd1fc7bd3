"""Feedback: ground truth or a score for a prediction id, joined to it for monitoring."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import NotFound
from passerelle.core.ids import now_ms
from passerelle.core.upsert import upsert
from passerelle.serving.inference_log import InferenceLog
from passerelle.serving.models import Endpoint, Feedback
from passerelle.serving.schemas import FeedbackItem


def record_feedback(
    session: Session, principal: Principal, log: InferenceLog, items: list[FeedbackItem]
) -> int:
    """Store feedback for known predictions; an unknown id rejects the whole call (404)."""
    ids = list(dict.fromkeys(i.prediction_id for i in items))
    known = log.lookup(ids)
    missing = [i for i in ids if i not in known]
    if missing:
        raise NotFound(
            f"unknown prediction id {missing[0]}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            field="prediction_id",
            details={"unknown": missing[:100]},
        )
    for endpoint_id in set(known.values()):
        endpoint = session.get(Endpoint, endpoint_id)
        principal.require(Action.ANNOTATE, endpoint.project_id if endpoint else None)
    ts = now_ms()
    rows: dict[str, dict[str, Any]] = {}
    for item in items:  # the last word on a prediction wins
        rows[item.prediction_id] = {
            "prediction_id": item.prediction_id,
            "endpoint_id": known[item.prediction_id],
            "ground_truth": item.ground_truth,
            "score": item.score,
            "created_at": ts,
            "updated_at": ts,
        }
    upsert(
        session,
        Feedback,
        list(rows.values()),
        ["prediction_id"],
        ["ground_truth", "score", "updated_at"],
    )
    return len(rows)


def feedback_for(
    session: Session, endpoint_id: int, since_ms: int | None = None
) -> dict[str, dict[str, Any]]:
    """The feedback of an endpoint's predictions (made after ``since_ms``: a prediction id
    starts with its time in hexadecimal, so the bound is a range on the key)."""
    query = select(
        Feedback.prediction_id, Feedback.ground_truth, Feedback.score, Feedback.updated_at
    ).where(Feedback.endpoint_id == endpoint_id)
    if since_ms is not None:
        query = query.where(Feedback.prediction_id >= f"{max(since_ms, 0):012x}")
    return {
        pid: {"ground_truth": truth, "score": score, "feedback_at": at}
        for pid, truth, score, at in session.execute(query)
    }
