"""Shapes of the monitoring API: canary policies and alert rules (performance answers are
plain dicts described in the guide)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_webhook(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not value.startswith(("http://", "https://")) or len(value) > 2000:
        raise ValueError("must be an http:// or https:// URL of at most 2000 characters")
    return value


class CanaryPolicyUpdate(Strict):
    when_worse: Literal["rollback", "alert"] = Field(
        default="rollback", description="What a canary found worse than the primary gets."
    )
    when_no_worse: Literal["promote", "alert", "wait"] = Field(
        default="wait",
        description="What a canary found no worse gets once every figure has its minimum "
        "sample: promoted, an alert only, or nothing (a person decides).",
    )
    min_samples: int = Field(
        default=200,
        ge=10,
        le=10_000_000,
        description="Per route (canary and primary): requests for the error rate and latency, "
        "labelled predictions for accuracy, before any decision.",
    )
    alpha: float = Field(
        default=0.05, gt=0, lt=0.5, description="Significance level, shared by all tests."
    )
    max_latency_increase: float = Field(
        default=0.2,
        ge=0,
        le=100,
        description="Relative p95 latency increase tolerated (0.2: 20%) before a "
        "significant difference counts as worse.",
    )
    webhook: str | None = Field(default=None, description="Where alerts of this policy go.")

    _webhook = field_validator("webhook")(_check_webhook)


class CanaryPolicyPublic(CanaryPolicyUpdate):
    model_config = ConfigDict(extra="ignore")
    endpoint: str
    last_version: int | None = None
    last_verdict: str | None = None
    last_evaluated_at: int | None = None


class AlertRuleCreate(Strict):
    endpoint: str = Field(min_length=1, max_length=200)
    metric: str = Field(
        min_length=1,
        max_length=200,
        description="A figure name: error_rate, latency_p95, requests, accuracy, f1_macro, "
        "mae..., drift.share, drift.<column>... (see the guide), or one a plug-in registered.",
    )
    below: float | None = Field(default=None, description="Fire when the figure is below this.")
    above: float | None = Field(default=None, description="Fire when the figure is above this.")
    window: str = Field(default="1h", max_length=40, description="Trailing window: 30m, 1d...")
    min_samples: int = Field(default=30, ge=1, le=10_000_000)
    version: int | None = Field(default=None, ge=1, description="Only this model version.")
    webhook: str | None = None
    name: str | None = Field(default=None, max_length=200)
    project: str | None = Field(default=None, max_length=200)

    _webhook = field_validator("webhook")(_check_webhook)


class AlertRulePublic(BaseModel):
    id: int
    name: str
    endpoint: str
    metric: str
    op: str
    threshold: float
    window_ms: int
    min_samples: int
    version: int | None
    webhook: str | None
    enabled: bool
    state: str
    last_value: float | None
    last_samples: int | None
    last_evaluated_at: int | None
    created_at: int


class IncidentPublic(BaseModel):
    id: int
    rule_id: int
    opened_at: int
    resolved_at: int | None
    opened_value: float | None
    last_value: float | None
    samples: int
    notified_at: int | None
    resolved_notified_at: int | None
    notify_error: str | None
