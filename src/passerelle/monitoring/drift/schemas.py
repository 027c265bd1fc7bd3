"""Shapes of the drift API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DriftQuery(Strict):
    since: str = Field(default="24h", max_length=40, description="Period: 15m, 24h, 7d, 2w.")
    window: str | None = Field(
        default=None,
        max_length=40,
        description="Length of each window (default: 1h up to a day, else 1d).",
    )
    overrides: dict[str, dict[str, Any]] | None = Field(
        default=None,
        description='Per column: {"test": ..., "threshold": ..., "kind": ...}.',
    )
    multivariate: bool = Field(default=True, description="Also run the domain classifier.")
    version: int | None = Field(
        default=None, ge=1, description="Only the predictions this model version answered."
    )
    project: str | None = Field(default=None, max_length=250)


class ReferenceSet(Strict):
    version: int | None = Field(
        default=None, ge=1, description="Model version whose training snapshot is the reference."
    )
    dataset_id: str | None = Field(
        default=None, max_length=64, description="Tracked dataset whose snapshot is the reference."
    )
    project: str | None = Field(default=None, max_length=250)


class ReferencePublic(BaseModel):
    endpoint: str
    source: dict[str, Any]
    rows: int
    columns: list[str]
    digest: str
    created_at: int
    has_predictions: bool


class DriftPublic(BaseModel):
    endpoint: str
    since: int
    until: int
    window_ms: int
    version: int | None = None
    reference: ReferencePublic
    rows: dict[str, int]
    drifted_columns: list[str]
    columns: list[dict[str, Any]]
    prediction: dict[str, Any] | None
    multivariate: dict[str, Any] | None
    tests_corrected: int
    skipped: dict[str, str]
    windows: list[dict[str, Any]]
