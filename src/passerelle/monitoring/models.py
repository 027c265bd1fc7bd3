"""Monitoring tables: canary policies, alert rules and their incidents.

Endpoints belong to the serving domain: these tables point at them by id (deleted with them)
and are only ever filled through serving's service functions, never by reading its tables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from passerelle.core.db import Base, BigIntId


class CanaryPolicy(Base):
    """What to do when a canary is found worse, or no worse, than the primary."""

    __tablename__ = "canary_policies"

    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True
    )
    when_worse: Mapped[str] = mapped_column(String(20))  # rollback | alert
    when_no_worse: Mapped[str] = mapped_column(String(20))  # promote | alert | wait
    min_samples: Mapped[int] = mapped_column(Integer)
    alpha: Mapped[float] = mapped_column(Float)
    max_latency_increase: Mapped[float] = mapped_column(Float)
    webhook: Mapped[str | None] = mapped_column(Text, nullable=True)
    # the last verdict acted upon, per canary version, so a decision is taken once
    last_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_verdict: Mapped[str | None] = mapped_column(String(20), nullable=True)
    last_evaluated_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class AlertRule(Base):
    """A figure of an endpoint compared to a threshold over a trailing window."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("endpoints.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(200))
    op: Mapped[str] = mapped_column(String(10))  # below | above
    threshold: Mapped[float] = mapped_column(Float)
    window_ms: Mapped[int] = mapped_column(BigInteger)
    min_samples: Mapped[int] = mapped_column(Integer)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    webhook: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(20), default="unknown")  # ok | firing | unknown
    last_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_samples: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_evaluated_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[int] = mapped_column(BigInteger)


class AlertIncident(Base):
    """One stretch of time during which a rule was broken: opened once, resolved once."""

    __tablename__ = "alert_incidents"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(
        ForeignKey("alert_rules.id", ondelete="CASCADE"), index=True
    )
    opened_at: Mapped[int] = mapped_column(BigInteger)
    resolved_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    opened_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    # webhook delivery: retried on later evaluations until it succeeds
    notified_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    resolved_notified_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    notify_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
