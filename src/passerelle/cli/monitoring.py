"""``passerelle monitor ...``: drift, live performance and reports of a deployed endpoint.

Thin fronts over the monitoring REST API, embedded or against a server like every command.
"""

from __future__ import annotations

from typing import Annotated

import typer

from passerelle.cli.output import MISSING, cell, console, fmt_time, new_table, print_json
from passerelle.cli.state import client

monitor_app = typer.Typer(
    help="Monitoring of deployed endpoints: drift, performance, reports.",
    no_args_is_help=True,
    add_completion=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help="Endpoint name.", show_default=False)
]
SHOWN = {
    "classification": ("accuracy", "f1_macro", "roc_auc"),
    "regression": ("mae", "rmse", "r2"),
}


def _with_interval(value: float | None, interval: list[float] | None) -> str:
    if value is None:
        return MISSING
    text = f"{value:.3f}"
    return f"{text} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else text


@monitor_app.command("performance")
def performance(
    ctx: typer.Context,
    name: NameArgument,
    window: Annotated[
        str, typer.Option("--window", "-w", metavar="DURATION", help="Window: 30m, 6h, 1d, 1w.")
    ] = "1d",
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DURATION",
            help="How far back: 7d, 24h... (default: the last 30 windows).",
            show_default=False,
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            metavar="TASK",
            help="classification or regression (default: guessed from the data).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Live performance of endpoint NAME per window and version, from feedback; for a
    classifier that logs probabilities, the estimate over every prediction beside it."""
    from passerelle.sdk.monitoring import performance_report

    report = performance_report(name, window, since, task=task, client=client(ctx))
    if as_json:
        print_json(report)
        return
    shown = SHOWN[report["task"]]
    table = new_table(
        caption=f"{report['task']}; 95% intervals: Wilson for accuracy, bootstrap otherwise"
    )
    table.add_column("Window start")
    table.add_column("Version", justify="right")
    table.add_column("Predictions", justify="right")
    table.add_column("Labelled", justify="right")
    for metric in shown:
        table.add_column(metric)
    if report["task"] == "classification":
        table.add_column("Estimated accuracy", justify="right")
    for w in report["windows"]:
        cells = [
            fmt_time(w["window_start"], seconds=False),
            f"v{w['version']}",
            str(w["predictions"]),
            str(w["labelled"]),
            *(_with_interval(w["metrics"].get(m), w["intervals"].get(m)) for m in shown),
        ]
        if report["task"] == "classification":
            est = (w.get("estimate") or {}).get("metrics") or {}
            cells.append(f"{est['accuracy']:.3f}" if "accuracy" in est else MISSING)
        table.add_row(*(cell(c) for c in cells))
    console().print(table)
