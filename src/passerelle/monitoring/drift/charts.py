"""Plotly figures of a drift report (plain dicts), shared by the endpoint's drift page and the
offline HTML report: drift per feature over time, reference versus current distributions."""

from __future__ import annotations

from typing import Any

from passerelle.web.charts import CONFIG, FONT, PALETTE

AXIS = {"gridcolor": "#e8ebef", "zeroline": False, "linecolor": "#c9ced6"}


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 13}, "x": 0, "xanchor": "left"},
        "font": FONT,
        "margin": {"l": 50, "r": 16, "t": 36, "b": 60},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "colorway": PALETTE,
        "height": 300,
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
    }
    layout.update(extra)
    return layout


def over_time(report: dict[str, Any], test_family: tuple[str, ...], title: str) -> dict[str, Any]:
    """One line per feature: its drift statistic in each window (windows with no traffic are
    gaps), for the features whose test is in ``test_family``."""
    names = [c["column"] for c in report["columns"] if c["test"] in test_family] + (
        [report["prediction"]["column"]]
        if report.get("prediction") and report["prediction"]["test"] in test_family
        else []
    )
    data = []
    for name in names:
        xs, ys = [], []
        for w in report["windows"]:
            value = w["columns"].get(name, {})
            if value.get("test") in test_family:
                xs.append(w["start"])
                ys.append(value.get("statistic"))
        data.append({"type": "scatter", "mode": "lines+markers", "name": name, "x": xs, "y": ys})
    layout = _layout(title, xaxis={**AXIS, "type": "date"}, yaxis=AXIS)
    return {"data": data, "layout": layout, "config": CONFIG}


def drift_over_time(report: dict[str, Any]) -> list[dict[str, Any]]:
    """A chart per family of statistic, so that distances and p-values never share an axis."""
    charts = []
    families = (
        (("wasserstein",), "Wasserstein distance (reference deviations) per window"),
        (("jensenshannon",), "Jensen-Shannon distance per window"),
        (("psi",), "Population stability index per window"),
        (("ks",), "Kolmogorov-Smirnov statistic per window"),
        (("chi2",), "Chi-squared statistic per window"),
    )
    for family, title in families:
        figure = over_time(report, family, title)
        if any(trace["x"] for trace in figure["data"]):
            charts.append(figure)
    return charts


def distribution(column: dict[str, Any]) -> dict[str, Any] | None:
    dist = column.get("distribution")
    if not dist or not dist["labels"]:
        return None
    data = [
        {"type": "bar", "name": "reference", "x": dist["labels"], "y": dist["reference"]},
        {"type": "bar", "name": "current", "x": dist["labels"], "y": dist["current"]},
    ]
    flagged = " — drifted" if column["drifted"] else ""
    layout = _layout(
        f"{column['column']}{flagged}",
        barmode="group",
        xaxis={**AXIS, "type": "category"},
        yaxis={**AXIS, "tickformat": ".0%", "title": {"text": "share of rows"}},
        height=260,
    )
    return {"data": data, "layout": layout, "config": CONFIG}
