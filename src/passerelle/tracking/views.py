"""Read-only views the tracking pages need beyond what the API serves.

They call the tracking services (which check access) and shape the results for templates;
no function here writes.
"""

from __future__ import annotations

import posixpath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import InvalidInput, NotFound
from passerelle.core.models import Project
from passerelle.tracking import service
from passerelle.tracking.models import Artifact, Run

MAX_COMPARED = 50


def experiment_summary(
    session: Session, principal: Principal, experiment_id: int
) -> dict[str, Any]:
    """One experiment with its project name, run count and last activity (one query each)."""
    exp = service.get_experiment(session, principal, experiment_id)
    project = session.scalar(select(Project.name).where(Project.id == exp.project_id)) or ""
    count, last = session.execute(
        select(func.count(Run.id), func.max(Run.start_time)).where(
            Run.experiment_id == exp.id, Run.lifecycle_stage == "active"
        )
    ).one()
    return service.experiment_public(exp, project, count or 0, last)


def parent_summary(
    session: Session, principal: Principal, run_id: str | None
) -> dict[str, Any] | None:
    """The parent run's id and name; a parent that was deleted shows by id only."""
    if run_id is None:
        return None
    try:
        parent = service.load_run(session, principal, run_id, Action.READ)
    except NotFound:
        return {"id": run_id, "name": None}
    return {"id": parent.id, "name": parent.name}


def _tree_order(art: Artifact) -> list[tuple[int, str]]:
    """Folders before files at every level, each group by name, as file browsers list them."""
    *folders, name = art.path.split("/")
    return [(0, f) for f in folders] + [(1, name)]


def artifact_tree(artifacts: list[Artifact]) -> list[dict[str, Any]]:
    """Artifacts as rows of an indented tree: a folder row before the first file inside it.

    Rows are ``{"kind": "dir"|"file", "name", "depth", ...}``; file rows carry the artifact.
    """
    rows: list[dict[str, Any]] = []
    open_dirs: list[str] = []
    for art in sorted(artifacts, key=_tree_order):
        parts = art.path.split("/")
        folders = parts[:-1]
        common = 0
        for opened, folder in zip(open_dirs, folders, strict=False):
            if opened != folder:
                break
            common += 1
        open_dirs = open_dirs[:common]
        for depth in range(common, len(folders)):
            rows.append({"kind": "dir", "name": folders[depth], "depth": depth})
            open_dirs.append(folders[depth])
        rows.append({"kind": "file", "name": parts[-1], "depth": len(folders), "artifact": art})
    return rows


def artifact_name(path: str) -> str:
    return posixpath.basename(path)


def parse_run_ids(values: list[str]) -> list[str]:
    """``?runs=a,b&runs=c`` as ``[a, b, c]``, in order, without duplicates or blanks."""
    out: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if item and item not in out:
                out.append(item)
    if not out:
        raise InvalidInput("choose at least one run to compare", field="runs")
    if len(out) > MAX_COMPARED:
        raise InvalidInput(
            f"{len(out)} runs chosen; compare at most {MAX_COMPARED} at once", field="runs"
        )
    return out


def run_labels(runs: list[dict[str, Any]]) -> list[str]:
    """Names for chart legends and axes; a name shared by several runs gets its id's prefix."""
    names = [r["name"] for r in runs]
    return [
        r["name"] if names.count(r["name"]) == 1 else f"{r['name']} ({r['id'][:7]})" for r in runs
    ]


def differing_keys(runs: list[dict[str, Any]], section: str) -> tuple[list[str], set[str]]:
    """Keys of ``section`` (params or metrics) across runs, and those whose values differ."""
    keys = sorted({k for r in runs for k in r[section]})
    differ = {k for k in keys if len({repr(r[section].get(k)) for r in runs}) > 1}
    return keys, differ
