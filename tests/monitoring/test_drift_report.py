"""The offline HTML report: self-contained, and written whole or not at all."""

from __future__ import annotations

import pytest

from passerelle.core.errors import InvalidInput
from passerelle.monitoring.drift import compare
from passerelle.monitoring.report import render, write_atomically
from tests.monitoring.drift_data import reference_and_current


def _answer() -> dict:
    ref, cur = reference_and_current(2000, seed=3, drift=True)
    body = compare(ref, cur, multivariate=False).to_dict()
    reference = {"source": {"kind": "upload"}, "rows": 2000}
    window = {"start": 0, "end": 1, "rows": 2000, "columns": {}}
    return {**body, "endpoint": "churn</script>", "since": 0, "until": 3_600_000,
            "reference": reference, "prediction": None, "windows": [window]}  # fmt: skip


def test_report_is_one_file_with_plotly_inside_and_escapes_names() -> None:
    html = render(_answer(), generated_at=0)
    assert "<script src" not in html and "<link" not in html  # nothing fetched
    assert "Plotly.newPlot" in html and "spend" in html and "Drifted:" in html
    assert "churn</script>" not in html and "churn&lt;/script&gt;" in html


HOUR = 3_600_000


def _performance() -> dict:
    def window(start: int, version: int, accuracy: float | None, estimated: float) -> dict:
        return {
            "window_start": start, "window_end": start + HOUR, "version": version,
            "predictions": 120, "labelled": 80 if accuracy is not None else 0,
            "pending": 40 if accuracy is not None else 120,
            "metrics": {"accuracy": accuracy, "f1_macro": accuracy},
            "intervals": {"accuracy": [0.7, 0.9]} if accuracy is not None else {},
            "estimate": {"metrics": {"accuracy": estimated}, "predictions": 120},
        }  # fmt: skip

    return {
        "endpoint": "churn", "task": "classification", "window_ms": HOUR, "since": 0,
        "until": 2 * HOUR, "metrics": ["accuracy", "f1_macro"],
        "confidence_interval": {"level": 0.95}, "estimate_method": "confidence-based (CBPE)",
        "windows": [window(0, 1, 0.8125, 0.79), window(HOUR, 2, None, 0.6631)],
    }  # fmt: skip


def _alerts() -> dict:
    rule = {"id": 7, "name": "churn accuracy below 0.75", "metric": "accuracy", "op": "below",
            "threshold": 0.75, "window_ms": 86_400_000, "state": "firing", "last_value": 0.61,
            "last_samples": 412}  # fmt: skip
    incident = {"id": 3, "rule_id": 7, "opened_at": HOUR, "resolved_at": None,
                "opened_value": 0.6042, "last_value": 0.61, "notified_at": HOUR,
                "notify_error": None}  # fmt: skip
    return {"rules": [rule], "incidents": [incident]}


def _figures(html: str) -> dict:
    import json

    raw = html.split('<script type="application/json" id="figures">', 1)[1].split("</script>")[0]
    return json.loads(raw)


def test_report_holds_performance_per_version_and_the_alerts() -> None:
    html = render(_answer(), generated_at=0, performance=_performance(), alerts=_alerts())
    charts = _figures(html)["performance"]
    assert [c["layout"]["title"]["text"] for c in charts] == [
        "accuracy per window", "f1_macro per window"
    ]  # fmt: skip
    traces = {t["name"]: t for t in charts[0]["data"]}
    assert set(traces) == {"v1 measured", "v1 estimated", "v2 estimated"}  # v2: no label yet
    assert traces["v1 measured"]["y"] == [0.8125]
    assert traces["v1 measured"]["error_y"]["arrayminus"] == [0.8125 - 0.7]
    assert traces["v2 estimated"]["line"]["dash"] == "dash"
    table = html.split('id="performance-table"', 1)[1].split("</table>")[0]
    assert "0.8125" in table and "[0.7, 0.9]" in table and "0.6631" in table
    assert 'id="performance-charts"' in html and "CBPE" in html
    rules = html.split('id="alert-rules"', 1)[1].split("</table>")[0]
    assert "churn accuracy below 0.75" in rules and "accuracy below 0.75" in rules
    assert "1d" in rules and 'class="drifted">firing' in rules
    incidents = html.split('id="alert-incidents"', 1)[1].split("</table>")[0]
    assert "0.6042" in incidents and "open" in incidents and "delivered" in incidents
    assert "<script src" not in html  # still one file

    failed = render(_answer(), generated_at=0, performance={"error": "no labels"}, alerts=None)
    assert "Performance could not be computed: no labels" in failed
    assert 'id="alerts"' not in failed and _figures(failed)["performance"] == []


def test_a_failed_write_leaves_the_older_report_untouched(tmp_path) -> None:
    target = tmp_path / "report.html"
    target.write_text("the report of yesterday")
    with pytest.raises(UnicodeEncodeError):
        write_atomically(target, "<html>" + "x" * 100_000 + "\ud800")  # fails mid-write
    assert target.read_text() == "the report of yesterday"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no partial file left
    with pytest.raises(InvalidInput) as err:
        write_atomically(tmp_path / "missing" / "report.html", "<html>")
    assert err.value.field == "output"
