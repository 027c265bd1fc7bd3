"""Plotly figures of live performance (plain dicts), shared by the performance page and the
offline HTML report: the measured value per window and version with its interval, and the
estimate beside it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from passerelle.web.charts import CONFIG, FONT, PALETTE


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def performance_figure(report: dict[str, Any], metric: str) -> dict[str, Any] | None:
    """One colour per version: the measured value with its interval as error bars (solid),
    the estimate over every prediction of the window (dashed)."""
    by_version: dict[int, list[dict[str, Any]]] = {}
    for w in report["windows"]:
        by_version.setdefault(w["version"], []).append(w)
    data = []
    for i, (version, rows) in enumerate(sorted(by_version.items())):
        color = PALETTE[i % len(PALETTE)]
        measured = [r for r in rows if r["metrics"].get(metric) is not None]
        if measured:
            values = [r["metrics"][metric] for r in measured]
            intervals = [
                r["intervals"].get(metric) or [v, v] for r, v in zip(measured, values, strict=True)
            ]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"v{version} measured",
                    "x": [_iso(r["window_start"]) for r in measured],
                    "y": values,
                    "error_y": {
                        "type": "data",
                        "symmetric": False,
                        "array": [hi - v for (_, hi), v in zip(intervals, values, strict=True)],
                        "arrayminus": [
                            v - lo for (lo, _), v in zip(intervals, values, strict=True)
                        ],
                        "color": color,
                    },
                    "line": {"color": color, "width": 2},
                    "marker": {"color": color},
                    "customdata": [r["labelled"] for r in measured],
                    "hovertemplate": f"%{{x}} UTC<br>v{version} {metric}: %{{y:.4g}}"
                    " (%{customdata} labelled)<extra></extra>",
                }
            )
        estimated = [
            r
            for r in rows
            if ((r.get("estimate") or {}).get("metrics") or {}).get(metric) is not None
        ]
        if estimated:
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"v{version} estimated",
                    "x": [_iso(r["window_start"]) for r in estimated],
                    "y": [r["estimate"]["metrics"][metric] for r in estimated],
                    "line": {"color": color, "width": 2, "dash": "dash"},
                    "marker": {"color": color, "symbol": "circle-open"},
                    "hovertemplate": f"%{{x}} UTC<br>v{version} estimated {metric}: "
                    "%{y:.4g}<extra></extra>",
                }
            )
    if not data:
        return None
    axis = {"gridcolor": "#e8ebef", "zeroline": False, "linecolor": "#c9ced6"}
    layout = {
        "title": {"text": f"{metric} per window", "font": {"size": 13}, "x": 0, "xanchor": "left"},
        "font": FONT,
        "margin": {"l": 50, "r": 16, "t": 36, "b": 40},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "height": 320,
        "xaxis": {
            **axis,
            "type": "date",
            "title": {"text": "UTC"},
            "range": [_iso(report["since"]), _iso(report["until"])],
        },
        "yaxis": axis,
        "showlegend": True,
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
    }
    return {"data": data, "layout": layout, "config": CONFIG}
