"""Totals and the dashboard: cost and tokens per trace, session, user, model and day; latency
percentiles and error rate over a time window."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from passerelle.core.errors import InvalidInput
from passerelle.tracing.models import Observation, Trace

DAY_MS = 86_400_000
GROUPS = ("trace", "session", "user", "model", "day")
MAX_LATENCIES = 200_000


def _window(column: Any, since: int | None, until: int | None) -> list[Any]:
    where = []
    if since is not None:
        where.append(column >= since)
    if until is not None:
        where.append(column <= until)
    return where


def _day(ms_column: Any) -> Any:
    return ms_column // DAY_MS


def _day_text(day_number: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(int(day_number) * 86_400, dt.UTC).strftime("%Y-%m-%d")


def cost_totals(
    session: Session,
    project_id: int,
    group_by: str,
    *,
    since: int | None = None,
    until: int | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Cost and tokens summed per ``group_by`` key, the most expensive first."""
    if group_by not in GROUPS:
        raise InvalidInput(f"group_by is one of {', '.join(GROUPS)}", field="group_by")
    if group_by in ("trace", "session", "user"):
        t = Trace
        key = {"trace": t.id, "session": t.session_id, "user": t.user_id}[group_by]
        cost, tin, tout, ttot, count = (
            t.total_cost,
            t.input_tokens,
            t.output_tokens,
            t.total_tokens,
            t.id,
        )
        where = [t.project_id == project_id, key.is_not(None), *_window(t.start_time, since, until)]
    else:
        o = Observation
        key = o.model if group_by == "model" else _day(o.start_time)
        cost, tin, tout, ttot, count = o.cost, o.input_tokens, o.output_tokens, o.total_tokens, o.id
        where = [o.project_id == project_id, *_window(o.start_time, since, until)]
        where.append(o.model.is_not(None) if group_by == "model" else o.type == "generation")
    rows = session.execute(
        select(
            key,
            func.coalesce(func.sum(cost), 0.0),
            func.coalesce(func.sum(tin), 0),
            func.coalesce(func.sum(tout), 0),
            func.coalesce(func.sum(ttot), 0),
            func.count(count),
        )
        .where(*where)
        .group_by(key)
        .order_by(func.coalesce(func.sum(cost), 0.0).desc())
        .limit(min(max(limit, 1), 10_000))
    ).all()
    return [
        {
            "key": _day_text(k) if group_by == "day" else k,
            "cost": float(c),
            "input_tokens": int(i),
            "output_tokens": int(out),
            "total_tokens": int(tot),
            "count": int(n),
        }
        for k, c, i, out, tot, n in rows
    ]


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation, as numpy's default does."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def dashboard(
    session: Session, project_id: int, *, since: int | None = None, until: int | None = None
) -> dict[str, Any]:
    """Cost and tokens by model and day, trace latency p50/p95/p99 and the error rate."""
    o, t = Observation, Trace
    day = _day(o.start_time)
    by_model_day = session.execute(
        select(
            o.model,
            day,
            func.coalesce(func.sum(o.cost), 0.0),
            func.coalesce(func.sum(o.input_tokens), 0),
            func.coalesce(func.sum(o.output_tokens), 0),
            func.count(),
        )
        .where(o.project_id == project_id, o.model.is_not(None))
        .where(*_window(o.start_time, since, until))
        .group_by(o.model, day)
        .order_by(day, o.model)
    ).all()
    trace_where = [t.project_id == project_id, *_window(t.start_time, since, until)]
    latencies = sorted(
        session.scalars(
            select(t.latency_ms)
            .where(*trace_where)
            .order_by(t.start_time.desc())
            .limit(MAX_LATENCIES)
        ).all()
    )
    count, errors, observations = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((t.error_count > 0, 1), else_=0)), 0),
            func.coalesce(func.sum(t.observation_count), 0),
        ).where(*trace_where)
    ).one()
    return {
        "traces": int(count),
        "observations": int(observations),
        "error_traces": int(errors),
        "error_rate": (errors / count) if count else 0.0,
        "latency_ms": {
            "p50": percentile(latencies, 0.50),
            "p95": percentile(latencies, 0.95),
            "p99": percentile(latencies, 0.99),
        },
        "by_model_day": [
            {
                "model": model,
                "day": _day_text(d),
                "cost": float(c),
                "input_tokens": int(i),
                "output_tokens": int(out),
                "generations": int(n),
            }
            for model, d, c, i, out, n in by_model_day
        ],
    }
