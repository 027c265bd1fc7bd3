"""API keys and roles, checked on every route.

A key belongs to one project (admins may hold a key for every project). Roles:
``admin`` does everything; ``editor`` reads and writes its project; ``viewer`` reads it;
``annotator`` reads it and writes scores and annotations. The secret is random and long, so a
plain sha256 is the right hash at rest: it is looked up by equality, never brute-forced.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from passerelle.core.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from passerelle.core.ids import now_ms
from passerelle.core.models import ApiKey, Project

KEY_PREFIX = "psl_"
PROJECT_NAME = re.compile(r"[A-Za-z0-9][\w.\-]{0,199}")


class Role(StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"
    ANNOTATOR = "annotator"


class Action(StrEnum):
    READ = "read"
    WRITE = "write"
    ANNOTATE = "annotate"
    ADMIN = "admin"


ALLOWED: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.EDITOR: frozenset({Action.READ, Action.WRITE, Action.ANNOTATE}),
    Role.VIEWER: frozenset({Action.READ}),
    Role.ANNOTATOR: frozenset({Action.READ, Action.ANNOTATE}),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role, and the one project it may touch (``None``: every project)."""

    role: Role
    project_id: int | None
    key_name: str

    def require(self, action: Action, project_id: int | None = None) -> None:
        """Raise ``Forbidden`` unless this principal may do ``action`` in ``project_id``."""
        if action not in ALLOWED[self.role]:
            raise Forbidden(f"role '{self.role}' may not {action} (key '{self.key_name}')")
        if project_id is not None and self.project_id not in (None, project_id):
            raise Forbidden(f"key '{self.key_name}' does not grant access to this project")

    def can(self, action: Action, project_id: int | None = None) -> bool:
        try:
            self.require(action, project_id)
        except Forbidden:
            return False
        return True


ANONYMOUS_ADMIN = Principal(role=Role.ADMIN, project_id=None, key_name="anonymous")
BOOTSTRAP_ADMIN = Principal(role=Role.ADMIN, project_id=None, key_name="bootstrap admin")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def authenticate(session: Session, secret: str | None, admin_key: str | None) -> Principal:
    """Resolve a presented key to its principal, or raise ``Unauthenticated``."""
    if not secret:
        raise Unauthenticated(
            "missing API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key'",
            field="authorization",
        )
    if admin_key and hmac.compare_digest(secret.encode(), admin_key.encode()):
        return BOOTSTRAP_ADMIN
    key = session.scalar(select(ApiKey).where(ApiKey.secret_sha256 == hash_secret(secret)))
    if key is None or key.revoked_at is not None:
        raise Unauthenticated("invalid or revoked API key", field="authorization")
    return Principal(role=Role(key.role), project_id=key.project_id, key_name=key.name)


def create_key(
    session: Session, *, name: str, role: str, project_id: int | None
) -> tuple[ApiKey, str]:
    """Store a new key and return it with its secret (the only time the secret is visible)."""
    try:
        role_value = Role(role)
    except ValueError:
        raise InvalidInput(
            f"unknown role '{role}': choose one of {', '.join(r.value for r in Role)}",
            field="role",
        ) from None
    if role_value is not Role.ADMIN and project_id is None:
        raise InvalidInput(f"a key with role '{role}' needs a project", field="project")
    secret = KEY_PREFIX + secrets.token_urlsafe(30)
    key = ApiKey(
        name=name,
        prefix=secret[:10],
        secret_sha256=hash_secret(secret),
        role=role_value.value,
        project_id=project_id,
        created_at=now_ms(),
    )
    session.add(key)
    session.flush()
    return key, secret


def revoke_key(session: Session, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} not found", field="key_id")
    key.revoked_at = key.revoked_at or now_ms()
    return key


def count_active_keys(session: Session) -> int:
    return len(session.scalars(select(ApiKey.id).where(ApiKey.revoked_at.is_(None))).all())


def get_project_by_name(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise NotFound(f"project '{name}' not found", field="project")
    return project


def ensure_project(session: Session, name: str) -> Project:
    """Get a project by name, creating it when missing (the ``default`` project always exists).

    Every domain creates projects on first use through here, so the naming rule of the
    projects API is enforced here too (a name of any length used to reach the database).
    """
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        if not PROJECT_NAME.fullmatch(name):
            raise InvalidInput(
                f"invalid project name {name[:60]!r}: 1 to 200 letters, digits, '_', '.' or "
                "'-', starting with a letter or digit",
                field="project",
            )
        project = Project(name=name, description="", created_at=now_ms())
        session.add(project)
        session.flush()
    return project
