"""``passerelle models ...``, ``passerelle reproduce`` and ``passerelle build``.

Thin fronts: ``models`` reads and moves aliases through the registry's REST API;
``reproduce`` and ``build`` call ``passerelle.registry.reproduce`` and
``passerelle.registry.build``, which do the work and return a report this module only renders.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from passerelle.cli.output import (
    MISSING,
    cell,
    console,
    err_console,
    fail,
    fmt_time,
    fmt_value,
    new_table,
    print_json,
    short_id,
)
from passerelle.cli.state import client, get_state

if TYPE_CHECKING:
    from passerelle.registry.reproduce import ReproduceReport

models_app = typer.Typer(
    help="Registered models: versions, aliases and signatures.",
    no_args_is_help=True,
    add_completion=False,
)

MAX_METRIC_COLUMNS = 6
EXIT_DIFFERS = 1
EXIT_USAGE = 2

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
ReportJsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project", "-p", metavar="NAME", help="The model's project.", show_default=False
    ),
]


def _params(project: str | None) -> dict[str, str] | None:
    return {"project": project} if project else None


# -- models ------------------------------------------------------------------------------------
@models_app.command("list")
def list_models(
    ctx: typer.Context, project: ProjectOption = None, as_json: JsonOption = False
) -> None:
    """List registered models, most recently updated first, with their aliases."""
    models = client(ctx).request("GET", "/api/v1/models", params=_params(project))
    if as_json:
        print_json(models)
        return
    table = new_table(caption=f"{len(models)} model(s)")
    for name, justify in (("Name", "left"), ("Project", "left"), ("Latest", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("Aliases")
    table.add_column("Updated")
    table.add_column("Description", overflow="fold")
    for m in models:
        table.add_row(
            cell(m["name"], "bold"),
            cell(m["project"]),
            f"v{m['latest_version']}" if m["latest_version"] else MISSING,
            cell(_aliases(m["aliases"])),
            fmt_time(m["updated_at"], seconds=False),
            cell(m["description"] or MISSING),
        )
    console().print(table)


def _aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{a}→v{v}" for a, v in sorted(aliases.items())) or MISSING


@models_app.command("show")
def show_model(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name.", show_default=False)],
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            "-v",
            metavar="N",
            min=1,
            help="Whose signature to show (default: the latest version).",
            show_default=False,
        ),
    ] = None,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a model: its versions, alias history and a version's signature.

    Each version shows its status, source run, who registered it and when, its metrics and
    aliases.
    """
    c = client(ctx)
    params = _params(project)
    model = c.request("GET", f"/api/v1/models/{name}", params=params)
    versions = c.request("GET", f"/api/v1/models/{name}/versions", params=params)
    history = c.request("GET", f"/api/v1/models/{name}/alias-history", params=params)
    chosen = next((v for v in versions if v["version"] == version), None) if version else None
    if version and chosen is None:
        from passerelle.core.errors import NotFound

        raise NotFound(f"model '{name}' has no version {version}", field="version")
    chosen = chosen or (versions[0] if versions else None)
    if as_json:
        print_json({**model, "versions": versions, "alias_history": history})
        return
    out = console()
    title = Text.assemble((model["name"], "bold"), f"  project {model['project']}")
    out.print(title)
    if model["description"]:
        out.print(cell(model["description"]))
    if model["tags"]:
        out.print(cell(", ".join(f"{k}={v}" for k, v in sorted(model["tags"].items()))))
    out.print(_versions_table(versions))
    if history:
        out.print(Text("Alias history", style="bold underline"))
        out.print(_history_table(history))
    if chosen is not None:
        out.print(Text(f"Signature of v{chosen['version']}", style="bold underline"))
        _print_signature(out, chosen.get("signature"))


def _versions_table(versions: list[dict[str, Any]]) -> Any:
    keys = sorted({k for v in versions for k in v["metrics"]})[:MAX_METRIC_COLUMNS]
    table = new_table(caption=f"{len(versions)} version(s)")
    table.add_column("Version", justify="right")
    table.add_column("Status")
    table.add_column("Aliases")
    table.add_column("Source run")
    table.add_column("Created by")
    table.add_column("Created")
    for key in keys:
        table.add_column(key, justify="right", style="cyan")
    for v in versions:
        style = "green" if v["status"] == "READY" else "red"
        table.add_row(
            f"v{v['version']}",
            Text(v["status"], style=style),
            cell(", ".join(v["aliases"]) or MISSING),
            short_id(v["source_run_id"]),
            cell(v["created_by"] or MISSING),
            fmt_time(v["created_at"]),
            *[fmt_value(v["metrics"].get(k)) for k in keys],
        )
    return table


def _history_table(history: list[dict[str, Any]]) -> Any:
    table = new_table()
    for column in ("When", "Alias", "From", "To", "By", "Reason"):
        table.add_column(column, overflow="fold")
    for h in history[:20]:
        table.add_row(
            fmt_time(h["at"]),
            cell(h["alias"], "bold"),
            f"v{h['from_version']}" if h["from_version"] else MISSING,
            f"v{h['to_version']}" if h["to_version"] else "removed",
            cell(h["actor"] or MISSING),
            cell(h["reason"] or MISSING),
        )
    return table


def _print_signature(out: Console, signature: dict[str, Any] | None) -> None:
    if not signature:
        out.print("  no signature: prediction input is not validated")
        return
    table = new_table()
    for column in ("Column", "Type", "Nullable", "Levels"):
        table.add_column(column, overflow="fold")
    for col in signature.get("inputs", []):
        levels = col.get("levels")
        table.add_row(
            cell(col["name"], "bold"),
            cell(col["type"]),
            "yes" if col.get("nullable") else "no",
            cell(", ".join(levels) if levels else MISSING),
        )
    out.print(table)
    outputs = signature.get("outputs")
    if outputs:
        out.print(cell(f"  output: {outputs.get('dtype')} shape {outputs.get('shape')}"))


@models_app.command("alias")
def set_alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name.", show_default=False)],
    alias: Annotated[
        str, typer.Argument(metavar="ALIAS", help="e.g. champion.", show_default=False)
    ],
    version: Annotated[
        int, typer.Argument(metavar="VERSION", min=1, help="Version number.", show_default=False)
    ],
    reason: Annotated[
        str,
        typer.Option("--reason", "-r", metavar="TEXT", help="Why, kept in the alias history."),
    ] = "",
    project: ProjectOption = None,
) -> None:
    """Point ALIAS at VERSION of model NAME; the move is recorded with who, when and why."""
    c = client(ctx)
    params = _params(project)
    before = c.request("GET", f"/api/v1/models/{name}", params=params)["aliases"].get(alias)
    c.request(
        "PUT",
        f"/api/v1/models/{name}/aliases/{alias}",
        params=params,
        json={"version": version, "reason": reason},
    )
    moved = f" (was v{before})" if before and before != version else ""
    same = " (already there)" if before == version else ""
    console().print(
        Text.assemble(f"{name}@", (alias, "bold"), f" → v{version}{moved}{same}"), soft_wrap=True
    )


# -- reproduce ---------------------------------------------------------------------------------
MARKS = {
    "ok": ("✓", "green"),
    "warning": ("!", "yellow"),
    "differs": ("✗", "red"),
    "skipped": ("-", "dim"),
}
SECTION_NAMES = {
    "ok": "matched",
    "warning": "matched, with warnings",
    "differs": "differed",
    "skipped": "not checked",
}


def reproduce(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_URI_OR_RUN_ID",
            help="models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID or a run id (prefix).",
            show_default=False,
        ),
    ],
    rerun: Annotated[
        bool,
        typer.Option(
            "--rerun",
            help="Rerun the recorded command at the recorded commit, on the recorded data, in an "
            "environment rebuilt from the recorded uv.lock, and compare the metrics.",
        ),
    ] = False,
    tolerance: Annotated[
        float,
        typer.Option(
            "--tolerance", metavar="X", help="Largest absolute metric difference that matches."
        ),
    ] = 1e-6,
    no_env: Annotated[
        bool,
        typer.Option("--no-env", help="With --rerun: use this interpreter, do not rebuild one."),
    ] = False,
    repo: Annotated[
        Path | None,
        typer.Option(
            "--repo",
            metavar="PATH",
            help="Git checkout holding the commit (default: this one, then the recorded one).",
            show_default=False,
            exists=True,
            file_okay=False,
        ),
    ] = None,
    ignore_metric: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore-metric",
            metavar="KEY",
            help="A metric not to compare (timings...); repeat for several.",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", metavar="SECONDS", help="Stop a rerun that takes longer.", min=1),
    ] = None,
    as_json: ReportJsonOption = False,
) -> None:
    """Tell whether a model version (or a run) reproduces, and what changed when it does not.

    Without --rerun: is the commit reachable, do the stored data snapshots still hash to their
    fingerprints, does this environment match the recorded one. With --rerun: rerun it and
    compare the metrics. Exit code 0: it reproduces; 1: something differs; 2: wrong usage.
    """
    from passerelle.registry.reproduce import UsageError
    from passerelle.registry.reproduce import reproduce as run_reproduce

    if tolerance < 0:
        raise fail("--tolerance must be >= 0", "tolerance", code=EXIT_USAGE)
    progress = err_console()
    state = get_state(ctx)
    try:
        report = run_reproduce(
            client(ctx),
            target,
            rerun=rerun,
            tolerance=tolerance,
            rebuild_env=not no_env,
            repo=repo,
            ignore_metrics=tuple(ignore_metric or ()),
            api_key=state.api_key,
            timeout=timeout,
            progress=lambda msg: progress.print(f"… {msg}", style="dim", markup=False),
        )
    except UsageError as exc:
        raise fail(exc.message, exc.field, code=EXIT_USAGE) from None
    if as_json:
        print_json(report.to_dict())
    else:
        render_report(console(), report)
    raise typer.Exit(0 if report.reproduces else EXIT_DIFFERS)


def render_report(out: Console, report: ReproduceReport) -> None:
    """One block per section: its mark and verdict, then one line per check."""
    from passerelle.registry.reproduce_report import SECTIONS

    t = report.target
    head = Text.assemble(("reproduce ", "bold"), (t.label, "bold cyan"))
    if t.run_id and t.model:
        head.append(f"  (run {short_id(t.run_id)})")
    out.print(head)
    for section in SECTIONS:
        status = report.section_status(section)
        mark, style = MARKS[status]
        out.print(
            Text.assemble((f"{mark} {section}", f"bold {style}"), f"  {SECTION_NAMES[status]}")
        )
        for check in report.section(section):
            m, s = MARKS[check.status]
            out.print(Text.assemble("    ", (m, s), " ", check.detail), soft_wrap=True)
    if report.new_run_id:
        out.print(f"rerun logged as run {report.new_run_id}", markup=False)
    if report.rerun_output and not report.reproduces:
        out.print(Text("last lines of the rerun's output:", style="bold"))
        for line in report.rerun_output.splitlines():
            out.print(Text("    " + line, style="dim"), soft_wrap=True)
    if report.reproduces:
        out.print(Text("✓ reproduces", style="bold green"))
    else:
        out.print(Text("✗ does not reproduce", style="bold red"))


# -- build -------------------------------------------------------------------------------------
def build(
    ctx: typer.Context,
    model_uri: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_URI",
            help="models:/NAME/VERSION or models:/NAME@ALIAS (pinned to its version).",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", metavar="DIR", help="New or empty folder to write the context to."
        ),
    ],
    base_image: Annotated[
        str | None,
        typer.Option(
            "--base-image",
            metavar="IMAGE",
            help="Base image (default python:X.Y-slim for the model's Python; pin a digest "
            "with python:3.11-slim@sha256:...).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int, typer.Option("--port", metavar="PORT", min=1, max=65535, help="Port served.")
    ] = 8080,
    passerelle_wheel: Annotated[
        Path | None,
        typer.Option(
            "--passerelle-wheel",
            metavar="WHEEL",
            help="Install passerelle from this wheel (default: built from the source checkout "
            "it runs from, else pinned from the package index).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write a container build context that serves a model version.

    The context holds the verified package, a lock of pinned requirements and a Dockerfile
    (non-root user, health check, passerelle server as the entry point). Build it with any
    engine: docker build -t NAME DIR.
    """
    from passerelle.registry.build import build_context

    if not model_uri.startswith("models:/"):
        raise fail(
            f"{model_uri!r} is not a registry URI (models:/NAME/VERSION)", "model_uri", EXIT_USAGE
        )
    result = build_context(
        client(ctx),
        model_uri,
        output,
        base_image=base_image,
        port=port,
        passerelle_wheel=passerelle_wheel,
    )
    if as_json:
        print_json(result.to_dict())
        return
    out = console()
    out.print(
        Text.assemble("wrote the build context of ", (result.model_uri, "bold"), f" to {output}")
    )
    table = Table.grid(padding=(0, 2))
    table.add_column(style="cyan")
    table.add_column(overflow="fold")
    table.add_row("base image", cell(result.base_image))
    table.add_row("package", cell(f"model/ (manifest sha256 {result.manifest_sha256[:12]}…)"))
    table.add_row("requirements", cell(f"requirements.lock: {len(result.requirements)} pinned"))
    table.add_row("passerelle", cell(result.passerelle))
    table.add_row("serves", cell(f"passerelle server on port {result.port}, /healthz"))
    out.print(table)
    for note in result.notes:
        out.print(Text(f"note: {note}", style="yellow"))
    name = result.model_uri.removeprefix("models:/").replace("/", ":")
    out.print(f"next: docker build -t {name} {output}", markup=False)
