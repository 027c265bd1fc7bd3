"""``passerelle runs show``: one run as readable sections, lineage included.

The lineage sections name every recorded field, so a reader can check by eye what a rerun must
match: the commit and dirty flag, the Python and package digests, the data fingerprints.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from passerelle.cli.output import (
    MISSING,
    cell,
    fmt_duration,
    fmt_size,
    fmt_time,
    key_value_table,
    new_table,
    short_id,
    status_text,
)

CODE_FIELDS = {
    "git": "git checkout",
    "commit": "commit",
    "branch": "branch",
    "remote": "remote",
    "dirty": "dirty",
    "diff_sha256": "diff sha256",
    "diff_blob": "diff blob",
    "untracked_files": "untracked files",
    "root": "repository",
    "directory": "directory",
}
ENVIRONMENT_FIELDS = {
    "python_version": "python",
    "python_implementation": "implementation",
    "python_executable": "executable",
    "platform": "platform",
    "machine": "machine",
    "packages_count": "packages",
    "packages_sha256": "packages sha256",
    "uv_lock_sha256": "uv.lock sha256",
    "uv_lock_path": "uv.lock path",
    "uv_lock_blob": "uv.lock blob",
    "packages_blob": "package list blob",
    "container_image": "container image",
    "command": "command",
    "cwd": "working directory",
}


def render(
    out: Console,
    run: dict[str, Any],
    artifacts: list[dict[str, Any]],
    children: list[dict[str, Any]],
) -> None:
    """Print the run's header, then one titled section per kind of record."""
    out.print(header(run, children))
    lineage = run.get("lineage") or {}
    _section(out, "Params", run["params"], lambda d: key_value_table(d, "param", "value"))
    _section(
        out,
        "Metrics (latest value)",
        run["metrics"],
        lambda d: key_value_table(d, "metric", "value"),
    )
    _section(out, "Tags", run["tags"], lambda d: key_value_table(d, "tag", "value"))
    _section(out, "Artifacts", artifacts, artifacts_table)
    _section(out, "Datasets", lineage.get("data") or [], datasets_table)
    out.print()
    out.print(Text("Lineage", style="bold underline"))
    out.print(fields_table("code", lineage.get("code") or {}, CODE_FIELDS))
    out.print(fields_table("environment", lineage.get("environment") or {}, ENVIRONMENT_FIELDS))
    data = lineage.get("data") or []
    out.print(Text("data", style="bold"))
    if not data:
        out.print(Text("  no dataset logged", style="dim"))
    for d in data:
        out.print(
            Text(f"  {d['name']} ({d['direction']}, {d['context']}): sha256 {d['digest']}"),
            soft_wrap=True,
        )


def header(run: dict[str, Any], children: list[dict[str, Any]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("Run", Text(f"{run['name']}  ({run['id']})"))
    grid.add_row(
        "Experiment",
        Text(f"{run['experiment']} (id {run['experiment_id']}, project {run['project']})"),
    )
    grid.add_row("Status", status_text(run["status"]))
    grid.add_row("Started", fmt_time(run["start_time"]))
    grid.add_row("Ended", fmt_time(run["end_time"]))
    grid.add_row("Duration", fmt_duration(run["start_time"], run["end_time"]))
    if run.get("created_by"):
        grid.add_row("Created by", Text(run["created_by"]))
    if run["parent_run_id"]:
        grid.add_row("Parent run", Text(run["parent_run_id"]))
    if children:
        names = ", ".join(f"{c['name']} ({short_id(c['id'])})" for c in children)
        grid.add_row("Child runs", Text(f"{len(children)}: {names}"))
    return grid


def _section(out: Console, title: str, items: Any, build: Any) -> None:
    out.print()
    out.print(Text(title, style="bold underline"))
    if not items:
        out.print(Text("  none", style="dim"))
        return
    out.print(build(items))


def artifacts_table(artifacts: list[dict[str, Any]]) -> Table:
    table = new_table()
    table.add_column("path", style="cyan", overflow="fold")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("sha256", no_wrap=True, style="dim")
    for a in artifacts:
        table.add_row(cell(a["path"]), fmt_size(a["size"]), a["sha256"][:16])
    return table


def datasets_table(datasets: list[dict[str, Any]]) -> Group:
    """One row per dataset, then each one's schema as a line of text (it can be long)."""
    table = new_table()
    table.add_column("name", style="cyan", overflow="fold")
    table.add_column("role", no_wrap=True)
    table.add_column("rows", justify="right")
    table.add_column("columns", justify="right")
    table.add_column("fingerprint", no_wrap=True, style="dim")
    table.add_column("snapshot", no_wrap=True)
    schemas = []
    for d in datasets:
        snapshot = fmt_size(d.get("snapshot_size")) if d.get("snapshot_sha256") else "none"
        table.add_row(
            cell(d["name"]),
            f"{d['direction']}, {d['context']}",
            f"{d['num_rows']:,}",
            str(d["num_columns"]),
            d["digest"][:16],
            snapshot,
        )
        columns = ", ".join(f"{c['name']} {c['type']}" for c in d.get("schema") or [])
        line = Text(f"{d['name']} ({d['context']}): ", style="cyan")
        line.append(columns or "no columns", style="default")
        schemas.append(Padding(line, (0, 0, 0, 2)))
    return Group(table, *schemas)


def fields_table(title: str, values: dict[str, Any], labels: dict[str, str]) -> Table:
    """Known fields first with readable labels, then any other recorded field as it is."""
    table = Table.grid(padding=(0, 2))
    table.title = title
    table.title_justify = "left"
    table.title_style = "bold"
    table.add_column(style="cyan", no_wrap=True)
    table.add_column(overflow="fold")
    keys = [k for k in labels if k in values]
    keys += sorted(k for k in values if k not in labels)
    if not keys:
        table.add_row("", Text("nothing recorded", style="dim"))
    for key in keys:
        value = values[key]
        if isinstance(value, list):
            value = " ".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        table.add_row(labels.get(key, key), Text(MISSING if value is None else str(value)))
    return table
