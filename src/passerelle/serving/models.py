"""Serving tables: endpoints and their traffic split, the change history, feedback."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from passerelle.core.db import Base, BigIntId


class Endpoint(Base):
    """A stable name in front of model versions: one primary, at most one canary, shadows.

    ``revision`` grows with every change; serving processes compare it to their cached copy, so
    a change made through any process is in force everywhere within the refresh interval.
    """

    __tablename__ = "endpoints"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    model_name: Mapped[str] = mapped_column(String(250))
    primary_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    canary_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    canary_weight: Mapped[float] = mapped_column(Float, default=0.0)
    shadow_versions: Mapped[list[int]] = mapped_column(JSON, default=list)
    primary_history: Mapped[list[int]] = mapped_column(JSON, default=list)
    request_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    redact: Mapped[list[str]] = mapped_column(JSON, default=list)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class DeploymentEvent(Base):
    """Every change of an endpoint: what, who, when, why, and the evidence for automatic ones."""

    __tablename__ = "deployment_events"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("endpoints.id", ondelete="CASCADE"), index=True
    )
    revision: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(30))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    at: Mapped[int] = mapped_column(BigInteger)


class Feedback(Base):
    """Ground truth or a score for one prediction, arriving any time after it."""

    __tablename__ = "feedback"

    prediction_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("endpoints.id", ondelete="CASCADE"), index=True
    )
    ground_truth: Mapped[Any] = mapped_column(JSON, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
