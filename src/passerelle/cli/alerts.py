"""``passerelle alerts ...``: rules on an endpoint's figures, and their incidents.

Thin fronts over the alerts REST API; the server's scheduler evaluates the rules.
"""

from __future__ import annotations

from typing import Annotated

import typer

from passerelle.cli.output import MISSING, cell, console, fmt_time, new_table, print_json
from passerelle.cli.state import client

alerts_app = typer.Typer(
    help="Alert rules on endpoint figures (performance, error rate, latency...) and incidents.",
    no_args_is_help=True,
    add_completion=False,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
STATE_STYLES = {"firing": "bold red", "ok": "green", "unknown": "yellow"}


@alerts_app.command("add")
def add(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(metavar="ENDPOINT", help="Endpoint name.")],
    metric: Annotated[
        str,
        typer.Option(
            "--metric",
            "-m",
            metavar="NAME",
            help="accuracy, f1, error_rate, latency_p95, drift.share, drift.<column>...",
        ),
    ],
    below: Annotated[
        float | None,
        typer.Option("--below", help="Fire when the figure is below this.", show_default=False),
    ] = None,
    above: Annotated[
        float | None,
        typer.Option("--above", help="Fire when the figure is above this.", show_default=False),
    ] = None,
    window: Annotated[
        str, typer.Option("--window", "-w", metavar="DURATION", help="Trailing window.")
    ] = "1h",
    min_samples: Annotated[
        int, typer.Option("--min-samples", metavar="N", help="Fewer samples decide nothing.")
    ] = 30,
    version: Annotated[
        int | None,
        typer.Option("--version", metavar="N", help="Only this model version.", show_default=False),
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            metavar="URL",
            help="Receives a JSON message per incident.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="A name for the rule.", show_default=False)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a rule on ENDPOINT: one incident (one webhook message) per break, not per check."""
    from passerelle.sdk.monitoring import add_alert

    rule = add_alert(
        endpoint,
        metric,
        below=below,
        above=above,
        window=window,
        min_samples=min_samples,
        version=version,
        webhook=webhook,
        name=name,
        client=client(ctx),
    )
    if as_json:
        print_json(rule)
        return
    console().print(f"alert rule {rule['id']} added: {rule['name']}", markup=False)


@alerts_app.command("list")
def list_rules(
    ctx: typer.Context,
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", "-e", help="Only this endpoint's rules.", show_default=False),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Rules with their state (ok, firing, unknown: too few samples yet) and last value."""
    from passerelle.monitoring.data import window_text
    from passerelle.sdk.monitoring import list_alerts

    rules = list_alerts(endpoint, client=client(ctx))
    if as_json:
        print_json(rules)
        return
    table = new_table(caption=f"{len(rules)} rule(s)")
    for header in ("Id", "Endpoint", "Rule", "Window", "State", "Last value", "Checked"):
        table.add_column(header)
    for r in rules:
        table.add_row(
            str(r["id"]),
            cell(r["endpoint"]),
            cell(f"{r['metric']} {r['op']} {r['threshold']:g}"),
            window_text(r["window_ms"]),
            cell(r["state"], STATE_STYLES.get(r["state"], "")),
            cell(r["last_value"]),
            fmt_time(r["last_evaluated_at"]),
        )
    console().print(table)


@alerts_app.command("remove")
def remove(
    ctx: typer.Context,
    rule_id: Annotated[int, typer.Argument(metavar="ID", help="Rule id (see alerts list).")],
) -> None:
    """Remove a rule and its incidents."""
    from passerelle.sdk.monitoring import remove_alert

    remove_alert(rule_id, client=client(ctx))
    console().print(f"alert rule {rule_id} removed")


@alerts_app.command("incidents")
def incidents(
    ctx: typer.Context,
    rule_id: Annotated[
        int | None,
        typer.Argument(metavar="[ID]", help="Only this rule's incidents.", show_default=False),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Incidents, newest first: when each opened and resolved, and whether it was delivered."""
    path = f"/api/v1/alerts/{rule_id}/incidents" if rule_id else "/api/v1/alerts/incidents"
    found = client(ctx).request("GET", path)
    if as_json:
        print_json(found)
        return
    table = new_table(caption=f"{len(found)} incident(s)")
    for header in ("Id", "Rule", "Opened", "Resolved", "Value", "Webhook"):
        table.add_column(header)
    for i in found:
        delivery = "sent" if i["notified_at"] else (i["notify_error"] or MISSING)
        table.add_row(
            str(i["id"]),
            str(i["rule_id"]),
            fmt_time(i["opened_at"]),
            fmt_time(i["resolved_at"]) if i["resolved_at"] else "open",
            cell(i["opened_value"]),
            cell(delivery),
        )
    console().print(table)
