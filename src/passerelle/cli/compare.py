"""``passerelle runs compare``: params then metrics, one column per run.

Which metric value is best depends on the metric: a loss goes down, an accuracy goes up. The
direction is guessed from the name and can be set with ``--minimize`` / ``--maximize``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from rich.table import Table
from rich.text import Text

from passerelle.cli.output import cell, new_table, short_id

LOWER_IS_BETTER = {
    "loss",
    "error",
    "err",
    "mse",
    "rmse",
    "mae",
    "mape",
    "smape",
    "logloss",
    "perplexity",
    "brier",
    "latency",
    "time",
    "duration",
    "seconds",
    "cost",
    "fpr",
    "fnr",
    "wer",
    "cer",
}
BEST_MARK = "★"


def goal(key: str, minimize: list[str], maximize: list[str]) -> str:
    """``min`` or ``max``: explicit choices first, then the metric's name."""
    if key in minimize:
        return "min"
    if key in maximize:
        return "max"
    tokens = [t for t in re.split(r"[^a-z0-9]+", key.lower()) if t]
    if any(t in LOWER_IS_BETTER or t.endswith(("loss", "error")) for t in tokens):
        return "min"
    return "max"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def best_runs(ids: list[str], values: list[Any], direction: str) -> list[str]:
    """Every run holding the best value (ties share it); none when all values are equal."""
    numbers = {i: n for i, v in zip(ids, values, strict=True) if (n := _number(v)) is not None}
    if len(set(numbers.values())) < 2:
        return []
    target = min(numbers.values()) if direction == "min" else max(numbers.values())
    return [i for i, n in numbers.items() if n == target]


def compare(runs: list[dict[str, Any]], minimize: list[str], maximize: list[str]) -> dict[str, Any]:
    """Rows of params and metrics with, for each, whether values differ and which run is best."""
    ids = [r["id"] for r in runs]

    def rows(kind: str) -> list[dict[str, Any]]:
        out = []
        for key in sorted({k for r in runs for k in r[kind]}):
            values = [r[kind].get(key) for r in runs]
            row: dict[str, Any] = {
                "key": key,
                "values": dict(zip(ids, values, strict=True)),
                "differs": len({repr(v) for v in values}) > 1,
            }
            if kind == "metrics":
                row["goal"] = goal(key, minimize, maximize)
                row["best"] = best_runs(ids, values, row["goal"])
            out.append(row)
        return out

    return {
        "runs": [
            {"id": r["id"], "name": r["name"], "experiment": r["experiment"], "status": r["status"]}
            for r in runs
        ],
        "params": rows("params"),
        "metrics": rows("metrics"),
    }


def table(runs: list[dict[str, Any]], comparison: dict[str, Any]) -> Table:
    """The Rich table: differing rows in yellow, the best value of each metric in green."""
    t = new_table(
        caption=f"yellow: values differ   {BEST_MARK} best value "
        "(lower is better for losses and errors; --minimize/--maximize to choose)"
    )
    t.add_column("", no_wrap=True)
    for r in runs:
        t.add_column(Text(f"{r['name']}\n{short_id(r['id'])}"), justify="right", overflow="fold")
    for kind in ("params", "metrics"):
        rows = comparison[kind]
        t.add_row(Text(kind, style="bold underline"), *["" for _ in runs])
        if not rows:
            t.add_row(Text("  none", style="dim"), *["" for _ in runs])
        for row in rows:
            style = "bold yellow" if row["differs"] else ""
            cells = []
            for r in runs:
                value = row["values"][r["id"]]
                if kind == "metrics" and r["id"] in row["best"]:
                    text = cell(value, "bold green")
                    text.append(f" {BEST_MARK}")
                else:
                    text = cell(value, style)
                cells.append(text)
            t.add_row(Text(f"  {row['key']}", style=style), *cells)
        if kind == "params":
            t.add_section()
    return t
