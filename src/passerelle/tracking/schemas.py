"""Shapes of the tracking REST API (``/api/v1/...``)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, field_validator

from passerelle.core.ids import INT32_MAX, INT64_MAX, INT64_MIN

RunStatus = Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]
SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
KEY_PATTERN = r"^[^\x00-\x1f]{1,250}$"

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]


def _sendable(value: Any) -> Any:
    """Free-form JSON is stored as given and sent back later: refuse what cannot be sent back
    (integers beyond 64 bits, nesting deeper than 255 levels) now rather than fail then."""
    try:
        orjson.dumps(value)
    except TypeError as exc:
        raise ValueError(f"cannot be stored as JSON: {exc}") from None
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_sendable)]
StrictInt64 = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExperimentCreate(Strict):
    name: str = Field(min_length=1, max_length=500)
    project: str = Field(default="default", min_length=1, max_length=200)
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class ExperimentPublic(BaseModel):
    id: int
    name: str
    project: str
    description: str
    tags: dict[str, str]
    lifecycle_stage: str
    created_at: int
    updated_at: int
    run_count: int = 0
    last_run_at: int | None = None


class ExperimentList(BaseModel):
    experiments: list[ExperimentPublic]


class RunCreate(Strict):
    experiment_id: Int64 | None = None
    experiment: str | None = Field(
        default=None,
        max_length=500,
        description="Experiment name; created when missing. Ignored with experiment_id.",
    )
    project: str = Field(default="default", min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=250)
    parent_run_id: str | None = None
    start_time: Int64 | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    code: JsonObject = Field(default_factory=dict, description="Code lineage.")
    environment: JsonObject = Field(default_factory=dict, description="Environment lineage.")
    created_by: str = Field(default="", max_length=200)


class RunUpdate(Strict):
    status: RunStatus | None = None
    end_time: Int64 | None = None
    name: str | None = Field(default=None, max_length=250)


class MetricIn(Strict):
    key: str = Field(pattern=KEY_PATTERN)
    value: float = Field(description='A number; "NaN", "Infinity" and "-Infinity" are accepted.')
    step: StrictInt64 = 0
    timestamp: StrictInt64 | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _number(cls, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            raise ValueError(f"metric value must be a number, got {type(v).__name__}")
        if isinstance(v, str):
            if v not in SPECIAL_FLOATS:
                raise ValueError(f"metric value must be a number, got the string {v[:40]!r}")
            return SPECIAL_FLOATS[v]
        return float(v)


class MetricBatch(Strict):
    metrics: list[MetricIn] = Field(max_length=100_000)


class ParamsIn(Strict):
    params: dict[str, str | int | float | bool | None]

    @field_validator("params")
    @classmethod
    def _keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if not key or len(key) > 250:
                raise ValueError(f"param key {key[:50]!r} must have 1 to 250 characters")
        return v


class TagsIn(Strict):
    tags: dict[str, str]


class MetricPoint(BaseModel):
    step: int
    value: float
    timestamp: int


class MetricHistory(BaseModel):
    key: str
    points: list[MetricPoint]


class ArtifactPublic(BaseModel):
    path: str
    size: int
    sha256: str
    created_at: int


class DatasetRef(Strict):
    """A dataset as the SDK describes it after fingerprinting it locally."""

    name: str = Field(min_length=1, max_length=500)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    num_rows: int = Field(ge=0, le=INT64_MAX)
    num_columns: int = Field(ge=0, le=INT32_MAX)
    schema_: list[JsonObject] = Field(alias="schema")
    source: str = ""
    snapshot_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    context: str = Field(default="training", min_length=1, max_length=100)
    direction: Literal["input", "output"] = "input"

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DatasetPublic(BaseModel):
    id: str
    name: str
    digest: str
    num_rows: int
    num_columns: int
    schema_: list[dict[str, Any]] = Field(serialization_alias="schema")
    source: str
    snapshot_sha256: str | None
    snapshot_size: int | None
    context: str
    direction: str
    created_at: int


class RunPublic(BaseModel):
    id: str
    experiment_id: int
    experiment: str
    project: str
    parent_run_id: str | None
    name: str
    status: str
    start_time: int
    end_time: int | None
    created_by: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    lineage: dict[str, Any] | None = None


class RunSearch(Strict):
    experiment_ids: list[Int64] = Field(default_factory=list)
    experiments: list[str] = Field(default_factory=list, description="Experiment names.")
    project: str | None = None
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    max_results: int = Field(default=1000, ge=1, le=50_000)
    page_token: str | None = None
    include_lineage: bool = False


class RunPage(BaseModel):
    runs: list[RunPublic]
    next_page_token: str | None
