"""Shapes of the projects and API keys API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][\w.\-]*$")
    description: str = ""


class ProjectPublic(BaseModel):
    id: int
    name: str
    description: str
    created_at: int


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(description="admin, editor, viewer or annotator")
    project: str | None = Field(default=None, description="Project name; admins may omit it.")


class ApiKeyPublic(BaseModel):
    id: int
    name: str
    prefix: str
    role: str
    project: str | None
    created_at: int
    revoked_at: int | None


class ApiKeyCreated(ApiKeyPublic):
    secret: str = Field(description="The key itself: shown once, stored only as a hash.")
