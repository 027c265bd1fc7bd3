"""Registry REST API under ``/api/v1/models``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from passerelle.core.downloads import verified_download
from passerelle.core.web import PrincipalDep, SessionDep, StoreDep, json_response
from passerelle.registry import service
from passerelle.registry.schemas import (
    AliasEventPublic,
    AliasSet,
    ModelCreate,
    ModelPublic,
    ModelUpdate,
    VersionCreate,
    VersionPublic,
)

router = APIRouter(prefix="/api/v1/models", tags=["registry"])


@router.post("", response_model=ModelPublic, status_code=201)
def create_model(body: ModelCreate, session: SessionDep, principal: PrincipalDep):
    model = service.create_model(
        session, principal, body.name, body.project, body.description, body.tags
    )
    return json_response(service.model_public(session, model, body.project or "default"), 201)


@router.get("", response_model=list[ModelPublic])
def list_models(session: SessionDep, principal: PrincipalDep, project: str | None = None):
    return json_response(service.list_models(session, principal, project))


@router.get("/{name}", response_model=ModelPublic)
def get_model(name: str, session: SessionDep, principal: PrincipalDep, project: str | None = None):
    model = service.get_model(session, principal, name, project)
    return json_response(service.model_public(session, model, _project(session, model)))


@router.patch("/{name}", response_model=ModelPublic)
def update_model(
    name: str,
    body: ModelUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    project: str | None = None,
):
    model = service.update_model(session, principal, name, project, body.description, body.tags)
    return json_response(service.model_public(session, model, _project(session, model)))


@router.post("/{name}/versions", response_model=VersionPublic, status_code=201)
def create_version(
    name: str,
    body: VersionCreate,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    project: str | None = None,
):
    version = service.create_version(
        session, principal, store, name, body.source, project, body.description
    )
    return json_response(service.version_public(session, version, name), 201)


@router.get("/{name}/versions", response_model=list[VersionPublic])
def list_versions(
    name: str, session: SessionDep, principal: PrincipalDep, project: str | None = None
):
    versions = service.list_versions(session, principal, name, project)
    return json_response([service.version_public(session, v, name) for v in versions])


@router.get("/{name}/versions/{version}", response_model=VersionPublic)
def get_version(
    name: str,
    version: int,
    session: SessionDep,
    principal: PrincipalDep,
    project: str | None = None,
):
    found = service.get_version(session, principal, name, version, project)
    return json_response(service.version_public(session, found, name))


@router.delete("/{name}/versions/{version}", status_code=204)
def delete_version(
    name: str,
    version: int,
    session: SessionDep,
    principal: PrincipalDep,
    project: str | None = None,
):
    service.delete_version(session, principal, name, version, project)
    return Response(status_code=204)


@router.get("/{name}/versions/{version}/files")
def version_file(
    name: str,
    version: int,
    path: str,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    project: str | None = None,
):
    """Stream one package file, verified against its digest as it is read."""
    digest = service.version_file(session, principal, name, version, path, project)
    return verified_download(store, digest)


@router.get("/{name}/aliases/{alias}", response_model=VersionPublic)
def resolve_alias(
    name: str, alias: str, session: SessionDep, principal: PrincipalDep, project: str | None = None
):
    found = service.resolve_alias(session, principal, name, alias, project)
    return json_response(service.version_public(session, found, name))


@router.put("/{name}/aliases/{alias}", response_model=VersionPublic)
def set_alias(
    name: str,
    alias: str,
    body: AliasSet,
    session: SessionDep,
    principal: PrincipalDep,
    project: str | None = None,
):
    found = service.set_alias(session, principal, name, alias, body.version, project, body.reason)
    return json_response(service.version_public(session, found, name))


@router.delete("/{name}/aliases/{alias}", status_code=204)
def delete_alias(
    name: str, alias: str, session: SessionDep, principal: PrincipalDep, project: str | None = None
):
    service.delete_alias(session, principal, name, alias, project)
    return Response(status_code=204)


@router.get("/{name}/alias-history", response_model=list[AliasEventPublic])
def alias_history(
    name: str, session: SessionDep, principal: PrincipalDep, project: str | None = None
):
    return json_response(service.alias_history(session, principal, name, project))


def _project(session, model) -> str:
    from passerelle.core.models import Project

    project = session.get(Project, model.project_id)
    return project.name if project else ""
