"""Shapes of the serving API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeploymentChange(Strict):
    action: Literal[
        "deploy",
        "canary",
        "weight",
        "shadow",
        "unshadow",
        "promote",
        "rollback",
        "pause",
        "resume",
        "configure",
    ]
    version: int | None = Field(default=None, ge=1)
    weight: float | None = Field(default=None, ge=0, le=100, description="Canary percent.")
    model: str | None = Field(default=None, description="Registered model (default: the name).")
    project: str | None = None
    reason: str = Field(default="", max_length=2000)
    request_key: str | None = Field(
        default=None,
        max_length=200,
        description="Input field whose value keeps a caller on one version (sticky routing).",
    )
    redact: list[str] | None = Field(default=None, description="Input fields masked in the log.")


class EndpointPublic(BaseModel):
    name: str
    model: str
    primary_version: int | None
    canary_version: int | None
    canary_weight: float
    shadow_versions: list[int]
    request_key: str | None
    redact: list[str]
    paused: bool
    revision: int
    created_at: int
    updated_at: int


class PredictRequest(BaseModel):
    inputs: list[dict[str, Any]] | dict[str, list[Any]] = Field(
        description="Records (a list of objects) or columns (an object of lists)."
    )


class PredictResponse(BaseModel):
    predictions: list[Any]
    prediction_ids: list[str]
    model_version: int


class FeedbackItem(Strict):
    prediction_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    ground_truth: Any = None
    score: float | None = None


class FeedbackBatch(Strict):
    items: list[FeedbackItem] = Field(min_length=1, max_length=100_000)
