"""Tracking logic: experiments, runs, params, tags and metrics. No HTTP here.

Every function takes a database session and the calling ``Principal`` and checks access itself,
so no route can forget to.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal, ensure_project, get_project_by_name
from passerelle.core.errors import Conflict, InvalidInput, NotFound
from passerelle.core.ids import new_id, now_ms
from passerelle.core.models import Project
from passerelle.core.upsert import upsert
from passerelle.tracking.models import (
    Experiment,
    LatestMetric,
    Metric,
    Param,
    Run,
    RunDataset,
    RunTag,
)
from passerelle.tracking.schemas import MetricIn, RunCreate, RunUpdate

MAX_PARAM_LENGTH = 8000


def json_float(value: float) -> float | str:
    """JSON has no NaN or infinity: send them as the strings the API also accepts."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


TERMINAL = {"FINISHED", "FAILED", "KILLED"}


# -- projects and experiments ------------------------------------------------------------------
def resolve_project(session: Session, principal: Principal, name: str, action: Action) -> Project:
    """The named project; an admin creates it on first use, anyone else needs it to exist."""
    if principal.can(Action.ADMIN):
        return ensure_project(session, name)
    project = get_project_by_name(session, name)
    principal.require(action, project.id)
    return project


def experiment_public(exp: Experiment, project: str, runs: int = 0, last: int | None = None):
    return {
        "id": exp.id,
        "name": exp.name,
        "project": project,
        "description": exp.description,
        "tags": exp.tags or {},
        "lifecycle_stage": exp.lifecycle_stage,
        "created_at": exp.created_at,
        "updated_at": exp.updated_at,
        "run_count": runs,
        "last_run_at": last,
    }


def create_experiment(
    session: Session,
    principal: Principal,
    name: str,
    project: str = "default",
    description: str = "",
    tags: dict[str, str] | None = None,
) -> Experiment:
    proj = resolve_project(session, principal, project, Action.WRITE)
    principal.require(Action.WRITE, proj.id)
    if session.scalar(
        select(Experiment.id).where(Experiment.project_id == proj.id, Experiment.name == name)
    ):
        raise Conflict(f"experiment '{name}' already exists in project '{project}'", field="name")
    ts = now_ms()
    exp = Experiment(
        project_id=proj.id,
        name=name,
        description=description,
        tags=tags or {},
        lifecycle_stage="active",
        created_at=ts,
        updated_at=ts,
    )
    session.add(exp)
    session.flush()
    return exp


def get_or_create_experiment(
    session: Session, principal: Principal, name: str, project: str = "default"
) -> Experiment:
    proj = resolve_project(session, principal, project, Action.WRITE)
    exp = session.scalar(
        select(Experiment).where(Experiment.project_id == proj.id, Experiment.name == name)
    )
    if exp is not None:
        principal.require(Action.WRITE, exp.project_id)
        return exp
    try:
        with session.begin_nested():
            return create_experiment(session, principal, name, project)
    except (Conflict, IntegrityError):  # created concurrently by another client
        exp = session.scalar(
            select(Experiment).where(Experiment.project_id == proj.id, Experiment.name == name)
        )
        if exp is None:
            raise
        return exp


def get_experiment(session: Session, principal: Principal, experiment_id: int) -> Experiment:
    exp = session.get(Experiment, experiment_id)
    if exp is None:
        raise NotFound(f"experiment {experiment_id} not found", field="experiment_id")
    principal.require(Action.READ, exp.project_id)
    return exp


def find_experiment(
    session: Session, principal: Principal, name: str, project: str | None = None
) -> Experiment:
    query = select(Experiment).where(Experiment.name == name)
    if project is not None:
        query = query.join(Project, Project.id == Experiment.project_id).where(
            Project.name == project
        )
    exps = [e for e in session.scalars(query) if principal.can(Action.READ, e.project_id)]
    if not exps:
        raise NotFound(f"experiment '{name}' not found", field="experiment")
    if len(exps) > 1:
        raise InvalidInput(
            f"experiment '{name}' exists in several projects: name the project", field="project"
        )
    return exps[0]


def list_experiments(
    session: Session, principal: Principal, project: str | None = None
) -> list[dict[str, Any]]:
    """Experiments visible to the caller, newest activity first, with their run counts."""
    stats = (
        select(
            Run.experiment_id,
            func.count(Run.id).label("n"),
            func.max(Run.start_time).label("last"),
        )
        .where(Run.lifecycle_stage == "active")
        .group_by(Run.experiment_id)
        .subquery()
    )
    query = (
        select(Experiment, Project.name, stats.c.n, stats.c.last)
        .join(Project, Project.id == Experiment.project_id)
        .outerjoin(stats, stats.c.experiment_id == Experiment.id)
        .where(Experiment.lifecycle_stage == "active")
    )
    if project is not None:
        query = query.where(Project.name == project)
    if principal.project_id is not None:
        query = query.where(Experiment.project_id == principal.project_id)
    rows = session.execute(query).all()
    out = [experiment_public(e, p, n or 0, last) for e, p, n, last in rows]
    out.sort(key=lambda e: e["last_run_at"] or e["created_at"], reverse=True)
    return out


# -- runs --------------------------------------------------------------------------------------
def load_run(session: Session, principal: Principal, run_id: str, action: Action) -> Run:
    """The run, after checking the caller may do ``action`` on it."""
    run = session.get(Run, run_id)
    if run is None or run.lifecycle_stage != "active":
        raise NotFound(f"run '{run_id}' not found", field="run_id")
    principal.require(action, run.project_id)
    return run


def create_run(session: Session, principal: Principal, body: RunCreate) -> Run:
    if body.experiment_id is not None:
        exp = get_experiment(session, principal, body.experiment_id)
    elif body.experiment:
        exp = get_or_create_experiment(session, principal, body.experiment, body.project)
    else:
        exp = get_or_create_experiment(session, principal, "Default", body.project)
    principal.require(Action.WRITE, exp.project_id)
    if body.parent_run_id is not None:
        parent = load_run(session, principal, body.parent_run_id, Action.WRITE)
        if parent.project_id != exp.project_id:
            raise InvalidInput("the parent run belongs to another project", field="parent_run_id")
    run_id = new_id()
    run = Run(
        id=run_id,
        experiment_id=exp.id,
        project_id=exp.project_id,
        parent_run_id=body.parent_run_id,
        name=body.name or f"run-{run_id[:8]}",
        status="RUNNING",
        start_time=now_ms() if body.start_time is None else body.start_time,
        end_time=None,
        created_by=body.created_by or principal.key_name,
        lifecycle_stage="active",
        code=body.code,
        environment=body.environment,
    )
    session.add(run)
    exp.updated_at = run.start_time
    session.flush()
    if body.tags:
        set_tags(session, principal, run.id, body.tags)
    return run


def update_run(session: Session, principal: Principal, run_id: str, body: RunUpdate) -> Run:
    run = load_run(session, principal, run_id, Action.WRITE)
    if body.name is not None:
        run.name = body.name
    if body.status is not None:
        run.status = body.status
        if body.status in TERMINAL:
            run.end_time = body.end_time or run.end_time or now_ms()
    if body.end_time is not None:
        if body.end_time < run.start_time:
            raise InvalidInput("end_time is before the run's start_time", field="end_time")
        run.end_time = body.end_time
    return run


def delete_run(session: Session, principal: Principal, run_id: str) -> None:
    run = load_run(session, principal, run_id, Action.WRITE)
    run.lifecycle_stage = "deleted"


# -- params and tags ---------------------------------------------------------------------------
def _param_text(key: str, value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_LENGTH:
        raise InvalidInput(
            f"param '{key}' is {len(text)} characters long; the limit is {MAX_PARAM_LENGTH}",
            field=f"params.{key}",
        )
    return text


def log_params(session: Session, principal: Principal, run_id: str, params: dict[str, Any]):
    """Params are immutable: the same value again is a no-op, another value is a conflict."""
    load_run(session, principal, run_id, Action.WRITE)
    values = {key: _param_text(key, value) for key, value in params.items()}
    if not values:
        return
    existing = dict(
        session.execute(
            select(Param.key, Param.value).where(
                Param.run_id == run_id, Param.key.in_(list(values))
            )
        ).all()
    )
    for key, value in values.items():
        if key in existing and existing[key] != value:
            raise Conflict(
                f"param '{key}' was already logged as {existing[key]!r}; params are immutable, "
                f"so it cannot become {value!r}",
                field=f"params.{key}",
            )
    new = [{"run_id": run_id, "key": k, "value": v} for k, v in values.items() if k not in existing]
    if new:
        try:
            with session.begin_nested():
                session.execute(insert(Param), new)
        except IntegrityError:
            raise Conflict("params were logged concurrently; retry", field="params") from None


def set_tags(session: Session, principal: Principal, run_id: str, tags: dict[str, str]) -> None:
    load_run(session, principal, run_id, Action.WRITE)
    for key in tags:
        if not key or len(key) > 250:
            raise InvalidInput(f"tag key {key[:50]!r} must have 1 to 250 characters", field="tags")
    rows = [{"run_id": run_id, "key": k, "value": str(v)} for k, v in tags.items()]
    if rows:
        upsert(session, RunTag, rows, ["run_id", "key"], ["value"])


def delete_tag(session: Session, principal: Principal, run_id: str, key: str) -> None:
    load_run(session, principal, run_id, Action.WRITE)
    tag = session.get(RunTag, (run_id, key))
    if tag is None:
        raise NotFound(f"tag '{key}' not found on run '{run_id}'", field="key")
    session.delete(tag)


# -- metrics -----------------------------------------------------------------------------------
def log_metrics(
    session: Session, principal: Principal, run_id: str, metrics: Iterable[MetricIn]
) -> int:
    """Append metric values and move each key's latest value forward; returns how many."""
    from passerelle.tracking.ingest import store_rows

    rows = [(m.key, float(m.value), m.step, m.timestamp) for m in metrics]
    return store_rows(session, principal, run_id, rows)


def metric_history(
    session: Session, principal: Principal, run_id: str, key: str
) -> list[tuple[int, float, int]]:
    load_run(session, principal, run_id, Action.READ)
    rows = session.execute(
        select(Metric.step, Metric.value, Metric.is_nan, Metric.timestamp)
        .where(Metric.run_id == run_id, Metric.key == key)
        .order_by(Metric.step, Metric.timestamp, Metric.id)
    ).all()
    return [(s, math.nan if nan else v, t) for s, v, nan, t in rows]


def metric_histories(
    session: Session, principal: Principal, run_id: str
) -> dict[str, list[tuple[int, float, int]]]:
    """Every metric of a run with its history (for charts)."""
    load_run(session, principal, run_id, Action.READ)
    out: dict[str, list[tuple[int, float, int]]] = {}
    for key, s, v, nan, t in session.execute(
        select(Metric.key, Metric.step, Metric.value, Metric.is_nan, Metric.timestamp)
        .where(Metric.run_id == run_id)
        .order_by(Metric.key, Metric.step, Metric.timestamp, Metric.id)
    ):
        out.setdefault(key, []).append((s, math.nan if nan else v, t))
    return out


# -- reading runs back -------------------------------------------------------------------------
def run_lineage(session: Session, run: Run) -> dict[str, Any]:
    """Code, environment and data of a run, in one dict."""
    from passerelle.tracking.datasets import run_datasets

    data = run_datasets(session, run.id)
    return {"code": run.code or {}, "environment": run.environment or {}, "data": data}


def runs_public(
    session: Session, runs: list[Run], *, include_lineage: bool = False
) -> list[dict[str, Any]]:
    """Runs with their params, latest metrics and tags, read in a few set-based queries."""
    if not runs:
        return []
    ids = [r.id for r in runs]
    params: dict[str, dict[str, str]] = {i: {} for i in ids}
    metrics: dict[str, dict[str, float | str]] = {i: {} for i in ids}
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    for chunk_start in range(0, len(ids), 900):
        chunk = ids[chunk_start : chunk_start + 900]
        for rid, k, v in session.execute(
            select(Param.run_id, Param.key, Param.value).where(Param.run_id.in_(chunk))
        ):
            params[rid][k] = v
        for rid, k, v, nan in session.execute(
            select(
                LatestMetric.run_id, LatestMetric.key, LatestMetric.value, LatestMetric.is_nan
            ).where(LatestMetric.run_id.in_(chunk))
        ):
            metrics[rid][k] = json_float(math.nan if nan else v)
        for rid, k, v in session.execute(
            select(RunTag.run_id, RunTag.key, RunTag.value).where(RunTag.run_id.in_(chunk))
        ):
            tags[rid][k] = v
    names = _experiment_names(session, {r.experiment_id for r in runs})
    out = []
    for r in runs:
        exp_name, project = names[r.experiment_id]
        item: dict[str, Any] = {
            "id": r.id,
            "experiment_id": r.experiment_id,
            "experiment": exp_name,
            "project": project,
            "parent_run_id": r.parent_run_id,
            "name": r.name,
            "status": r.status,
            "start_time": r.start_time,
            "end_time": r.end_time,
            "created_by": r.created_by,
            "params": params[r.id],
            "metrics": metrics[r.id],
            "tags": tags[r.id],
        }
        if include_lineage:
            item["lineage"] = run_lineage(session, r)
        out.append(item)
    return out


def _experiment_names(session: Session, exp_ids: set[int]) -> dict[int, tuple[str, str]]:
    rows = session.execute(
        select(Experiment.id, Experiment.name, Project.name)
        .join(Project, Project.id == Experiment.project_id)
        .where(Experiment.id.in_(exp_ids))
    ).all()
    return {i: (e, p) for i, e, p in rows}


def get_run(session: Session, principal: Principal, run_id: str) -> dict[str, Any]:
    run = load_run(session, principal, run_id, Action.READ)
    return runs_public(session, [run], include_lineage=True)[0]


def child_runs(session: Session, principal: Principal, run_id: str) -> list[Run]:
    load_run(session, principal, run_id, Action.READ)
    return list(
        session.scalars(
            select(Run)
            .where(Run.parent_run_id == run_id, Run.lifecycle_stage == "active")
            .order_by(Run.start_time)
        )
    )


def run_dataset_count(session: Session, run_id: str) -> int:
    return session.scalar(select(func.count()).where(RunDataset.run_id == run_id)) or 0
