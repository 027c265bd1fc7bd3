"""Registry logic: models, versions frozen from run artifacts, aliases and their history."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import Conflict, InvalidInput, NotFound
from passerelle.core.ids import now_ms
from passerelle.core.models import Project
from passerelle.core.store import ObjectStore
from passerelle.registry.models import AliasEvent, ModelAlias, ModelVersion, RegisteredModel
from passerelle.registry.package import MANIFEST, parse_manifest
from passerelle.tracking import artifacts as run_artifacts
from passerelle.tracking.service import load_run, resolve_project, run_lineage, runs_public

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,249}$")
ALIAS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,99}$")
RUN_URI = re.compile(r"^runs:/(?P<run_id>[0-9a-fA-F]{32})(?:/(?P<path>.*))?$")
MAX_MANIFEST_BYTES = 16 * 1024 * 1024

# Other domains (serving) register a check here: it returns why a version may not be deleted
# (e.g. "deployed on endpoint churn") or None. The registry never reads their tables.
DeleteGuard = Callable[[Session, ModelVersion], str | None]
DELETE_GUARDS: list[DeleteGuard] = []


def _project_name(session: Session, principal: Principal, project: str | None) -> str:
    if project:
        return project
    if principal.project_id is not None:
        found = session.get(Project, principal.project_id)
        if found is not None:
            return found.name
    return "default"


# -- models ------------------------------------------------------------------------------------
def get_model(
    session: Session,
    principal: Principal,
    name: str,
    project: str | None = None,
    action: Action = Action.READ,
) -> RegisteredModel:
    project_name = _project_name(session, principal, project)
    model = session.scalar(
        select(RegisteredModel)
        .join(Project, Project.id == RegisteredModel.project_id)
        .where(RegisteredModel.name == name, Project.name == project_name)
    )
    if model is None:
        raise NotFound(f"model '{name}' not found in project '{project_name}'", field="name")
    principal.require(action, model.project_id)
    return model


def create_model(
    session: Session,
    principal: Principal,
    name: str,
    project: str | None = None,
    description: str = "",
    tags: dict[str, str] | None = None,
) -> RegisteredModel:
    if not MODEL_NAME.match(name):
        raise InvalidInput(
            f"model name {name[:60]!r} must start with a letter or digit and hold at most 250 "
            "letters, digits, '_', '.' or '-'",
            field="name",
        )
    proj = resolve_project(
        session, principal, _project_name(session, principal, project), Action.WRITE
    )
    principal.require(Action.WRITE, proj.id)
    exists = session.scalar(
        select(RegisteredModel.id).where(
            RegisteredModel.project_id == proj.id, RegisteredModel.name == name
        )
    )
    if exists:
        raise Conflict(f"model '{name}' already exists in project '{proj.name}'", field="name")
    ts = now_ms()
    model = RegisteredModel(
        project_id=proj.id,
        name=name,
        description=description,
        tags=tags or {},
        last_version=0,
        created_by=principal.key_name,
        created_at=ts,
        updated_at=ts,
    )
    session.add(model)
    session.flush()
    return model


def update_model(
    session: Session,
    principal: Principal,
    name: str,
    project: str | None,
    description: str | None,
    tags: dict[str, str] | None,
) -> RegisteredModel:
    model = get_model(session, principal, name, project, Action.WRITE)
    if description is not None:
        model.description = description
    if tags is not None:
        model.tags = tags
    model.updated_at = now_ms()
    return model


def list_models(session: Session, principal: Principal, project: str | None = None):
    query = (
        select(RegisteredModel, Project.name)
        .join(Project, Project.id == RegisteredModel.project_id)
        .order_by(RegisteredModel.updated_at.desc())
    )
    if project:
        query = query.where(Project.name == project)
    if principal.project_id is not None:
        query = query.where(RegisteredModel.project_id == principal.project_id)
    return [model_public(session, m, p) for m, p in session.execute(query)]


def model_public(session: Session, model: RegisteredModel, project: str) -> dict[str, Any]:
    latest = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)
    )
    return {
        "name": model.name,
        "project": project,
        "description": model.description,
        "tags": model.tags or {},
        "created_by": model.created_by,
        "created_at": model.created_at,
        "updated_at": model.updated_at,
        "latest_version": latest,
        "aliases": aliases_of(session, model.id),
    }


def aliases_of(session: Session, model_id: int) -> dict[str, int]:
    rows = session.execute(
        select(ModelAlias.alias, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .where(ModelAlias.model_id == model_id)
        .order_by(ModelAlias.alias)
    )
    return dict(rows.all())


# -- versions ----------------------------------------------------------------------------------
def _package_from_run(
    session: Session, principal: Principal, store: ObjectStore, source: str
) -> tuple[Any, str, dict[str, str], dict[str, Any], str]:
    """Freeze the package a run logged: its files' digests, checked against its manifest."""
    match = RUN_URI.match(source.strip())
    if match is None:
        raise InvalidInput(
            f"unsupported model source {source!r}: use runs:/<run_id>/<path>", field="source"
        )
    run = load_run(session, principal, match["run_id"].lower(), Action.READ)
    prefix = (match["path"] or "").strip("/")
    arts = {
        a.path: a for a in run_artifacts.list_artifacts(session, principal, run.id, prefix or None)
    }
    manifest_path = f"{prefix}/{MANIFEST}" if prefix else MANIFEST
    manifest_art = arts.get(manifest_path)
    if manifest_art is None:
        raise InvalidInput(
            f"no model package at {source}: run {run.id} has no artifact '{manifest_path}'",
            field="source",
        )
    manifest = parse_manifest(
        store.read_bytes(manifest_art.sha256, limit=MAX_MANIFEST_BYTES), where=manifest_path
    )
    files: dict[str, str] = {}
    for name, digest in manifest["files"].items():
        full = f"{prefix}/{name}" if prefix else name
        art = arts.get(full)
        if art is None:
            raise InvalidInput(
                f"package file '{name}' listed in the manifest is missing from {source}",
                field="source",
            )
        if art.sha256 != digest:
            raise InvalidInput(
                f"package file '{name}' differs from its manifest digest", field="source"
            )
        files[name] = digest
    files[MANIFEST] = manifest_art.sha256
    return run, manifest_art.sha256, files, manifest, prefix


def create_version(
    session: Session,
    principal: Principal,
    store: ObjectStore,
    name: str,
    source: str,
    project: str | None = None,
    description: str = "",
) -> ModelVersion:
    """Register the package at ``source`` as the next version (creating the model if needed)."""
    run, manifest_sha, files, manifest, _ = _package_from_run(session, principal, store, source)
    try:
        model = get_model(session, principal, name, project, Action.WRITE)
    except NotFound:
        model = create_model(session, principal, name, project)
    if model.project_id != run.project_id:
        raise InvalidInput("the source run belongs to another project", field="source")
    model.last_version += 1
    model.updated_at = now_ms()
    run_view = runs_public(session, [run])[0]
    version = ModelVersion(
        model_id=model.id,
        version=model.last_version,
        source_uri=source,
        source_run_id=run.id,
        manifest_sha256=manifest_sha,
        files=files,
        flavor=str(manifest["flavor"]),
        signature=manifest.get("signature"),
        requirements=list(manifest.get("requirements") or []),
        lineage=run_lineage(session, run),
        metrics=run_view["metrics"],
        status="READY",
        description=description,
        created_by=principal.key_name,
        created_at=now_ms(),
    )
    session.add(version)
    session.flush()
    return version


def get_version(
    session: Session,
    principal: Principal,
    name: str,
    version: int,
    project: str | None = None,
    action: Action = Action.READ,
) -> ModelVersion:
    model = get_model(session, principal, name, project, action)
    found = session.scalar(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.version == version
        )
    )
    if found is None:
        raise NotFound(f"model '{name}' has no version {version}", field="version")
    return found


def latest_version(
    session: Session, principal: Principal, name: str, project: str | None = None
) -> ModelVersion:
    model = get_model(session, principal, name, project)
    found = session.scalar(
        select(ModelVersion)
        .where(ModelVersion.model_id == model.id)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )
    if found is None:
        raise NotFound(f"model '{name}' has no version yet", field="version")
    return found


def list_versions(
    session: Session, principal: Principal, name: str, project: str | None = None
) -> list[ModelVersion]:
    model = get_model(session, principal, name, project)
    return list(
        session.scalars(
            select(ModelVersion)
            .where(ModelVersion.model_id == model.id)
            .order_by(ModelVersion.version.desc())
        )
    )


def version_public(session: Session, v: ModelVersion, model_name: str) -> dict[str, Any]:
    aliases = session.scalars(
        select(ModelAlias.alias).where(ModelAlias.version_id == v.id).order_by(ModelAlias.alias)
    ).all()
    return {
        "model": model_name,
        "version": v.version,
        "status": v.status,
        "source_uri": v.source_uri,
        "source_run_id": v.source_run_id,
        "manifest_sha256": v.manifest_sha256,
        "files": v.files,
        "flavor": v.flavor,
        "signature": v.signature,
        "requirements": v.requirements,
        "lineage": v.lineage,
        "metrics": v.metrics,
        "description": v.description,
        "created_by": v.created_by,
        "created_at": v.created_at,
        "aliases": list(aliases),
    }


def delete_version(
    session: Session, principal: Principal, name: str, version: int, project: str | None = None
) -> None:
    """Explicit deletion, refused while anything (a deployment) still uses the version."""
    found = get_version(session, principal, name, version, project, Action.WRITE)
    for guard in DELETE_GUARDS:
        reason = guard(session, found)
        if reason:
            raise Conflict(f"version {version} of '{name}' is in use: {reason}", field="version")
    for alias in session.scalars(select(ModelAlias).where(ModelAlias.version_id == found.id)):
        _record(session, principal, found.model_id, alias.alias, version, None, "version deleted")
        session.delete(alias)
    session.delete(found)


# -- aliases -----------------------------------------------------------------------------------
def _record(
    session: Session,
    principal: Principal,
    model_id: int,
    alias: str,
    from_version: int | None,
    to_version: int | None,
    reason: str,
) -> None:
    session.add(
        AliasEvent(
            model_id=model_id,
            alias=alias,
            from_version=from_version,
            to_version=to_version,
            actor=principal.key_name,
            reason=reason,
            at=now_ms(),
        )
    )


def set_alias(
    session: Session,
    principal: Principal,
    name: str,
    alias: str,
    version: int,
    project: str | None = None,
    reason: str = "",
) -> ModelVersion:
    if alias == "latest":
        raise InvalidInput("'latest' cannot be an alias: it reads as a version", field="alias")
    if not ALIAS_NAME.match(alias):
        raise InvalidInput(
            f"alias {alias[:60]!r} must start with a letter or '_' and hold at most 100 "
            "letters, digits, '_' or '-'",
            field="alias",
        )
    target = get_version(session, principal, name, version, project, Action.WRITE)
    current = session.get(ModelAlias, (target.model_id, alias))
    previous = None
    if current is not None:
        prev_version = session.get(ModelVersion, current.version_id)
        previous = prev_version.version if prev_version else None
        if current.version_id == target.id:
            return target
        current.version_id = target.id
        current.updated_at = now_ms()
        current.updated_by = principal.key_name
    else:
        session.add(
            ModelAlias(
                model_id=target.model_id,
                alias=alias,
                version_id=target.id,
                updated_by=principal.key_name,
                updated_at=now_ms(),
            )
        )
    _record(session, principal, target.model_id, alias, previous, version, reason)
    session.flush()
    return target


def resolve_alias(
    session: Session, principal: Principal, name: str, alias: str, project: str | None = None
) -> ModelVersion:
    if alias == "latest":
        return latest_version(session, principal, name, project)
    model = get_model(session, principal, name, project)
    found = session.get(ModelAlias, (model.id, alias))
    if found is None:
        raise NotFound(f"model '{name}' has no alias '{alias}'", field="alias")
    return session.get(ModelVersion, found.version_id)  # type: ignore[return-value]


def delete_alias(
    session: Session,
    principal: Principal,
    name: str,
    alias: str,
    project: str | None = None,
    reason: str = "",
) -> None:
    model = get_model(session, principal, name, project, Action.WRITE)
    found = session.get(ModelAlias, (model.id, alias))
    if found is None:
        raise NotFound(f"model '{name}' has no alias '{alias}'", field="alias")
    version = session.get(ModelVersion, found.version_id)
    _record(session, principal, model.id, alias, version.version if version else None, None, reason)
    session.delete(found)


def alias_history(
    session: Session, principal: Principal, name: str, project: str | None = None
) -> list[dict[str, Any]]:
    model = get_model(session, principal, name, project)
    events = session.scalars(
        select(AliasEvent)
        .where(AliasEvent.model_id == model.id)
        .order_by(AliasEvent.at.desc(), AliasEvent.id.desc())
    )
    return [
        {
            "alias": e.alias,
            "from_version": e.from_version,
            "to_version": e.to_version,
            "actor": e.actor,
            "reason": e.reason,
            "at": e.at,
        }
        for e in events
    ]


def model_identity(session: Session, version: ModelVersion) -> tuple[int, str] | None:
    """(project id, model name) of a version, for domains that hold versions by number."""
    model = session.get(RegisteredModel, version.model_id)
    return (model.project_id, model.name) if model else None


def version_file(
    session: Session,
    principal: Principal,
    name: str,
    version: int,
    path: str,
    project: str | None = None,
) -> str:
    """The sha256 of one file of a version's package."""
    found = get_version(session, principal, name, version, project)
    digest = found.files.get(path)
    if digest is None:
        raise NotFound(f"version {version} of '{name}' has no file '{path}'", field="path")
    return digest
