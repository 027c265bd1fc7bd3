"""Insert-or-update in one statement, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def upsert(
    session: Session,
    model: Any,
    rows: list[dict[str, Any]],
    keys: list[str],
    update: list[str],
    *,
    only_if_newer: bool = False,
) -> None:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET update``.

    ``only_if_newer`` keeps the stored row unless the incoming one has a higher ``step``, or the
    same step and a newer-or-equal ``timestamp`` (the latest-metric rule).
    """
    dialect = session.get_bind().dialect.name
    ins = (postgresql if dialect == "postgresql" else sqlite).insert(model)
    where = None
    if only_if_newer:
        table = model.__table__
        where = or_(
            ins.excluded.step > table.c.step,
            (ins.excluded.step == table.c.step) & (ins.excluded.timestamp >= table.c.timestamp),
        )
    stmt = ins.on_conflict_do_update(
        index_elements=keys, set_={c: ins.excluded[c] for c in update}, where=where
    )
    session.execute(stmt, rows)
