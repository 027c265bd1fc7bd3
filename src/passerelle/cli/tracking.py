"""``passerelle experiments ...`` and ``passerelle runs ...``: tracking, read from the REST API."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from passerelle.cli import compare as compare_view
from passerelle.cli import show as show_view
from passerelle.cli.output import (
    cell,
    console,
    fmt_duration,
    fmt_time,
    fmt_value,
    new_table,
    print_json,
    short_id,
    status_text,
)
from passerelle.cli.state import client

if TYPE_CHECKING:
    from passerelle.sdk.client import Client

experiments_app = typer.Typer(
    help="Experiments: named groups of runs.", no_args_is_help=True, add_completion=False
)
runs_app = typer.Typer(
    help="Runs: list, show and compare logged runs.", no_args_is_help=True, add_completion=False
)

MAX_KEY_COLUMNS = 8
WIDE = 120  # narrower terminals drop the start column to leave room for metrics
_RUN_PREFIX = re.compile(r"^[0-9a-fA-F]{4,31}$")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
ProjectOption = Annotated[
    str | None,
    typer.Option("--project", "-p", metavar="NAME", help="Only this project.", show_default=False),
]


# -- experiments -------------------------------------------------------------------------------
@experiments_app.command("list")
def list_experiments(
    ctx: typer.Context, project: ProjectOption = None, as_json: JsonOption = False
) -> None:
    """List the experiments you can see, most recent activity first."""
    experiments = client(ctx).list_experiments(project)
    if as_json:
        print_json(experiments)
        return
    table = new_table(caption=f"{len(experiments)} experiment(s)")
    for name, justify in (("ID", "right"), ("Name", "left"), ("Project", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("Runs", justify="right")
    table.add_column("Last run")
    table.add_column("Created")
    for e in experiments:
        table.add_row(
            str(e["id"]),
            cell(e["name"], "bold"),
            cell(e["project"]),
            str(e["run_count"]),
            fmt_time(e["last_run_at"]),
            fmt_time(e["created_at"]),
        )
    console().print(table)


# -- runs --------------------------------------------------------------------------------------
def fetch_run(c: Client, run_id: str) -> dict[str, Any]:
    """A run by its full id, or by the short prefix that ``runs list`` prints.

    A prefix is looked up with the search filter ``run_id LIKE 'prefix%'``; it must match exactly
    one run, so a short id never silently picks the wrong run.
    """
    from passerelle.core.errors import InvalidInput, NotFound

    run_id = run_id.strip()
    if not _RUN_PREFIX.match(run_id):
        return c.get_run(run_id)
    prefix = run_id.lower()
    page = c.request(
        "POST",
        "/api/v1/runs/search",
        json={"filter": f"attributes.run_id LIKE '{prefix}%'", "max_results": 2},
    )
    matches = page["runs"]
    if not matches:
        raise NotFound(f"run '{run_id}' not found", field="run_id")
    if len(matches) > 1:
        raise InvalidInput(
            f"run id prefix '{run_id}' matches several runs: give more characters",
            field="run_id",
        )
    return c.get_run(matches[0]["id"])


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[
        str, typer.Argument(metavar="EXPERIMENT", help="Experiment name.", show_default=False)
    ],
    filter: Annotated[
        str | None,
        typer.Option(
            "--filter",
            "-f",
            metavar="FILTER",
            help="Filter, e.g. \"metrics.f1 > 0.8 and params.penalty = 'l2'\".",
            show_default=False,
        ),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option(
            "--order-by",
            "-o",
            metavar="ORDER",
            help='Sort key, e.g. "metrics.f1 DESC"; repeat for several. Default: newest first.',
            show_default=False,
        ),
    ] = None,
    max_results: Annotated[
        int,
        typer.Option(
            "--max-results", "-n", metavar="N", min=1, max=50_000, help="Runs to show at most."
        ),
    ] = 100,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the runs of an experiment, with their metrics and params as columns."""
    body = {
        "experiments": [experiment],
        "filter": filter,
        "order_by": order_by or [],
        "max_results": max_results,
        "project": project,
    }
    page = client(ctx).request("POST", "/api/v1/runs/search", json=body)
    runs: list[dict[str, Any]] = page["runs"]
    more = bool(page.get("next_page_token"))
    if as_json:
        print_json(runs)
        return
    out = console()
    metric_keys = sorted({k for r in runs for k in r["metrics"]})
    param_keys = sorted({k for r in runs for k in r["params"]})
    shown_metrics, shown_params = fit_key_columns(runs, metric_keys, param_keys, out.width)

    notes = [f"{len(runs)} run(s)" + ("; more match, raise --max-results" if more else "")]
    if len(metric_keys) > len(shown_metrics) or len(param_keys) > len(shown_params):
        notes.append(
            f"showing {len(shown_metrics)} of {len(metric_keys)} metrics and "
            f"{len(shown_params)} of {len(param_keys)} params; `runs show` or --json has them all"
        )
    table = new_table(title=f"Runs of '{experiment}'", caption="\n".join(notes))
    table.add_column("Run", no_wrap=True, style="dim")
    table.add_column("Name", style="bold", overflow="fold", min_width=_name_width(runs))
    table.add_column("Status", no_wrap=True)
    with_start = out.width >= WIDE
    if with_start:
        table.add_column("Start", no_wrap=True)
    table.add_column("Duration", justify="right", no_wrap=True)
    for key in shown_metrics:
        table.add_column(_key_header("metrics", key, "magenta"), justify="right", no_wrap=True)
    for key in shown_params:
        table.add_column(_key_header("params", key, "cyan"), overflow="ellipsis", max_width=30)
    for r in runs:
        name = ("↳ " if r["parent_run_id"] else "") + r["name"]
        table.add_row(
            short_id(r["id"]),
            Text(name),
            status_text(r["status"]),
            *([fmt_time(r["start_time"], seconds=False)] if with_start else []),
            fmt_duration(r["start_time"], r["end_time"]),
            *[cell(r["metrics"].get(k)) for k in shown_metrics],
            *[cell(r["params"].get(k)) for k in shown_params],
        )
    out.print(table)


def _key_header(kind: str, key: str, color: str) -> Text:
    """``metrics.`` over ``f1``: narrow, and spelled the way --filter and --order-by want it."""
    return Text.assemble((f"{kind}.", "dim"), "\n", (key, f"bold {color}"))


def _name_width(runs: list[dict[str, Any]]) -> int:
    return min(24, max([len(r["name"]) + 2 for r in runs] + [4]))


def fit_key_columns(
    runs: list[dict[str, Any]], metric_keys: list[str], param_keys: list[str], width: int
) -> tuple[list[str], list[str]]:
    """The metric and param columns to show: at most 8 of each, and only as many as fit.

    Metrics and params are taken in turn so that a narrow terminal shows some of each rather
    than squeezing every column to one character.
    """
    used = 8 + _name_width(runs) + 8 + 8 + 4 * 3 + (16 + 3 if width >= WIDE else 0)
    candidates: list[tuple[str, str]] = []
    for i in range(MAX_KEY_COLUMNS):
        if i < len(metric_keys):
            candidates.append(("metrics", metric_keys[i]))
        if i < len(param_keys):
            candidates.append(("params", param_keys[i]))
    shown: dict[str, list[str]] = {"metrics": [], "params": []}
    for kind, key in candidates:
        cells = [fmt_value(r[kind].get(key)) for r in runs]
        natural = max([len(kind) + 1, len(key), *[len(c) for c in cells]])
        needed = min(natural, 30) + 3
        if used + needed > width:
            continue
        used += needed
        shown[kind].append(key)
    return shown["metrics"], shown["params"]


@runs_app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: Annotated[
        str,
        typer.Argument(
            metavar="RUN_ID", help="Run id, or the short id `runs list` prints.", show_default=False
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Show one run: params, metrics, tags, artifacts, datasets and lineage."""
    c = client(ctx)
    run = fetch_run(c, run_id)
    artifacts = c.list_artifacts(run["id"])
    children = c.child_runs(run["id"])
    if as_json:
        print_json({**run, "artifacts": artifacts, "children": children})
        return
    show_view.render(console(), run, artifacts, children)


@runs_app.command("compare")
def compare_runs(
    ctx: typer.Context,
    run_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="RUN_ID", help="Two runs or more (full or short ids).", show_default=False
        ),
    ],
    minimize: Annotated[
        list[str] | None,
        typer.Option(
            "--minimize",
            metavar="METRIC",
            help="A metric where lower is better (repeatable). Default: guessed from the name "
            "(loss, error, rmse... are minimized, the rest maximized).",
            show_default=False,
        ),
    ] = None,
    maximize: Annotated[
        list[str] | None,
        typer.Option(
            "--maximize",
            metavar="METRIC",
            help="A metric where higher is better (repeatable).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Compare runs side by side: params then metrics, differences highlighted, best marked."""
    from passerelle.core.errors import InvalidInput

    c = client(ctx)
    runs: list[dict[str, Any]] = []
    for run_id in run_ids:
        run = fetch_run(c, run_id)
        if all(r["id"] != run["id"] for r in runs):
            runs.append(run)
    if len(runs) < 2:
        raise InvalidInput("compare needs at least two different runs", field="run_ids")
    comparison = compare_view.compare(runs, minimize or [], maximize or [])
    if as_json:
        print_json(comparison)
        return
    console().print(compare_view.table(runs, comparison))
