"""A lease row in the metadata database: one process at a time does a job, across replicas.

The holder renews the lease on each run; another process takes it only once it has expired
(its holder stopped or hung). Acquisition is one conditional UPDATE, or an INSERT for the very
first time, so two processes racing on SQLite or PostgreSQL never both win.
"""

from __future__ import annotations

import os
import socket
import uuid

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from passerelle.core.models import Lease


def new_holder() -> str:
    """This process's name as a lease holder: host and process id, for people reading the
    table, and a random tail, so two holders in one process never pass for one."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(session: Session, name: str, holder: str, ttl_ms: int, now: int) -> bool:
    """Take or renew lease ``name`` for ``holder`` until ``now + ttl_ms``; False if held."""
    taken = session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))
        .values(holder=holder, expires_at=now + ttl_ms)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount == 1:
        return True
    if session.get(Lease, name) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(Lease(name=name, holder=holder, expires_at=now + ttl_ms))
    except IntegrityError:  # another process inserted it first
        return False
    return True


def release(session: Session, name: str, holder: str) -> None:
    """Let another process take over at once (at shutdown)."""
    session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=0)
        .execution_options(synchronize_session=False)
    )


def holder_of(session: Session, name: str, now: int) -> str | None:
    lease = session.get(Lease, name)
    return lease.holder if lease is not None and lease.expires_at >= now else None
