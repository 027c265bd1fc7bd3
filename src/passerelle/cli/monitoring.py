"""``passerelle monitor ...``: drift, live performance and reports of a deployed endpoint.

Thin fronts over the monitoring REST API, embedded or against a server like every command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from passerelle.cli.output import cell, console, fail, fmt_time, new_table, print_json
from passerelle.cli.state import client

monitor_app = typer.Typer(
    help="Monitoring of deployed endpoints: drift, performance, reports.",
    no_args_is_help=True,
    add_completion=False,
)

EXIT_USAGE = 2

NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help="Endpoint name.", show_default=False)
]
SinceOption = Annotated[
    str,
    typer.Option("--since", "-s", metavar="DURATION", help="Period: 15m, 24h, 7d, 2w."),
]
WindowOption = Annotated[
    str | None,
    typer.Option(
        "--window",
        "-w",
        metavar="DURATION",
        help="Length of each window (default: 1h up to a day, else 1d).",
        show_default=False,
    ),
]
OverrideOption = Annotated[
    list[str] | None,
    typer.Option(
        "--override",
        metavar="COLUMN.KEY=VALUE",
        help="Per-column setting, repeatable: age.test=psi, age.threshold=0.2, "
        "zip.kind=categorical.",
        show_default=False,
    ),
]
MultivariateOption = Annotated[
    bool,
    typer.Option("--multivariate/--no-multivariate", help="Also run the domain classifier."),
]
ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project", "-p", metavar="NAME", help="The endpoint's project.", show_default=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def parse_overrides(items: list[str] | None) -> dict[str, dict[str, Any]] | None:
    """``age.test=psi age.threshold=0.2`` as ``{"age": {"test": "psi", "threshold": 0.2}}``."""
    if not items:
        return None
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        column, dot, key = target.rpartition(".")
        if not sep or not dot or not column or not key:
            raise fail(
                f"--override {item!r}: write COLUMN.KEY=VALUE (age.test=psi)",
                field="override",
                code=EXIT_USAGE,
            )
        parsed: Any = value
        if key == "threshold":
            try:
                parsed = float(value)
            except ValueError:
                raise fail(
                    f"--override {item!r}: the threshold is a number",
                    field="override",
                    code=EXIT_USAGE,
                ) from None
        out.setdefault(column, {})[key] = parsed
    return out


def _fetch(
    ctx: typer.Context,
    name: str,
    since: str,
    window: str | None,
    overrides: list[str] | None,
    multivariate: bool,
    project: str | None,
) -> dict[str, Any]:
    from passerelle.sdk.serving import endpoint_path

    payload: dict[str, Any] = {"since": since, "multivariate": multivariate}
    if window is not None:
        payload["window"] = window
    parsed = parse_overrides(overrides)
    if parsed is not None:
        payload["overrides"] = parsed
    if project is not None:
        payload["project"] = project
    return client(ctx).request("POST", endpoint_path(name, "drift"), json=payload)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@monitor_app.command("drift")
def drift(
    ctx: typer.Context,
    name: NameArgument,
    since: SinceOption = "24h",
    window: WindowOption = None,
    override: OverrideOption = None,
    multivariate: MultivariateOption = True,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Drift of an endpoint's traffic against its reference: per feature, the test, its
    statistic, p-value or distance, and whether it drifted."""
    body = _fetch(ctx, name, since, window, override, multivariate, project)
    if as_json:
        print_json(body)
        return
    out = console()
    table = new_table(
        title=f"Drift of {body['endpoint']} from {fmt_time(body['since'])} "
        f"({body['rows']['current']} predictions, reference: {body['reference']['rows']} rows)"
    )
    for header in ("Column", "Kind", "Test", "Statistic", "p (adjusted)", "Threshold", "Drifted"):
        table.add_column(
            header, justify="right" if header in ("Statistic", "Threshold") else "left"
        )
    columns = [*body["columns"], *([body["prediction"]] if body["prediction"] else [])]
    for c in columns:
        flagged = [s["test"] for s in [c["drift"], *c["checks"]] if s["drifted"]]
        label = c["column"] + (" (prediction)" if c["role"] == "prediction" else "")
        table.add_row(
            cell(label),
            cell(c["kind"]),
            cell(c["test"]),
            cell(_fmt(c["statistic"])),
            cell(_fmt(c["adjusted_p_value"])),
            cell(_fmt(c["threshold"])),
            cell("yes: " + ", ".join(flagged) if flagged else "no", "bold red" if flagged else ""),
        )
    out.print(table)
    mv = body.get("multivariate")
    if mv and mv.get("statistic") is not None:
        verdict = "drifted" if mv["drifted"] else "no drift"
        auc, threshold = _fmt(mv["statistic"]), _fmt(mv["threshold"])
        out.print(f"Domain classifier AUC {auc} (threshold {threshold}): {verdict}", markup=False)
    drifted = body["drifted_columns"]
    out.print(f"Drifted: {', '.join(drifted)}" if drifted else "No feature drifted.", markup=False)


@monitor_app.command("report")
def report(
    ctx: typer.Context,
    name: NameArgument,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="FILE", help="The HTML file to write."),
    ],
    since: SinceOption = "30d",
    window: WindowOption = None,
    override: OverrideOption = None,
    multivariate: MultivariateOption = True,
    project: ProjectOption = None,
) -> None:
    """Write one self-contained HTML report (works offline): drift per feature, over time,
    and reference versus current distributions."""
    from passerelle.core.ids import now_ms
    from passerelle.monitoring.report import render, write_atomically

    body = _fetch(ctx, name, since, window, override, multivariate, project)
    write_atomically(output, render(body, generated_at=now_ms()))
    console().print(f"Report of {body['endpoint']} written to {output}", markup=False)
