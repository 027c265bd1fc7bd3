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
