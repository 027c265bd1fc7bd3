"""Run search: the parsed filter and order turned into one SQL query, paginated by offset."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session, aliased, defer

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import InvalidInput
from passerelle.core.models import Project
from passerelle.tracking.models import Experiment, LatestMetric, Param, Run, RunTag
from passerelle.tracking.search import Comparison, parse_filter, parse_order_by
from passerelle.tracking.service import find_experiment, get_experiment, runs_public


def _compare(column: Any, op: str, value: Any, dialect: str) -> ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "LIKE":
        return _like(column, value, dialect)
    if dialect == "postgresql":
        return column.ilike(value.replace("\\", "\\\\"))
    return column.ilike(value)


def _like(column: Any, pattern: str, dialect: str) -> ColumnElement[bool]:
    """Case-sensitive ``LIKE`` where ``%`` and ``_`` are the only special characters.

    SQLite's ``LIKE`` ignores ASCII case, so there the pattern becomes a ``GLOB`` (which does
    not), with GLOB's own wildcards bracketed to match literally. PostgreSQL treats a backslash
    as an escape in ``LIKE``; it is doubled so it matches itself, as it does on SQLite.
    """
    if dialect == "sqlite":
        glob = "".join(
            {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}.get(ch, ch) for ch in pattern
        )
        return column.op("GLOB", is_comparison=True)(glob)
    if dialect == "postgresql":
        pattern = pattern.replace("\\", "\\\\")
    return column.like(pattern)


def _condition(c: Comparison, dialect: str) -> ColumnElement[bool]:
    if c.kind == "attribute":
        return _compare(getattr(Run, c.key), c.op, c.value, dialect)
    table = {"metric": LatestMetric, "param": Param, "tag": RunTag}[c.kind]
    clauses = [
        table.run_id == Run.id,
        table.key == c.key,
        _compare(table.value, c.op, c.value, dialect),
    ]
    if c.kind == "metric":
        clauses.append(LatestMetric.is_nan.is_(False))  # NaN compares false with everything
    return exists().where(*clauses)


MAX_OFFSET = 2**62  # far beyond any real result set, well inside a 64-bit OFFSET


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        if not text.startswith("o:"):
            raise ValueError
        offset = int(text[2:])
        if not 0 <= offset <= MAX_OFFSET:
            raise ValueError
        return offset
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("invalid page_token", field="page_token") from None


def search_runs(
    session: Session,
    principal: Principal,
    *,
    experiment_ids: list[int] | None = None,
    experiments: list[str] | None = None,
    project: str | None = None,
    filter: str | None = None,
    order_by: list[str] | None = None,
    max_results: int = 1000,
    page_token: str | None = None,
    include_lineage: bool = False,
) -> tuple[list[dict[str, Any]], str | None]:
    """Runs matching ``filter`` in the given experiments (or all visible ones), ordered."""
    comparisons = parse_filter(filter)
    orders = parse_order_by(order_by)
    offset = decode_token(page_token)

    exp_ids = [get_experiment(session, principal, i).id for i in experiment_ids or []]
    exp_ids += [find_experiment(session, principal, n, project).id for n in experiments or []]

    # Lineage JSON is large and search never returns it: leave it in the database.
    query = (
        select(Run)
        .options(defer(Run.code), defer(Run.environment))
        .where(Run.lifecycle_stage == "active")
    )
    if exp_ids:
        query = query.where(Run.experiment_id.in_(exp_ids))
    else:
        principal.require(Action.READ, principal.project_id)
        if principal.project_id is not None:
            query = query.where(Run.project_id == principal.project_id)
        if project is not None:
            query = query.join(Project, Project.id == Run.project_id).where(Project.name == project)
    dialect = session.get_bind().dialect.name
    for c in comparisons:
        query = query.where(_condition(c, dialect))

    sort_columns: list[Any] = []
    for o in orders:
        if o.kind == "attribute":
            col: Any = getattr(Run, o.key)
        else:
            table = {"metric": LatestMetric, "param": Param, "tag": RunTag}[o.kind]
            alias = aliased(table)
            query = query.outerjoin(alias, (alias.run_id == Run.id) & (alias.key == o.key))
            col = alias.value
        sort_columns.append((col.desc() if o.descending else col.asc()).nulls_last())
    sort_columns += [Run.start_time.desc(), Run.id.asc()]
    query = query.order_by(*sort_columns).offset(offset).limit(max_results + 1)

    runs = list(session.scalars(query))
    next_token = encode_token(offset + max_results) if len(runs) > max_results else None
    return runs_public(session, runs[:max_results], include_lineage=include_lineage), next_token


def experiment_key_columns(session: Session, experiment_id: int) -> dict[str, list[str]]:
    """The metric, param and tag keys used in an experiment (the runs table's columns)."""
    run_ids = select(Run.id).where(
        Run.experiment_id == experiment_id, Run.lifecycle_stage == "active"
    )
    out: dict[str, list[str]] = {}
    for kind, table in (("metrics", LatestMetric), ("params", Param), ("tags", RunTag)):
        keys = session.scalars(
            select(table.key).where(table.run_id.in_(run_ids)).distinct().order_by(table.key)
        ).all()
        out[kind] = list(keys)
    return out


__all__ = ["Experiment", "experiment_key_columns", "search_runs"]
