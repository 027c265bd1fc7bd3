"""What the registry pages need beyond the service: URLs, alias rows, charts, the lineage graph
and the confirmation tokens for alias moves.

Reads go through the registry and tracking services where those check access; the two queries
here read the registry's own tables for a model already loaded (and checked) by the service.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import NotFound
from passerelle.core.models import Project
from passerelle.registry.models import ModelAlias, ModelVersion, RegisteredModel
from passerelle.tracking import service as tracking
from passerelle.web import confirm
from passerelle.web.charts import line_figure
from passerelle.web.confirm import TokenCheck
from passerelle.web.render import query_string

KEY_METRICS = 4  # metrics a timeline entry shows: more would turn it into a table


# -- URLs --------------------------------------------------------------------------------------
def model_path(name: str, *parts: str | int) -> str:
    """``/models/<name>[/<part>...]``, every part quoted on its own.

    Model names come from URLs of the API, so they may hold characters that mean something in a
    path (``/``, ``?``, ``#``): each is quoted, never trusted to be URL-safe.
    """
    return "/models/" + "/".join(quote(str(p), safe="") for p in (name, *parts))


def model_url(name: str, project: str, *parts: str | int, **params: Any) -> str:
    """A page of a model, with the project in the query (names are unique per project)."""
    return model_path(name, *parts) + query_string(project=project, **params)


def run_url(run_id: str) -> str:
    return "/runs/" + quote(run_id, safe="")


# -- reads -------------------------------------------------------------------------------------
def project_name(session: Session, model: RegisteredModel) -> str:
    project = session.get(Project, model.project_id)
    return project.name if project else ""


def alias_rows(session: Session, model_id: int) -> list[dict[str, Any]]:
    """Each alias of a model with its version and who moved it last, by alias name."""
    rows = session.execute(
        select(ModelAlias.alias, ModelVersion.version, ModelAlias.updated_by, ModelAlias.updated_at)
        .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .where(ModelAlias.model_id == model_id)
        .order_by(ModelAlias.alias)
    )
    return [
        {"alias": alias, "version": version, "updated_by": by, "updated_at": at}
        for alias, version, by, at in rows
    ]


def alias_target(session: Session, model_id: int, alias: str) -> int | None:
    """The version number an alias points at now, or ``None`` when the alias does not exist."""
    return session.scalar(
        select(ModelVersion.version)
        .join(ModelAlias, ModelAlias.version_id == ModelVersion.id)
        .where(ModelAlias.model_id == model_id, ModelAlias.alias == alias)
    )


def source_runs(
    session: Session, principal: Principal, run_ids: Iterable[str | None]
) -> dict[str, dict[str, Any]]:
    """Name, status and experiment of each source run still there, by id.

    A version outlives its run (the run can be deleted): such ids are simply absent, and the
    pages show the id alone.
    """
    found: dict[str, dict[str, Any]] = {}
    for run_id in dict.fromkeys(r for r in run_ids if r):
        try:
            run = tracking.load_run(session, principal, run_id, Action.READ)
        except NotFound:
            continue
        found[run_id] = {
            "id": run.id,
            "name": run.name,
            "status": run.status,
            "experiment_id": run.experiment_id,
        }
    return found


# -- metrics -----------------------------------------------------------------------------------
def as_number(value: Any) -> float | None:
    """A finite metric value, or ``None`` (NaN and infinities travel as strings)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def metric_keys(versions: Sequence[dict[str, Any]]) -> list[str]:
    """Metric names across versions, the ones most versions have first, then by name."""
    counts = Counter(k for v in versions for k in v["metrics"])
    return sorted(counts, key=lambda k: (-counts[k], k))


def key_metrics(metrics: dict[str, Any], first: str | None) -> list[tuple[str, Any]]:
    """The few metrics a timeline entry shows: the charted one first, then by name."""
    keys = sorted(metrics)
    if first in metrics:
        keys.remove(first)  # type: ignore[arg-type]
        keys.insert(0, first)  # type: ignore[arg-type]
    return [(k, metrics[k]) for k in keys[:KEY_METRICS]]


def metric_chart(versions: Sequence[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """``key`` by version number, oldest first; ``None`` unless two versions have a value.

    A single point says nothing about a trend, and a version without the metric is left out
    rather than drawn as zero.
    """
    points = [
        (v["version"], number)
        for v in sorted(versions, key=lambda v: v["version"])
        if (number := as_number(v["metrics"].get(key))) is not None
    ]
    if len(points) < 2:
        return None
    figure = line_figure(key, [(key, points)])
    layout = figure["layout"]
    layout["xaxis"]["title"] = {"text": "version"}
    layout["xaxis"].update(tickmode="array", tickvals=[p[0] for p in points])
    layout["height"] = 240
    data = figure["data"][0]
    data["mode"] = "lines+markers"
    data["hovertemplate"] = "version %{x}<br>" + key.replace("%", "%%") + " %{y}<extra></extra>"
    return figure


# -- lineage graph -----------------------------------------------------------------------------
NODE_W = 200
NODE_H = 62
COL_GAP = 56
ROW_GAP = 14
HEADER_H = 28
MAX_TEXT = 26  # characters that fit a node at 12px; longer text is cut, the full text is a tooltip


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Node:
    kind: str  # data, run, version, alias, deployment
    title: str
    lines: list[str]
    href: str | None = None
    placeholder: bool = False
    tooltip: str = ""
    x: int = 0
    y: int = 0
    w: int = NODE_W
    h: int = NODE_H

    @property
    def label(self) -> str:
        return _clip(self.title)

    @property
    def sublines(self) -> list[str]:
        return [_clip(line, MAX_TEXT + 4) for line in self.lines]


@dataclass
class Edge:
    path: str
    reverse: bool = False  # the arrow points back at the source (a dataset the run wrote)


@dataclass
class Graph:
    columns: list[tuple[str, int]]  # heading, x of the column
    nodes: list[Node]
    edges: list[Edge] = field(default_factory=list)
    width: int = 0
    height: int = 0


def _curve(a: Node, b: Node) -> str:
    x1, y1 = a.x + a.w, a.y + a.h // 2
    x2, y2 = b.x, b.y + b.h // 2
    mid = (x2 - x1) // 2
    return f"M{x1},{y1} C{x1 + mid},{y1} {x2 - mid},{y2} {x2 - 2},{y2}"


def _detour(a: Node, b: Node, y: int) -> str:
    """From ``a`` to ``b`` two columns on, passing under the column between them."""
    x1, y1 = a.x + a.w, a.y + a.h // 2
    x2, y2 = b.x, b.y + b.h // 2
    r = COL_GAP // 2
    return (
        f"M{x1},{y1} C{x1 + r},{y1} {x1 + r},{y} {x1 + 2 * r},{y} L{x2 - 2 * r},{y} "
        f"C{x2 - r},{y} {x2 - r},{y2} {x2 - 2},{y2}"
    )


def lineage_graph(
    model: str,
    version: dict[str, Any],
    run: dict[str, Any] | None,
    aliases: Sequence[str],
    deployments: Sequence[dict[str, Any]] = (),
) -> Graph:
    """Boxes in columns, data snapshots → source run → version → aliases → deployments.

    Laid out here so the page needs no script and no network resource to draw it; the template
    turns it into SVG. Empty columns get a dashed placeholder box so the chain always reads
    left to right.
    """
    datasets = version["lineage"].get("data") or []
    data_nodes = [
        Node(
            "data",
            ds.get("name") or "dataset",
            [
                f"{(ds.get('digest') or '')[:12]}",
                " · ".join(
                    str(p)
                    for p in (
                        ds.get("context"),
                        None if ds.get("num_rows") is None else f"{ds['num_rows']} rows",
                        "output" if ds.get("direction") == "output" else None,
                    )
                    if p
                ),
            ],
            tooltip=f"{ds.get('name')} sha256:{ds.get('digest')}",
        )
        for ds in datasets
    ] or [Node("data", "no dataset recorded", ["log_dataset() records one"], placeholder=True)]
    run_id = version.get("source_run_id")
    if run is not None:
        run_node = Node(
            "run",
            run["name"] or run["id"],
            [run["id"][:12], str(run["status"]).lower()],
            href=run_url(run["id"]),
            tooltip=f"run {run['name']} ({run['id']})",
        )
    elif run_id:
        run_node = Node(
            "run", "run not available", [run_id[:12], "deleted or not readable"], placeholder=True
        )
    else:
        run_node = Node("run", "no source run", ["the run was deleted"], placeholder=True)
    version_node = Node(
        "version",
        f"{model} v{version['version']}",
        [
            f"{version['flavor']} · {str(version['status']).lower()}",
            f"manifest {version['manifest_sha256'][:12]}",
        ],
        tooltip=f"models:/{model}/{version['version']}",
    )
    alias_nodes = [
        Node("alias", f"@{a}", [f"models:/{model}@{a}"], tooltip=f"models:/{model}@{a}")
        for a in aliases
    ] or [Node("alias", "no alias", ["set one below"], placeholder=True)]
    deploy_nodes = [
        Node(
            "deployment",
            str(d.get("name", "deployment")),
            [str(d.get("detail", ""))],
            href=d.get("href"),
            tooltip=f"endpoint {d.get('name')}: {d.get('detail', '')}",
        )
        for d in deployments
    ] or [Node("deployment", "no deployment", ["not served yet"], placeholder=True)]

    columns = [
        ("Data snapshots", data_nodes),
        ("Source run", [run_node]),
        ("Version", [version_node]),
        ("Aliases", alias_nodes),
        ("Deployments", deploy_nodes),
    ]
    tallest = max(len(nodes) for _, nodes in columns)
    body_h = tallest * NODE_H + (tallest - 1) * ROW_GAP
    headings = []
    for i, (heading, nodes) in enumerate(columns):
        x = i * (NODE_W + COL_GAP)
        headings.append((heading, x))
        own_h = len(nodes) * NODE_H + (len(nodes) - 1) * ROW_GAP
        top = HEADER_H + (body_h - own_h) // 2
        for j, node in enumerate(nodes):
            node.x, node.y = x, top + j * (NODE_H + ROW_GAP)

    edges = []
    if not run_node.placeholder:
        for ds, node in zip(datasets, data_nodes, strict=False):
            edges.append(Edge(_curve(node, run_node), reverse=ds.get("direction") == "output"))
        edges.append(Edge(_curve(run_node, version_node)))
    for node in alias_nodes:
        if not node.placeholder:
            edges.append(Edge(_curve(version_node, node)))
    below = HEADER_H + body_h + 12
    served = [n for n in deploy_nodes if not n.placeholder]
    for node in served:  # under the aliases: an endpoint serves the version, not an alias
        edges.append(Edge(_detour(version_node, node, below)))
    nodes = [n for _, col in columns for n in col]
    width = len(columns) * NODE_W + (len(columns) - 1) * COL_GAP
    height = HEADER_H + body_h + (18 if served else 4)
    return Graph(headings, nodes, edges, width=width, height=height)


# -- confirmation tokens -----------------------------------------------------------------------


def sign_change(key: bytes, fields: Sequence[Any], issued_ms: int) -> str:
    """``<issued>.<hmac>`` over exactly the change a confirmation page showed."""
    return confirm.sign(key, "alias-change", fields, issued_ms)


def check_change(key: bytes, fields: Sequence[Any], token: str, now_ms: int) -> TokenCheck:
    return confirm.check(key, "alias-change", fields, token, now_ms)
