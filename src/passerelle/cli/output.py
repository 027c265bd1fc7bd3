"""Shared rendering for the CLI: Rich consoles, tables, JSON, and the formatting of values.

Consoles are built per call rather than at import, so they pick up the terminal width and
``NO_COLOR`` of the process that runs the command (a test runner changes both).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {
    "RUNNING": "blue",
    "FINISHED": "green",
    "FAILED": "red",
    "KILLED": "yellow",
}
MISSING = "-"


def console() -> Console:
    """The standard-output console (no automatic highlighting: values keep their own style)."""
    return Console(highlight=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, never wrapped or coloured."""
    typer.echo(json.dumps(_finite(data), indent=2, ensure_ascii=False, default=str))


def _finite(data: Any) -> Any:
    """JSON has no NaN or infinity: write them the way the REST API accepts them."""
    if isinstance(data, float) and not math.isfinite(data):
        if math.isnan(data):
            return "NaN"
        return "Infinity" if data > 0 else "-Infinity"
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


def fail(message: str, field: str | None = None, code: int = 1) -> typer.Exit:
    """Print ``error: message`` in red on stderr; return the exit to raise."""
    text = f"error: {message}"
    if field:
        text += f" (field: {field})"
    err_console().print(text, style="bold red", markup=False, soft_wrap=True)
    return typer.Exit(code)


def new_table(title: str | None = None, caption: str | None = None) -> Table:
    return Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        caption_justify="left",
        header_style="bold",
    )


def key_value_table(rows: dict[str, Any], key_header: str, value_header: str) -> Table:
    """Two columns, keys sorted: params, metrics and tags of a run."""
    table = new_table()
    table.add_column(key_header, style="cyan", overflow="fold")
    table.add_column(value_header, overflow="fold")
    for key in sorted(rows):
        table.add_row(cell(key), cell(rows[key]))
    return table


def cell(value: Any, style: str = "") -> Text:
    """A table cell holding user data: printed literally, never read as Rich markup."""
    return Text(fmt_value(value), style=style)


# -- values -------------------------------------------------------------------------------------
def short_id(run_id: str | None) -> str:
    """The first 8 characters: enough to tell runs apart, and accepted back by ``runs show``."""
    return run_id[:8] if run_id else MISSING


def fmt_value(value: Any) -> str:
    """Numbers with six significant digits (metrics), text as it is (params and tags)."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.6g}"
    return str(value)


def fmt_time(ms: int | None, seconds: bool = True) -> str:
    """A timestamp in milliseconds as local time, to the second (or the minute, in lists)."""
    if ms is None:
        return MISSING
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return datetime.fromtimestamp(ms / 1000).strftime(pattern)


def fmt_duration(start_ms: int | None, end_ms: int | None) -> str:
    """``850ms``, ``4.2s``, ``3m05s``, ``2h07m``; a running run has no duration yet."""
    if start_ms is None or end_ms is None:
        return MISSING
    ms = max(0, end_ms - start_ms)
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def fmt_size(size: int | None) -> str:
    if size is None:
        return MISSING
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def status_text(status: str) -> str:
    """Rich markup for a run status, coloured by outcome."""
    style = STATUS_STYLES.get(status, "white")
    return f"[{style}]{status}[/{style}]"
