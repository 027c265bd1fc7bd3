"""``passerelle deploy``, ``rollback``, ``deployments ...`` and ``predict`` (batch scoring).

Thin fronts over the serving REST API. ``predict`` scores a Parquet file chunk by chunk through
the online prediction route, so batch predictions are routed, validated and logged exactly like
online ones.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from passerelle.cli.output import (
    MISSING,
    cell,
    console,
    err_console,
    fail,
    fmt_time,
    new_table,
    print_json,
)
from passerelle.cli.state import client
from passerelle.sdk.serving import ARROW_STREAM, arrow_ipc, endpoint_path, predict_path

if TYPE_CHECKING:
    from passerelle.sdk.client import Client

deployments_app = typer.Typer(
    help="Endpoints: what each serves, and the history of its changes.",
    no_args_is_help=True,
    add_completion=False,
)

EXIT_USAGE = 2
ADDED_COLUMNS = ("prediction", "prediction_id")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help="Endpoint name.", show_default=False)
]
ReasonOption = Annotated[
    str,
    typer.Option("--reason", "-r", metavar="TEXT", help="Why, kept in the deployment history."),
]
ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project",
        "-p",
        metavar="NAME",
        help="The endpoint's project (for a new endpoint: where it is created; default: default).",
        show_default=False,
    ),
]


# -- formatting --------------------------------------------------------------------------------
def traffic(state: dict[str, Any]) -> str:
    """``v3``, ``v3 90% + canary v4 10%``, ``... + shadow v5``, ``(paused)``: who gets what."""
    primary = state.get("primary_version")
    if primary is None:
        return "nothing deployed"
    canary, weight = state.get("canary_version"), state.get("canary_weight") or 0.0
    if canary is not None:
        text = f"v{primary} {100 - weight:g}% + canary v{canary} {weight:g}%"
    else:
        text = f"v{primary}"
    shadows = state.get("shadow_versions") or []
    if shadows:
        text += " + shadow " + ", ".join(f"v{s}" for s in shadows)
    if state.get("paused"):
        text += " (paused)"
    return text


def change_text(detail: dict[str, Any]) -> str:
    before, after = detail.get("before") or {}, detail.get("after") or {}
    if before == after:
        return "traffic unchanged"
    return f"{traffic(before)} → {traffic(after)}"


def _print_change(c: Client, name: str, endpoint: dict[str, Any], as_json: bool) -> None:
    """The change just made, read back from the history (its before and after)."""
    if as_json:
        print_json(endpoint)
        return
    history = c.request("GET", endpoint_path(name, "history"))
    event = next((e for e in history if e["revision"] == endpoint["revision"]), None)
    line = Text.assemble((event["action"] if event else "changed", "bold"), " ", (name, "bold"))
    line.append(": " + (change_text(event["detail"]) if event else traffic(endpoint)))
    console().print(line, soft_wrap=True)


def _change(
    ctx: typer.Context, name: str, action: str, as_json: bool, **body: Any
) -> dict[str, Any]:
    c = client(ctx)
    payload = {"action": action, **{k: v for k, v in body.items() if v is not None}}
    endpoint = c.request("POST", endpoint_path(name, "deployments"), json=payload)
    _print_change(c, name, endpoint, as_json)
    return endpoint


# -- deploy and rollback -----------------------------------------------------------------------
def deploy(
    ctx: typer.Context,
    name: NameArgument,
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            "-v",
            metavar="N",
            min=1,
            help="Make version N the primary (creates the endpoint on its first deploy).",
            show_default=False,
        ),
    ] = None,
    canary: Annotated[
        int | None,
        typer.Option(
            "--canary",
            metavar="N",
            min=1,
            help="Send --weight percent of the traffic to version N (10 without --weight).",
            show_default=False,
        ),
    ] = None,
    weight: Annotated[
        float | None,
        typer.Option(
            "--weight",
            "-w",
            metavar="PERCENT",
            min=0,
            max=100,
            help="The canary's share of traffic, in percent; alone, changes the current "
            "canary's share.",
            show_default=False,
        ),
    ] = None,
    shadow: Annotated[
        int | None,
        typer.Option(
            "--shadow",
            metavar="N",
            min=1,
            help="Version N sees a copy of every request; its answers are logged, not returned.",
            show_default=False,
        ),
    ] = None,
    promote: Annotated[
        bool, typer.Option("--promote", help="Make the canary the primary.")
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            metavar="MODEL",
            help="Registered model served (default: the model named like the endpoint).",
            show_default=False,
        ),
    ] = None,
    reason: ReasonOption = "",
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change what endpoint NAME serves: a version, a canary, a shadow, a promotion.

    Every change takes effect at once on every server process and is recorded with who, when
    and why (see `passerelle deployments history NAME`).
    """
    chosen = [
        flag
        for flag, given in (
            ("--version", version is not None),
            ("--canary", canary is not None),
            ("--shadow", shadow is not None),
            ("--promote", promote),
        )
        if given
    ]
    if len(chosen) > 1:
        raise fail(f"choose one of {', '.join(chosen)}", code=EXIT_USAGE)
    if weight is not None and (version is not None or shadow is not None or promote):
        raise fail(f"--weight goes with --canary (or alone), not with {chosen[0]}", code=2)
    common = {"model": model, "project": project, "reason": reason}
    if version is not None:
        _change(ctx, name, "deploy", as_json, version=version, **common)
    elif canary is not None:
        _change(ctx, name, "canary", as_json, version=canary, weight=weight, **common)
    elif shadow is not None:
        _change(ctx, name, "shadow", as_json, version=shadow, **common)
    elif promote:
        _change(ctx, name, "promote", as_json, **common)
    elif weight is not None:
        _change(ctx, name, "weight", as_json, weight=weight, **common)
    else:
        raise fail(
            "say what to deploy: --version, --canary, --shadow, --promote or --weight",
            code=EXIT_USAGE,
        )


def rollback(
    ctx: typer.Context,
    name: NameArgument,
    reason: ReasonOption = "",
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Roll endpoint NAME back at once: drop its canary, or else restore the previous primary."""
    _change(ctx, name, "rollback", as_json, reason=reason, project=project)


# -- deployments list and history --------------------------------------------------------------
@deployments_app.command("list")
def list_endpoints(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List endpoints with their primary, canary (and its share of traffic) and shadows."""
    endpoints = client(ctx).request("GET", "/api/v1/endpoints")
    if as_json:
        print_json(endpoints)
        return
    table = new_table(caption=f"{len(endpoints)} endpoint(s)")
    table.add_column("Endpoint")
    table.add_column("Model")
    table.add_column("Primary", justify="right")
    table.add_column("Canary", justify="right")
    table.add_column("Shadows")
    table.add_column("State")
    table.add_column("Rev.", justify="right")
    table.add_column("Updated")
    for e in endpoints:
        canary = (
            f"v{e['canary_version']} {e['canary_weight']:g}%"
            if e["canary_version"] is not None
            else MISSING
        )
        table.add_row(
            cell(e["name"], "bold"),
            cell(e["model"]),
            f"v{e['primary_version']}" if e["primary_version"] is not None else MISSING,
            canary,
            ", ".join(f"v{s}" for s in e["shadow_versions"]) or MISSING,
            Text("paused", style="yellow") if e["paused"] else Text("serving", style="green"),
            str(e["revision"]),
            fmt_time(e["updated_at"], seconds=False),
        )
    console().print(table)


@deployments_app.command("history")
def history(
    ctx: typer.Context,
    name: NameArgument,
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", min=1, help="Most recent changes shown.")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """Every change of endpoint NAME, newest first: when, who, what, before → after, why."""
    events = client(ctx).request("GET", endpoint_path(name, "history"))
    if as_json:
        print_json(events[:limit])
        return
    table = new_table(
        caption=f"{len(events)} change(s)" + (f", {limit} shown" if len(events) > limit else "")
    )
    table.add_column("When")
    table.add_column("Who")
    table.add_column("Action", style="bold")
    table.add_column("Before → after", overflow="fold")
    table.add_column("Reason", overflow="fold")
    for e in events[:limit]:
        table.add_row(
            fmt_time(e["at"]),
            cell(e["actor"] or MISSING),
            cell(e["action"]),
            cell(change_text(e["detail"] or {})),
            cell(e["reason"] or MISSING),
        )
    console().print(table)


# -- batch scoring -----------------------------------------------------------------------------
def predict(
    ctx: typer.Context,
    name: NameArgument,
    input_path: Annotated[
        Path,
        typer.Argument(metavar="INPUT", help="Parquet file to score.", show_default=False),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="Parquet file written: the input columns plus prediction and prediction_id.",
            show_default=False,
        ),
    ],
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", "-b", metavar="ROWS", min=1, help="Rows sent per request."),
    ] = 1000,
    passthrough: Annotated[
        list[str] | None,
        typer.Option(
            "--passthrough",
            "-k",
            metavar="COLUMN",
            help="A column copied to the output but not sent to the model (an id, a key); "
            "repeat for several.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary instead of text.")
    ] = False,
) -> None:
    """Score a Parquet file on endpoint NAME, in chunks, with a progress bar.

    Each chunk goes through the same route as online predictions (routing, signature checks,
    the inference log), so every row gets a prediction id that feedback can refer to, and all
    of them one batch id in the log. The output is written only when every chunk was scored.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from passerelle.core.errors import PayloadTooLarge

    if not input_path.is_file():
        raise fail(f"{input_path}: no such file", "input")
    try:
        source = pq.ParquetFile(input_path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise fail(f"{input_path} is not a readable Parquet file: {exc}", "input") from None
    names = source.schema_arrow.names
    clash = [c for c in ADDED_COLUMNS if c in names]
    if clash:
        raise fail(f"{input_path} already has a column named {clash[0]!r}", "input")
    kept = list(dict.fromkeys(passthrough or []))
    unknown = [c for c in kept if c not in names]
    if unknown:
        raise fail(f"{input_path} has no column {unknown[0]!r}", "passthrough", code=EXIT_USAGE)
    sent = [c for c in names if c not in kept]
    if not sent:
        raise fail("every column is passed through: nothing left to send", "passthrough", 2)
    if output.resolve() == input_path.resolve():
        raise fail("the output must not overwrite the input", "output", code=EXIT_USAGE)
    import uuid

    c = client(ctx)
    url = predict_path(name)
    batch_id = uuid.uuid4().hex  # logged with every row scored, so the batch can be found
    total = source.metadata.num_rows
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".part")
    versions: Counter[int] = Counter()
    writer: pq.ParquetWriter | None = None
    chunks = 0
    try:
        with _progress(not as_json) as bar:
            task = bar.add_task(f"scoring on {name}", total=total)
            for batch in source.iter_batches(batch_size=batch_size):
                try:
                    answer = c.request(
                        "POST",
                        url,
                        content=arrow_ipc(batch.select(sent)),
                        headers={"Content-Type": ARROW_STREAM, "X-Batch-Id": batch_id},
                    )
                except PayloadTooLarge as exc:
                    raise fail(f"{exc.message}: lower --batch-size") from None
                scored = _scored(batch, answer, chunks)
                if writer is None:
                    writer = pq.ParquetWriter(partial, scored.schema)
                writer.write_table(_conform(scored, writer.schema, chunks))
                versions[answer["model_version"]] += batch.num_rows
                chunks += 1
                bar.advance(task, batch.num_rows)
        if writer is None:  # no rows: an empty file with the output's columns
            empty = _scored(source.schema_arrow.empty_table(), None, 0)
            writer = pq.ParquetWriter(partial, empty.schema)
        writer.close()
        writer = None
        partial.replace(output)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    rows = sum(versions.values())
    if as_json:
        print_json(
            {
                "endpoint": name,
                "batch_id": batch_id,
                "rows": rows,
                "chunks": chunks,
                "output": str(output),
                "versions": {str(v): n for v, n in sorted(versions.items())},
            }
        )
        return
    split = " · ".join(f"v{v} {n:,} rows" for v, n in sorted(versions.items()))
    console().print(
        f"scored {rows:,} rows in {chunks} request(s) on {name} → {output}", markup=False
    )
    if split:
        console().print(f"answered by {split}", markup=False)
    console().print(f"batch id {batch_id} (the batch_id column of the inference log)", markup=False)


def _progress(visible: bool) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console(),
        disable=not visible,
    )


def _scored(batch: Any, answer: dict[str, Any] | None, index: int) -> Any:
    """The chunk with its ``prediction`` and ``prediction_id`` columns added."""
    import pyarrow as pa

    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    if answer is None:
        predictions, ids = pa.nulls(0), pa.array([], pa.string())
    else:
        if len(answer["predictions"]) != table.num_rows:
            raise fail(
                f"chunk {index + 1}: {table.num_rows} rows sent, "
                f"{len(answer['predictions'])} predictions received"
            )
        try:
            predictions = pa.array(answer["predictions"])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise fail(f"chunk {index + 1}: predictions of mixed types: {exc}") from None
        ids = pa.array(answer["prediction_ids"], pa.string())
    return table.append_column("prediction", predictions).append_column("prediction_id", ids)


def _conform(table: Any, schema: Any, index: int) -> Any:
    """Later chunks must match the first chunk's columns (an int prediction can widen)."""
    import pyarrow as pa

    if table.schema.equals(schema):
        return table
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise fail(
            f"chunk {index + 1}: its predictions do not have the type of the first chunk's "
            f"({schema.field('prediction').type}): {exc}"
        ) from None
