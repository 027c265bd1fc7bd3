"""Projects and API keys REST API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from passerelle.admin import service
from passerelle.admin.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ProjectCreate,
    ProjectPublic,
)
from passerelle.core.ids import INT64_MAX, INT64_MIN
from passerelle.core.web import PrincipalDep, SessionDep

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/projects", response_model=list[ProjectPublic])
def list_projects(session: SessionDep, principal: PrincipalDep):
    return [service.project_public(p) for p in service.list_projects(session, principal)]


@router.post("/projects", response_model=ProjectPublic, status_code=201)
def create_project(body: ProjectCreate, session: SessionDep, principal: PrincipalDep):
    project = service.create_project(session, principal, body.name, body.description)
    return service.project_public(project)


@router.get("/keys", response_model=list[ApiKeyPublic])
def list_keys(session: SessionDep, principal: PrincipalDep):
    return service.list_keys(session, principal)


@router.post("/keys", response_model=ApiKeyCreated, status_code=201)
def create_key(body: ApiKeyCreate, session: SessionDep, principal: PrincipalDep):
    return service.create_key(session, principal, body.name, body.role, body.project)


@router.delete("/keys/{key_id}", response_model=ApiKeyPublic)
def revoke_key(
    key_id: Annotated[int, Path(ge=INT64_MIN, le=INT64_MAX)],
    session: SessionDep,
    principal: PrincipalDep,
):
    return service.revoke_key(session, principal, key_id)
