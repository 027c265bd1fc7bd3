"""Deployments: what each endpoint serves, every change recorded with who, when and why.

Changes go through ``apply_change``, the one path for people and automatic policies alike.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import Conflict, InvalidInput, NotFound
from passerelle.core.ids import now_ms
from passerelle.core.models import Project
from passerelle.registry import service as registry
from passerelle.registry.models import ModelVersion
from passerelle.serving.models import DeploymentEvent, Endpoint
from passerelle.tracking.service import resolve_project

ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
ACTIONS = (
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
)


def get_endpoint(
    session: Session,
    principal: Principal,
    name: str,
    action: Action = Action.READ,
    project: str | None = None,
) -> Endpoint:
    query = select(Endpoint).where(Endpoint.name == name)
    if project:
        query = query.join(Project, Project.id == Endpoint.project_id).where(
            Project.name == project
        )
    found = [e for e in session.scalars(query) if principal.project_id in (None, e.project_id)]
    if not found:
        raise NotFound(f"endpoint '{name}' not found", field="endpoint")
    if len(found) > 1:
        raise InvalidInput(
            f"endpoint '{name}' exists in several projects: name the project", field="project"
        )
    principal.require(action, found[0].project_id)
    return found[0]


def list_endpoints(session: Session, principal: Principal) -> list[Endpoint]:
    query = select(Endpoint).order_by(Endpoint.name)
    if principal.project_id is not None:
        query = query.where(Endpoint.project_id == principal.project_id)
    return list(session.scalars(query))


def _version(session: Session, principal: Principal, endpoint: Endpoint, version: int):
    project = session.get(Project, endpoint.project_id)
    return registry.get_version(
        session, principal, endpoint.model_name, version, project.name if project else None
    )


def apply_change(
    session: Session,
    principal: Principal,
    name: str,
    action: str,
    *,
    version: int | None = None,
    weight: float | None = None,
    model: str | None = None,
    project: str | None = None,
    reason: str = "",
    evidence: dict[str, Any] | None = None,
    request_key: str | None = None,
    redact: list[str] | None = None,
) -> Endpoint:
    """Change an endpoint's traffic; every change bumps the revision and is recorded."""
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action '{action}'", field="action")
    endpoint = _find_or_create(session, principal, name, action, model, project)
    before = endpoint_public(endpoint)
    if action == "deploy":
        v = _need(version)
        _version(session, principal, endpoint, v)
        if endpoint.primary_version is not None and endpoint.primary_version != v:
            endpoint.primary_history = [*endpoint.primary_history, endpoint.primary_version]
        endpoint.primary_version = v
        if endpoint.canary_version == v:
            endpoint.canary_version, endpoint.canary_weight = None, 0.0
    elif action in ("canary", "weight"):
        if action == "canary":
            v = _need(version)
            _version(session, principal, endpoint, v)
            if endpoint.primary_version is None:
                raise Conflict("deploy a primary version before a canary", field="version")
            if v == endpoint.primary_version:
                raise InvalidInput(f"version {v} is already the primary", field="version")
            endpoint.canary_version = v
        elif endpoint.canary_version is None:
            raise Conflict(f"endpoint '{name}' has no canary", field="weight")
        w = 10.0 if weight is None else weight
        if not 0 <= w <= 100:
            raise InvalidInput("weight must be between 0 and 100 (percent)", field="weight")
        endpoint.canary_weight = float(w)
    elif action == "shadow":
        v = _need(version)
        _version(session, principal, endpoint, v)
        if v not in endpoint.shadow_versions:
            endpoint.shadow_versions = [*endpoint.shadow_versions, v]
    elif action == "unshadow":
        v = _need(version)
        if v not in endpoint.shadow_versions:
            raise NotFound(f"version {v} is not a shadow of '{name}'", field="version")
        endpoint.shadow_versions = [s for s in endpoint.shadow_versions if s != v]
    elif action == "promote":
        if endpoint.canary_version is None:
            raise Conflict(f"endpoint '{name}' has no canary to promote", field="endpoint")
        if endpoint.primary_version is not None:
            endpoint.primary_history = [*endpoint.primary_history, endpoint.primary_version]
        endpoint.primary_version = endpoint.canary_version
        endpoint.canary_version, endpoint.canary_weight = None, 0.0
    elif action == "rollback":
        if endpoint.canary_version is not None:
            # a canary is rolled back first: all traffic returns to the primary at once
            endpoint.canary_version, endpoint.canary_weight = None, 0.0
        elif endpoint.primary_history:
            endpoint.primary_version = endpoint.primary_history[-1]
            endpoint.primary_history = endpoint.primary_history[:-1]
        else:
            raise Conflict(
                f"endpoint '{name}' has no previous version to roll back to", field="endpoint"
            )
    elif action in ("pause", "resume"):
        endpoint.paused = action == "pause"
    elif action == "configure":
        if request_key is not None:
            endpoint.request_key = request_key or None
        if redact is not None:
            endpoint.redact = list(redact)
    endpoint.revision += 1
    endpoint.updated_at = now_ms()
    session.add(
        DeploymentEvent(
            endpoint_id=endpoint.id,
            revision=endpoint.revision,
            action=action,
            detail={"before": _traffic(before), "after": _traffic(endpoint_public(endpoint))},
            actor=principal.key_name,
            reason=reason,
            evidence=evidence,
            at=endpoint.updated_at,
        )
    )
    session.flush()
    return endpoint


def _need(version: int | None) -> int:
    if version is None:
        raise InvalidInput("this change needs a version", field="version")
    return version


def _find_or_create(
    session: Session,
    principal: Principal,
    name: str,
    action: str,
    model: str | None,
    project: str | None,
) -> Endpoint:
    try:
        return get_endpoint(session, principal, name, Action.WRITE, project)
    except NotFound:
        if action != "deploy":
            raise
    if not ENDPOINT_NAME.match(name):
        raise InvalidInput(
            f"endpoint name {name[:60]!r} must start with a letter or digit and hold at most "
            "200 letters, digits, '_', '.' or '-'",
            field="endpoint",
        )
    proj = resolve_project(session, principal, project or "default", Action.WRITE)
    principal.require(Action.WRITE, proj.id)
    registry.get_model(session, principal, model or name, proj.name)
    ts = now_ms()
    endpoint = Endpoint(
        project_id=proj.id,
        name=name,
        model_name=model or name,
        shadow_versions=[],
        primary_history=[],
        redact=[],
        paused=False,
        revision=0,
        canary_weight=0.0,
        created_at=ts,
        updated_at=ts,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def _traffic(view: dict[str, Any]) -> dict[str, Any]:
    keys = ("primary_version", "canary_version", "canary_weight", "shadow_versions", "paused")
    return {k: view[k] for k in keys}


def endpoint_public(e: Endpoint) -> dict[str, Any]:
    return {
        "name": e.name,
        "model": e.model_name,
        "primary_version": e.primary_version,
        "canary_version": e.canary_version,
        "canary_weight": e.canary_weight,
        "shadow_versions": list(e.shadow_versions or []),
        "request_key": e.request_key,
        "redact": list(e.redact or []),
        "paused": e.paused,
        "revision": e.revision,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
    }


def history(
    session: Session, principal: Principal, name: str, project: str | None = None
) -> list[dict[str, Any]]:
    endpoint = get_endpoint(session, principal, name, Action.READ, project)
    events = session.scalars(
        select(DeploymentEvent)
        .where(DeploymentEvent.endpoint_id == endpoint.id)
        .order_by(DeploymentEvent.id.desc())
    )
    return [
        {
            "revision": e.revision,
            "action": e.action,
            "detail": e.detail,
            "actor": e.actor,
            "reason": e.reason,
            "evidence": e.evidence,
            "at": e.at,
        }
        for e in events
    ]


def versions_in_use(session: Session, version: ModelVersion) -> str | None:
    """Registry delete guard: a version an endpoint serves (or shadows) may not be deleted."""
    identity = registry.model_identity(session, version)
    if identity is None:
        return None
    project_id, model_name = identity
    for e in session.scalars(
        select(Endpoint).where(Endpoint.model_name == model_name, Endpoint.project_id == project_id)
    ):
        if version.version in (e.primary_version, e.canary_version, *e.shadow_versions):
            return f"served by endpoint '{e.name}'"
    return None


registry.DELETE_GUARDS.append(versions_in_use)
