"""Reading traces: the filtered list, one trace as a tree, sessions. No HTTP here.

Every function takes a database session and a project id the caller was checked against
(``project_for``); the pages and the API call the same functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import InvalidInput, NotFound
from passerelle.core.models import Project
from passerelle.tracing.models import Observation, Score, Trace
from passerelle.tracking.service import resolve_project

MAX_PAGE = 1000


def project_for(
    session: Session, principal: Principal, name: str | None, action: Action
) -> Project:
    """The named project, else the key's own project, else ``default``; access checked."""
    if name is None and principal.project_id is not None:
        project = session.get(Project, principal.project_id)
        if project is None:
            raise NotFound("the key's project no longer exists", field="project")
        principal.require(action, project.id)
        return project
    return resolve_project(session, principal, name or "default", action)


def like_pattern(text: str) -> str:
    """``%text%`` with the LIKE wildcards of ``text`` escaped (escape character ``/``)."""
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


@dataclass
class TraceFilter:
    """The traces list's filters; each one left ``None`` does not filter."""

    name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    tag: str | None = None
    since: int | None = None
    until: int | None = None
    min_latency_ms: float | None = None
    max_latency_ms: float | None = None
    min_cost: float | None = None
    max_cost: float | None = None
    errors: bool | None = None
    q: str | None = None

    def conditions(self) -> list[Any]:
        t = Trace
        found: list[Any] = []
        for column, value in (
            (t.name, self.name),
            (t.user_id, self.user_id),
            (t.session_id, self.session_id),
        ):
            if value is not None:
                found.append(column == value)
        if self.tag is not None:
            # Tags are a JSON array; its text holds the tag JSON-encoded, quotes included.
            pattern = like_pattern(json.dumps(self.tag))
            found.append(func.cast(t.tags, _text_type()).like(pattern, escape="/"))
        for column, low, high in (
            (t.start_time, self.since, self.until),
            (t.latency_ms, self.min_latency_ms, self.max_latency_ms),
            (t.total_cost, self.min_cost, self.max_cost),
        ):
            if low is not None:
                found.append(column >= low)
            if high is not None:
                found.append(column <= high)
        if self.errors is not None:
            found.append(t.error_count > 0 if self.errors else t.error_count == 0)
        if self.q:
            pattern = like_pattern(self.q)
            o = Observation
            found.append(
                or_(
                    exists().where(
                        o.trace_id == t.id,
                        or_(
                            o.input.ilike(pattern, escape="/"), o.output.ilike(pattern, escape="/")
                        ),
                    ),
                    t.name.ilike(pattern, escape="/"),
                )
            )
        return found


def _text_type() -> Any:
    from sqlalchemy import Text

    return Text()


def trace_public(t: Trace) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "session_id": t.session_id,
        "user_id": t.user_id,
        "tags": t.tags or [],
        "metadata": t.meta or {},
        "release": t.release,
        "input": t.input,
        "output": t.output,
        "start_time": t.start_time,
        "end_time": t.end_time,
        "latency_ms": t.latency_ms,
        "observation_count": t.observation_count,
        "error_count": t.error_count,
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
        "total_tokens": t.total_tokens,
        "total_cost": t.total_cost,
        "has_root": t.has_root,
    }


def list_traces(
    session: Session, project_id: int, filters: TraceFilter, *, limit: int = 50, offset: int = 0
) -> tuple[list[Trace], int]:
    """One page of traces, newest first, and how many match in all."""
    where = [Trace.project_id == project_id, *filters.conditions()]
    total = session.scalar(select(func.count()).select_from(Trace).where(*where)) or 0
    rows = session.scalars(
        select(Trace)
        .where(*where)
        .order_by(Trace.start_time.desc(), Trace.id)
        .limit(min(max(limit, 1), MAX_PAGE))
        .offset(max(offset, 0))
    ).all()
    return list(rows), total


def observation_public(o: Observation) -> dict[str, Any]:
    return {
        "id": o.id,
        "trace_id": o.trace_id,
        "parent_id": o.parent_id,
        "type": o.type,
        "name": o.name,
        "start_time": o.start_time,
        "end_time": o.end_time,
        "start_ns": o.start_ns,
        "latency_ms": o.latency_ms,
        "level": o.level,
        "status_message": o.status_message,
        "input": o.input,
        "output": o.output,
        "metadata": o.meta or {},
        "model": o.model,
        "provider": o.provider,
        "model_parameters": o.model_parameters,
        "usage": {
            "input": o.input_tokens,
            "output": o.output_tokens,
            "cached": o.cached_tokens,
            "total": o.total_tokens,
        },
        "cost": o.cost,
        "cost_source": o.cost_source,
        "ttft_ms": o.ttft_ms,
        "prompt_name": o.prompt_name,
        "prompt_version": o.prompt_version,
    }


def tree_order(observations: list[Observation]) -> list[dict[str, Any]]:
    """Observations depth-first (children by start time) with their ``depth``. A span whose
    parent never arrived is shown at the top level with ``parent_missing`` set."""
    by_id = {o.id: o for o in observations}
    children: dict[str | None, list[Observation]] = {}
    for o in sorted(observations, key=lambda o: (o.start_ns, -o.latency_ms, o.id)):
        parent = o.parent_id if o.parent_id in by_id else None
        children.setdefault(parent, []).append(o)
    ordered: list[dict[str, Any]] = []
    seen: set[str] = set()

    def visit(o: Observation, depth: int) -> None:
        if o.id in seen:
            return
        seen.add(o.id)
        item = observation_public(o)
        item["depth"] = depth
        item["parent_missing"] = o.parent_id is not None and o.parent_id not in by_id
        ordered.append(item)
        for child in children.get(o.id, []):
            visit(child, depth + 1)

    for top in children.get(None, []):
        visit(top, 0)
    for o in observations:  # a parent cycle has no top: show it anyway
        visit(o, 0)
    return ordered


def get_trace(session: Session, project_id: int, trace_id: str) -> dict[str, Any]:
    """A trace with its observations as a tree and its scores."""
    trace_id = trace_id.lower()
    trace = session.get(Trace, trace_id) if len(trace_id) == 32 else None
    if trace is None or trace.project_id != project_id:
        raise NotFound(f"trace '{trace_id[:64]}' not found", field="trace_id")
    observations = list(
        session.scalars(select(Observation).where(Observation.trace_id == trace_id)).all()
    )
    scores = session.scalars(
        select(Score)
        .where(Score.trace_id == trace_id, Score.project_id == project_id)
        .order_by(Score.id)
    ).all()
    return {
        "trace": trace_public(trace),
        "observations": tree_order(observations),
        "scores": [score_public(s) for s in scores],
    }


def score_public(s: Score) -> dict[str, Any]:
    value: Any = s.string_value if s.data_type == "categorical" else s.value
    if s.data_type == "boolean" and s.value is not None:
        value = bool(s.value)
    return {
        "id": s.id,
        "trace_id": s.trace_id,
        "observation_id": s.observation_id,
        "name": s.name,
        "data_type": s.data_type,
        "value": value,
        "source": s.source,
        "comment": s.comment,
        "created_at": s.created_at,
    }


def list_sessions(
    session: Session, project_id: int, *, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Sessions (conversations), the most recently active first, with their totals."""
    t = Trace
    where = [t.project_id == project_id, t.session_id.is_not(None)]
    total = session.scalar(select(func.count(func.distinct(t.session_id))).where(*where)) or 0
    rows = session.execute(
        select(
            t.session_id,
            func.count(),
            func.min(t.start_time),
            func.max(t.end_time),
            func.sum(t.total_cost),
            func.sum(t.total_tokens),
            func.sum(t.error_count),
            func.max(t.user_id),
        )
        .where(*where)
        .group_by(t.session_id)
        .order_by(func.max(t.end_time).desc())
        .limit(min(max(limit, 1), MAX_PAGE))
        .offset(max(offset, 0))
    ).all()
    return [
        {
            "session_id": sid,
            "trace_count": count,
            "start_time": start,
            "end_time": end,
            "total_cost": float(cost or 0),
            "total_tokens": int(tokens or 0),
            "error_count": int(errors or 0),
            "user_id": user,
        }
        for sid, count, start, end, cost, tokens, errors, user in rows
    ], total


def get_session(session: Session, project_id: int, session_id: str) -> dict[str, Any]:
    """The turns of one conversation, oldest first."""
    traces = session.scalars(
        select(Trace)
        .where(Trace.project_id == project_id, Trace.session_id == session_id)
        .order_by(Trace.start_time, Trace.id)
        .limit(MAX_PAGE)
    ).all()
    if not traces:
        raise NotFound(f"session '{session_id[:200]}' not found", field="session_id")
    return {
        "session_id": session_id,
        "total_cost": sum(t.total_cost for t in traces),
        "total_tokens": sum(t.total_tokens for t in traces),
        "traces": [trace_public(t) for t in traces],
    }


def check_trace_id(trace_id: str) -> str:
    if len(trace_id) != 32 or any(c not in "0123456789abcdefABCDEF" for c in trace_id):
        raise InvalidInput("a trace id is 32 hex characters", field="trace_id")
    return trace_id.lower()
