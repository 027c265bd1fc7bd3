"""Shapes of the tracing API (the OTLP receiver speaks the OTLP messages instead)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

TRACE_ID = r"^[0-9a-fA-F]{32}$"
SPAN_ID = r"^[0-9a-fA-F]{16}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoreIn(Strict):
    trace_id: str = Field(pattern=TRACE_ID, description="32 hex characters.")
    observation_id: str | None = Field(default=None, pattern=SPAN_ID)
    name: str = Field(min_length=1, max_length=200)
    value: StrictBool | StrictInt | StrictFloat | StrictStr = Field(
        description="A number, a category (text, up to 1,000 characters) or a boolean."
    )
    data_type: Literal["numeric", "categorical", "boolean"] | None = Field(
        default=None, description="Inferred from the value when missing."
    )
    source: Literal["api", "human", "judge"] = "api"
    comment: str | None = Field(default=None, max_length=10_000)


class ScoreBatch(Strict):
    scores: list[ScoreIn] = Field(min_length=1, max_length=10_000)


class ScoresAccepted(BaseModel):
    accepted: int


class ScorePublic(BaseModel):
    id: int
    trace_id: str
    observation_id: str | None
    name: str
    data_type: str
    value: float | str | bool | None
    source: str
    comment: str | None
    created_at: int


class PriceIn(Strict):
    input_per_mtok: float = Field(ge=0, le=1e6, description="USD per million input tokens.")
    output_per_mtok: float = Field(ge=0, le=1e6, description="USD per million output tokens.")
    cached_input_per_mtok: float | None = Field(
        default=None, ge=0, le=1e6, description="USD per million cached input tokens."
    )


class PricePublic(PriceIn):
    model: str
    source: Literal["default", "project"]


class TracePublic(BaseModel):
    id: str
    name: str
    session_id: str | None
    user_id: str | None
    tags: list[str]
    metadata: dict
    release: str | None
    input: str | None
    output: str | None
    start_time: int
    end_time: int
    latency_ms: float
    observation_count: int
    error_count: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    total_cost: float
    has_root: bool = Field(description="False while the trace's root span has not arrived.")
