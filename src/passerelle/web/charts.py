"""Plotly figure specifications (plain dicts), embedded in pages as JSON and drawn by plotly.js.

Figures are built on the server so their shape is tested in Python; the browser only draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MAX_POINTS = 5000  # per series: more points than pixels only slows the browser down

PALETTE = [
    "#3b6ea5",
    "#c2703d",
    "#4e8a5e",
    "#a4495a",
    "#7a68a6",
    "#8a7a4a",
    "#3f8f96",
    "#8c5c8f",
    "#5e6b7a",
    "#b08a3e",
]
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12}
CONFIG = {"displaylogo": False, "responsive": True}


def downsample(points: Sequence[tuple[int, float]], limit: int = MAX_POINTS) -> list[Any]:
    """Every n-th point, always keeping the last one (the value the tables show)."""
    if len(points) <= limit:
        return list(points)
    stride = math.ceil(len(points) / limit)
    kept = list(points[::stride])
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 13}, "x": 0, "xanchor": "left"},
        "font": FONT,
        "margin": {"l": 50, "r": 16, "t": 36, "b": 40},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "colorway": PALETTE,
        "height": 280,
    }
    layout.update(extra)
    return layout


def line_figure(
    title: str, series: Sequence[tuple[str, Sequence[tuple[int, float]]]]
) -> dict[str, Any]:
    """Lines of value by step, one per (name, points) series; one point shows as a marker."""
    data = []
    for name, points in series:
        kept = downsample(points)
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if len(kept) < 30 else "lines",
                "name": name,
                "x": [p[0] for p in kept],
                "y": [p[1] for p in kept],
            }
        )
    axis = {"gridcolor": "#e8ebef", "zeroline": False, "linecolor": "#c9ced6"}
    layout = _layout(
        title,
        xaxis={**axis, "title": {"text": "step"}},
        yaxis=axis,
        showlegend=len(series) > 1,
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
    )
    return {"data": data, "layout": layout, "config": CONFIG}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def parcoords_figure(
    run_labels: Sequence[str], columns: Sequence[tuple[str, Sequence[Any]]]
) -> dict[str, Any] | None:
    """Parallel coordinates across runs: one axis per column, one line per run.

    A column of numbers becomes a numeric axis; a column of text becomes an axis of its
    distinct values. Columns with a missing or non-finite value for some run are left out,
    since a line cannot skip an axis. ``None`` when fewer than two axes remain.
    """
    dimensions = []
    for label, values in columns:
        if any(v is None for v in values):
            continue
        numbers = [_as_number(v) for v in values]
        if all(_finite(n) for n in numbers):
            dimensions.append({"label": label, "values": numbers})
        elif not any(isinstance(n, float) for n in numbers):  # text only: NaN is no category
            levels = sorted(set(values))
            if len(levels) > 30:
                continue
            dimensions.append(
                {
                    "label": label,
                    "values": [levels.index(v) for v in values],
                    "tickvals": list(range(len(levels))),
                    "ticktext": levels,
                    "range": [0, max(len(levels) - 1, 1)],
                }
            )
    if len(dimensions) < 2:
        return None
    trace = {
        "type": "parcoords",
        "dimensions": dimensions,
        "line": {
            "color": list(range(len(run_labels))),
            "colorscale": [[0, "#3b6ea5"], [0.5, "#4e8a5e"], [1, "#c2703d"]],
            "showscale": False,
        },
        "labelfont": {"size": 12},
    }
    layout = _layout("", margin={"l": 60, "r": 60, "t": 60, "b": 30}, height=360)
    return {"data": [trace], "layout": layout, "config": CONFIG}


def _as_number(value: Any) -> Any:
    """Params are stored as text: '0.1' is a number for a chart, 'l2' is not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value
