"""Projects and API keys (admin only, except reading the projects one may see)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from passerelle.core import auth
from passerelle.core.auth import Action, Principal
from passerelle.core.errors import Conflict, Forbidden
from passerelle.core.models import ApiKey, Project


def project_public(p: Project) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "description": p.description, "created_at": p.created_at}


def list_projects(session: Session, principal: Principal) -> list[Project]:
    query = select(Project).order_by(Project.name)
    if principal.project_id is not None:
        query = query.where(Project.id == principal.project_id)
    return list(session.scalars(query))


def _require_admin_of(principal: Principal, project_id: int | None) -> None:
    """Admin rights over ``project_id``; ``None`` (every project) needs an unscoped admin key.

    A key scoped to one project must not reach beyond it, for instance by minting a key for
    every project.
    """
    principal.require(Action.ADMIN, project_id)
    if project_id is None and principal.project_id is not None:
        raise Forbidden(
            f"key '{principal.key_name}' is limited to one project; this needs an admin key "
            "for every project"
        )


def create_project(session: Session, principal: Principal, name: str, description: str) -> Project:
    _require_admin_of(principal, None)
    if session.scalar(select(Project.id).where(Project.name == name)):
        raise Conflict(f"project '{name}' already exists", field="name")
    project = auth.ensure_project(session, name)
    project.description = description
    return project


def key_public(key: ApiKey, project: str | None) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "role": key.role,
        "project": project,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


def create_key(
    session: Session, principal: Principal, name: str, role: str, project: str | None
) -> dict[str, Any]:
    principal.require(Action.ADMIN)
    project_id = auth.get_project_by_name(session, project).id if project else None
    _require_admin_of(principal, project_id)
    key, secret = auth.create_key(session, name=name, role=role, project_id=project_id)
    return {**key_public(key, project), "secret": secret}


def list_keys(session: Session, principal: Principal) -> list[dict[str, Any]]:
    principal.require(Action.ADMIN)
    query = select(ApiKey, Project.name).outerjoin(Project, Project.id == ApiKey.project_id)
    if principal.project_id is not None:
        query = query.where(ApiKey.project_id == principal.project_id)
    rows = session.execute(query.order_by(ApiKey.id)).all()
    return [key_public(k, p) for k, p in rows]


def revoke_key(session: Session, principal: Principal, key_id: int) -> dict[str, Any]:
    principal.require(Action.ADMIN)
    key = session.get(ApiKey, key_id)
    if key is not None:
        _require_admin_of(principal, key.project_id)
    key = auth.revoke_key(session, key_id)
    project = session.get(Project, key.project_id) if key.project_id else None
    return key_public(key, project.name if project else None)
