"""Artifacts of runs: logical paths chosen by clients, bytes in the content-addressed store."""

from __future__ import annotations

import posixpath

from sqlalchemy import select
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import InvalidInput, NotFound
from passerelle.core.ids import now_ms
from passerelle.core.store import StoredObject
from passerelle.core.upsert import upsert
from passerelle.tracking.models import Artifact
from passerelle.tracking.service import load_run

MAX_PATH = 1000


def clean_artifact_path(path: str) -> str:
    """A relative POSIX path with no ``..``, no empty or ``.`` segment, no control character."""
    if not path or len(path) > MAX_PATH:
        raise InvalidInput(f"artifact path must have 1 to {MAX_PATH} characters", field="path")
    if any(ord(ch) < 32 for ch in path) or "\\" in path:
        raise InvalidInput(
            "artifact path may not contain control characters or backslashes", field="path"
        )
    if path.startswith("/"):
        raise InvalidInput(f"artifact path {path!r} must be relative", field="path")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(
            f"artifact path {path!r} may not contain '..', '.' or empty segments", field="path"
        )
    return posixpath.join(*parts)


def check_artifact_upload(session: Session, principal: Principal, run_id: str, path: str) -> str:
    """Validate before any byte is stored (so bad requests never touch the store)."""
    load_run(session, principal, run_id, Action.WRITE)
    return clean_artifact_path(path)


def record_artifact(
    session: Session, principal: Principal, run_id: str, path: str, obj: StoredObject
) -> Artifact:
    load_run(session, principal, run_id, Action.WRITE)
    path = clean_artifact_path(path)
    upsert(
        session,
        Artifact,
        [
            {
                "run_id": run_id,
                "path": path,
                "sha256": obj.sha256,
                "size": obj.size,
                "created_at": now_ms(),
            }
        ],
        ["run_id", "path"],
        ["sha256", "size", "created_at"],
    )
    return session.get(Artifact, (run_id, path), populate_existing=True)  # type: ignore[return-value]


def list_artifacts(
    session: Session, principal: Principal, run_id: str, prefix: str | None = None
) -> list[Artifact]:
    load_run(session, principal, run_id, Action.READ)
    query = select(Artifact).where(Artifact.run_id == run_id).order_by(Artifact.path)
    if prefix:
        prefix = clean_artifact_path(prefix.rstrip("/"))
        query = query.where(
            (Artifact.path == prefix) | Artifact.path.startswith(prefix + "/", autoescape=True)
        )
    return list(session.scalars(query))


def get_artifact(session: Session, principal: Principal, run_id: str, path: str) -> Artifact:
    load_run(session, principal, run_id, Action.READ)
    art = session.get(Artifact, (run_id, clean_artifact_path(path)))
    if art is None:
        raise NotFound(f"artifact '{path}' not found in run '{run_id}'", field="path")
    return art
