"""Shapes of the registry REST API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,249}$"
ALIAS_NAME = r"^[A-Za-z_][A-Za-z0-9_\-]{0,99}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelCreate(Strict):
    name: str = Field(pattern=MODEL_NAME)
    project: str | None = None
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class ModelUpdate(Strict):
    description: str | None = None
    tags: dict[str, str] | None = None


class VersionCreate(Strict):
    source: str = Field(
        min_length=1, max_length=1200, description="Where the package is: runs:/<run_id>/<path>."
    )
    description: str = ""


class AliasSet(Strict):
    version: int = Field(ge=1)
    reason: str = Field(default="", max_length=2000)


class VersionPublic(BaseModel):
    model: str
    version: int
    status: str
    source_uri: str
    source_run_id: str | None
    manifest_sha256: str
    files: dict[str, str]
    flavor: str
    signature: dict[str, Any] | None
    requirements: list[str]
    lineage: dict[str, Any]
    metrics: dict[str, Any]
    description: str
    created_by: str
    created_at: int
    aliases: list[str]


class ModelPublic(BaseModel):
    name: str
    project: str
    description: str
    tags: dict[str, str]
    created_by: str
    created_at: int
    updated_at: int
    latest_version: int | None
    aliases: dict[str, int]


class AliasEventPublic(BaseModel):
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    at: int
