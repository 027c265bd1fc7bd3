"""``passerelle monitor ...``: drift, live performance and reports of a deployed endpoint.

Thin fronts over the monitoring REST API, embedded or against a server like every command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from passerelle.cli.output import MISSING, cell, console, fail, fmt_time, new_table, print_json
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
VersionOption = Annotated[
    int | None,
    typer.Option(
        "--version",
        metavar="N",
        min=1,
        help="Only the predictions this model version answered.",
        show_default=False,
    ),
]


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
    version: int | None = None,
) -> dict[str, Any]:
    from passerelle.sdk.serving import endpoint_path

    payload: dict[str, Any] = {"since": since, "multivariate": multivariate}
    if version is not None:
        payload["version"] = version
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
    version: VersionOption = None,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Drift of an endpoint's traffic against its reference: per feature, the test, its
    statistic, p-value or distance, and whether it drifted."""
    body = _fetch(ctx, name, since, window, override, multivariate, project, version)
    if as_json:
        print_json(body)
        return
    out = console()
    table = new_table(
        title=f"Drift of {body['endpoint']}"
        + (f" version {body['version']}" if body.get("version") else "")
        + f" from {fmt_time(body['since'])} "
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


def _performance_for_report(
    ctx: typer.Context, name: str, since: str, window_ms: int, project: str | None
) -> dict[str, Any]:
    """Performance in the drift section's windows; what prevents it (outputs that are not
    labels, say) is said in the report rather than failing it."""
    from passerelle.core.errors import InvalidInput
    from passerelle.sdk.serving import endpoint_path

    params = {"window": str(window_ms), "since": since}
    if project is not None:
        params["project"] = project
    try:
        return client(ctx).request("GET", endpoint_path(name, "performance"), params=params)
    except InvalidInput as exc:
        return {"error": str(exc)}


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
    version: VersionOption = None,
    project: ProjectOption = None,
) -> None:
    """Write one self-contained HTML report (works offline): drift per feature, over time,
    and reference versus current distributions (of one version's answers with --version);
    performance over time per version with the estimate beside it; the alert rules and
    their incidents."""
    from passerelle.core.ids import now_ms
    from passerelle.monitoring.report import render, write_atomically

    body = _fetch(ctx, name, since, window, override, multivariate, project, version)
    performance = _performance_for_report(ctx, name, since, body["window_ms"], project)
    rules = client(ctx).request("GET", "/api/v1/alerts", params={"endpoint": name})
    ids = {r["id"] for r in rules}
    incidents = [
        i for i in client(ctx).request("GET", "/api/v1/alerts/incidents") if i["rule_id"] in ids
    ]
    page = render(
        body,
        generated_at=now_ms(),
        performance=performance,
        alerts={"rules": rules, "incidents": incidents},
    )
    write_atomically(output, page)
    console().print(f"Report of {body['endpoint']} written to {output}", markup=False)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
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


@monitor_app.command("canary")
def canary(
    ctx: typer.Context,
    name: NameArgument,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply", help="Let the endpoint's canary policy act: roll back, promote or alert."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compare the canary of endpoint NAME with its primary since it was deployed."""
    from passerelle.sdk.monitoring import canary_analysis

    answer = canary_analysis(name, apply=apply, client=client(ctx))
    if as_json:
        print_json(answer)
        return
    table = new_table(
        title=f"canary v{answer['canary_version']} vs primary v{answer['primary_version']}",
        caption=f"verdict: {answer['verdict']}"
        + (f"; action: {answer['action']}" if "action" in answer else "")
        + f"; minimum sample {answer['min_samples']} per route, alpha {answer['alpha']}",
    )
    for header in ("Figure", "Primary", "Canary", "Samples", "Test", "p-value", "Worse"):
        table.add_column(header)
    for c in answer["comparisons"]:
        table.add_row(
            cell(c["figure"]),
            cell(c["primary"]),
            cell(c["canary"]),
            cell(f"{c['primary_n']}/{c['canary_n']}" + ("" if c["enough"] else " (too few)")),
            cell(c["test"]),
            cell(c["p_value"]),
            cell("yes" if c["worse"] else "no", "bold red" if c["worse"] else ""),
        )
    console().print(table)


@monitor_app.command("canary-policy")
def canary_policy(
    ctx: typer.Context,
    name: NameArgument,
    when_worse: Annotated[
        str, typer.Option("--when-worse", metavar="ACTION", help="rollback or alert.")
    ] = "rollback",
    when_no_worse: Annotated[
        str,
        typer.Option("--when-no-worse", metavar="ACTION", help="promote, alert or wait."),
    ] = "wait",
    min_samples: Annotated[
        int, typer.Option("--min-samples", metavar="N", help="Per route, before any decision.")
    ] = 200,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level.")] = 0.05,
    max_latency_increase: Annotated[
        float,
        typer.Option("--max-latency-increase", help="Tolerated relative p95 latency increase."),
    ] = 0.2,
    webhook: Annotated[
        str | None,
        typer.Option("--webhook", metavar="URL", help="Where alerts go.", show_default=False),
    ] = None,
    show: Annotated[bool, typer.Option("--show", help="Print the policy, change nothing.")] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the policy.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Set (or --show, --remove) what happens to the canaries of endpoint NAME."""
    from passerelle.sdk.monitoring import set_canary_policy
    from passerelle.sdk.serving import endpoint_path

    c = client(ctx)
    if remove:
        c.request("DELETE", endpoint_path(name, "canary", "policy"))
        console().print(f"canary policy of {name} removed")
        return
    if show:
        policy = c.request("GET", endpoint_path(name, "canary", "policy"))
    else:
        policy = set_canary_policy(
            name,
            when_worse=when_worse,
            when_no_worse=when_no_worse,
            min_samples=min_samples,
            alpha=alpha,
            max_latency_increase=max_latency_increase,
            webhook=webhook,
            client=c,
        )
    if as_json:
        print_json(policy)
        return
    console().print(
        f"{name}: when worse → {policy['when_worse']}, when no worse → "
        f"{policy['when_no_worse']}, after {policy['min_samples']} samples per route "
        f"(alpha {policy['alpha']}, p95 latency +{policy['max_latency_increase']:.0%} tolerated)"
        + (
            f"; last verdict {policy['last_verdict']} for v{policy['last_version']}"
            if policy.get("last_verdict")
            else ""
        ),
        markup=False,
    )
