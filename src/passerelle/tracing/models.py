"""Tracing tables: traces, the observations nested under them, scores, per-project prices.

Ids are the OpenTelemetry ones as lowercase hex (32 characters for a trace, 16 for a span), so a
span re-sent by an exporter lands on the same row instead of a new one. Times are milliseconds
since the epoch like everywhere else; ``latency_ms`` keeps the sub-millisecond duration.

A trace row is a summary rebuilt from its observations each time some of them arrive (spans of
one trace come in any order and over several exports), so it never double-counts a re-sent span.
Scores name their trace by id without a foreign key: a score may arrive before its trace.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from passerelle.core.db import Base, BigIntId

OBSERVATION_TYPES = ("span", "generation", "retrieval", "tool", "event")
LEVELS = ("DEBUG", "DEFAULT", "WARNING", "ERROR")


class Trace(Base):
    """One request through an LLM application: its identity (name, session, user) and totals."""

    __tablename__ = "traces"
    __table_args__ = (
        Index("ix_traces_project_start", "project_id", "start_time"),
        Index("ix_traces_project_session", "project_id", "session_id"),
        Index("ix_traces_project_user", "project_id", "user_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500), default="")
    session_id: Mapped[str | None] = mapped_column(String(500), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(500), nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    release: Mapped[str | None] = mapped_column(String(500), nullable=True)
    input: Mapped[str | None] = mapped_column(Text, nullable=True)
    output: Mapped[str | None] = mapped_column(Text, nullable=True)
    start_time: Mapped[int] = mapped_column(BigInteger)
    end_time: Mapped[int] = mapped_column(BigInteger)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    observation_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    total_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    total_cost: Mapped[float] = mapped_column(Float, default=0.0)
    has_root: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class Observation(Base):
    """A span of a trace: a plain step, a generation (an LLM call), a retrieval, a tool call or a
    point-in-time event. ``trace_attributes`` holds the trace-level attributes the span carried
    (name, session, user, tags...), read when the trace summary is rebuilt."""

    __tablename__ = "observations"
    __table_args__ = (
        Index("ix_observations_project_start", "project_id", "start_time"),
        Index("ix_observations_project_model", "project_id", "model"),
    )

    trace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    parent_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    type: Mapped[str] = mapped_column(String(20), default="span")
    name: Mapped[str] = mapped_column(String(1000), default="")
    start_time: Mapped[int] = mapped_column(BigInteger)
    end_time: Mapped[int] = mapped_column(BigInteger)
    start_ns: Mapped[int] = mapped_column(BigInteger, default=0)  # orders siblings exactly
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    level: Mapped[str] = mapped_column(String(10), default="DEFAULT")
    status_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    input: Mapped[str | None] = mapped_column(Text, nullable=True)
    output: Mapped[str | None] = mapped_column(Text, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    model: Mapped[str | None] = mapped_column(String(500), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model_parameters: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )
    input_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cached_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    total_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cost: Mapped[float | None] = mapped_column(Float, nullable=True)
    cost_source: Mapped[str | None] = mapped_column(String(20), nullable=True)
    ttft_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    prompt_name: Mapped[str | None] = mapped_column(String(500), nullable=True)
    prompt_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    trace_attributes: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )


class Score(Base):
    """A judgement of a trace or one of its observations: numeric, categorical or boolean."""

    __tablename__ = "scores"
    __table_args__ = (Index("ix_scores_trace", "trace_id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    trace_id: Mapped[str] = mapped_column(String(32))
    observation_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    data_type: Mapped[str] = mapped_column(String(20))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    string_value: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    source: Mapped[str] = mapped_column(String(20), default="api")
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class ModelPrice(Base):
    """A project's own price for a model, in USD per million tokens, over the shipped table."""

    __tablename__ = "model_prices"
    __table_args__ = (UniqueConstraint("project_id", "model"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(500))
    input_per_mtok: Mapped[float] = mapped_column(Float)
    output_per_mtok: Mapped[float] = mapped_column(Float)
    cached_input_per_mtok: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[int] = mapped_column(BigInteger)
