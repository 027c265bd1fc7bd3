"""The offline HTML report of an endpoint: one self-contained file, plotly.js inlined.

It holds what the endpoint's pages show: drift per feature over time and reference versus
current distributions (the drift page), performance over time per version with the estimate
beside the measured value (the performance page), and the alert rules with their incidents
(the alerts page), drawn with the same figure-building code as those pages.

It opens with no network (an air-gapped laptop, an attachment in a ticket) and is written
atomically: a temporary file beside the target, renamed over it once complete, so a failure
leaves no partial report and never damages an older one.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import orjson

from passerelle.core.errors import InvalidInput
from passerelle.monitoring.charts import performance_figure
from passerelle.monitoring.data import window_text
from passerelle.monitoring.drift import charts

TEMPLATE = Path(__file__).with_name("report_template.html")


def _plotly_js() -> str:
    from passerelle.web import plotly_js_path

    path = plotly_js_path()
    if path is None:
        raise InvalidInput("the plotly package is missing: it provides the report's charts")
    # A script element ends at the first "</script": keep the inlined code from closing it.
    return path.read_text(encoding="utf-8").replace("</script", "<\\/script")


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _json(value: Any) -> str:
    # Inside a script element: escape "<" so no value can end it early.
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode().replace("<", "\\u003c")


def render(
    drift: dict[str, Any],
    *,
    generated_at: int,
    performance: dict[str, Any] | None = None,
    alerts: dict[str, Any] | None = None,
) -> str:
    """The report's HTML from the API's answers: ``drift`` (``GET .../drift``),
    ``performance`` (``GET .../performance``, or ``{"error": message}`` when it could not be
    computed) and ``alerts`` (``{"rules": [...], "incidents": [...]}`` of the endpoint)."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters.update(time=_time, number=_number, tojs=_json, window=window_text)
    columns = [*drift["columns"], *([drift["prediction"]] if drift.get("prediction") else [])]
    measured = performance if performance and "windows" in performance else None
    figures = {
        "over_time": charts.drift_over_time(drift),
        "distributions": [f for f in (charts.distribution(c) for c in columns) if f],
        "performance": [
            f
            for f in (performance_figure(measured, m) for m in measured["metrics"])
            if f is not None
        ]
        if measured
        else [],
    }
    rules = (alerts or {}).get("rules", [])
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return template.render(
        d=drift,
        columns=columns,
        figures=figures,
        performance=performance,
        perf_rows=sorted(measured["windows"], key=lambda w: (-w["window_start"], w["version"]))
        if measured
        else [],
        headline=measured["metrics"][0] if measured else None,
        alerts=alerts,
        rules=rules,
        rule_names={r["id"]: r["name"] for r in rules},
        incidents=(alerts or {}).get("incidents", []),
        plotly_js=_plotly_js(),
        generated=_time(generated_at),
    )


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder: name the report's file", field="output")
    if not path.parent.is_dir():
        raise InvalidInput(f"folder {path.parent} does not exist", field="output")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
