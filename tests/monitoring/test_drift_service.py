"""Drift of a deployed endpoint over its inference log: API, SDK, CLI, windows and bad input."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import passerelle as psl
from passerelle.cli.main import app as cli_app
from passerelle.core.auth import ANONYMOUS_ADMIN
from passerelle.core.errors import InvalidInput
from passerelle.core.ids import now_ms
from passerelle.monitoring.drift import service
from tests.conftest import LiveServer
from tests.monitoring.drift_fixtures import (
    Deployed,
    deployed,
    features,
    log_records,
    register_second_version,
)

__all__ = ["deployed"]  # the fixture, imported for pytest

HOUR = 3_600_000


def test_drift_of_live_traffic_through_api_sdk_and_cli(deployed: Deployed, tmp_path) -> None:
    ref = psl.reference("churn", version=1, client=deployed.client)
    assert ref.rows == 300 and ref.source == {"kind": "training", "model": "churn", "version": 1}
    assert ref.has_predictions and "income" in ref.columns
    deployed.predict(features(400, seed=2, income_shift=10))  # a richer clientele

    r = deployed.http.get("/api/v1/endpoints/churn/drift", params={"since": "1h"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["drifted_columns"] == ["income"]
    by_name = {c["column"]: c for c in body["columns"]}
    assert by_name["income"]["test"] == "ks" and by_name["income"]["adjusted_p_value"] < 0.05
    assert not by_name["age"]["drifted"]
    assert body["skipped"] == {"churned": "not in the inference log"}  # the training label
    assert body["prediction"]["drifted"] and body["prediction"]["role"] == "prediction"
    assert body["multivariate"]["drifted"]
    assert body["rows"]["current"] == 400
    assert sum(w["rows"] for w in body["windows"]) == 400
    assert len(body["columns"][0]["distribution"]["labels"]) > 5

    report = psl.drift(
        "churn", since="1h", window="10m", multivariate=False, client=deployed.client
    )
    assert report.drifted_columns == ["income"] and report.multivariate is None
    frame = report.to_pandas()
    assert set(frame["column"]) == {"age", "income", "output"}
    assert frame.set_index("column").loc["income", "flagged_by"].startswith("ks")
    psl.reference("churn", data=deployed.train[["income"]], client=deployed.client)
    narrow = psl.drift("churn", since="1h", multivariate=False, client=deployed.client)
    assert narrow.raw["skipped"] == {"age": "not in the reference"}
    assert [c["column"] for c in narrow.columns] == ["income"]
    psl.reference("churn", version=1, client=deployed.client)

    page = deployed.http.get("/endpoints/churn/drift", params={"since": "24h"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Drifted: income" in page.text and "(prediction)" in page.text
    assert page.text.count('class="plotly-figure"') >= 3  # over time and distributions
    assert "<script>" not in page.text  # drawn by the static script: the page CSP holds

    server = LiveServer(deployed.app).start()
    try:
        runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
        base = ["--url", server.url, "monitor"]
        out = runner.invoke(
            cli_app, [*base, "drift", "churn", "--since", "1h", "--no-multivariate"]
        )
        assert out.exit_code == 0, out.output
        assert "Drifted: income" in out.stdout and "(prediction)" in out.stdout
        target = tmp_path / "report.html"
        made = runner.invoke(
            cli_app, [*base, "report", "churn", "--since", "2h", "-o", str(target)]
        )
        assert made.exit_code == 0, made.output
        html = target.read_text()
        assert "Plotly.newPlot" in html and "income" in html and "<script src" not in html
        assert "Drifted: income" in html
    finally:
        server.stop()


def test_finished_windows_are_cached_and_never_recomputed(deployed: Deployed) -> None:
    app = deployed.app
    log, store = app.state.serving.log, app.state.store
    t0 = (np.int64(1_700_000_000_000) // HOUR * HOUR).item()
    for hour, shift in ((0, 0), (1, 15), (2, 0)):
        log.append(log_records(deployed, t0 + hour * HOUR, features(300, 10 + hour, shift)))

    def run(now: int) -> dict:
        with app.state.sessions() as session:
            return service.drift(
                session, ANONYMOUS_ADMIN, store, app.state.serving, "churn",
                since="4h", window="1h", multivariate=False, now=now,
            )  # fmt: skip

    first = run(t0 + 4 * HOUR + 120_000)
    assert [w["start"] for w in first["windows"]] == [t0 + h * HOUR for h in range(5)]
    assert [w["cached"] for w in first["windows"]] == [False] * 5
    assert [w["rows"] for w in first["windows"]] == [300, 300, 300, 0, 0]
    assert [w["columns"]["income"]["drifted"] for w in first["windows"][:3]] == [False, True, False]
    cached = [k for k in store.list_named("monitoring/") if "/w3600000/" in k]
    assert len(cached) == 4  # the window still open (hour 4) is not cached

    log.append(log_records(deployed, t0 + 4 * HOUR + 5000, features(300, 20, 0)))
    second = run(t0 + 5 * HOUR + 120_000)
    assert [w["start"] for w in second["windows"]] == [t0 + h * HOUR for h in range(1, 6)]
    assert [w["cached"] for w in second["windows"]] == [True, True, True, False, False]
    assert [w["rows"] for w in second["windows"]] == [300, 300, 0, 300, 0]
    assert second["windows"][0]["columns"] == first["windows"][1]["columns"]
    # the overall report merges the cached windows' summaries with the new one
    assert second["rows"]["current"] == 900 and "income" in second["drifted_columns"]


def test_drift_of_one_version_reads_only_what_it_answered(deployed: Deployed, tmp_path) -> None:
    """A version in shadow that answers 1 to everyone, on the same traffic as the primary: its
    prediction drift shows when it is asked for, and the whole traffic leaves shadow copies
    out."""
    app, client = deployed.app, deployed.client
    register_second_version(deployed)
    log, store = app.state.serving.log, app.state.store
    t0 = (now_ms() - 2 * HOUR) // HOUR * HOUR  # a finished hour: cached once read
    log.append(log_records(deployed, t0, features(300, 10)))
    log.append(log_records(deployed, t0 + 500, features(300, 11), version=2, says_yes=True))

    def run(version: int | None) -> dict:
        with app.state.sessions() as session:
            return service.drift(
                session, ANONYMOUS_ADMIN, store, app.state.serving, "churn",
                since="3h", window="1h", multivariate=False, version=version,
            )  # fmt: skip

    every, primary, canary = run(None), run(1), run(2)
    assert [r["rows"]["current"] for r in (every, primary, canary)] == [300, 300, 300]
    assert [r["version"] for r in (every, primary, canary)] == [None, 1, 2]
    assert not primary["prediction"]["drifted"] and canary["prediction"]["drifted"]
    assert not every["prediction"]["drifted"]  # the shadow's answers reached no caller
    assert primary["drifted_columns"] == canary["drifted_columns"] == []  # the same inputs
    scoped = {k.split("/w3600000/")[0].rsplit("/", 1)[-1] for k in store.list_named("monitoring/")
              if "/w3600000/" in k}  # fmt: skip
    assert {"v1", "v2"} <= scoped  # each version's windows cached apart from the whole's
    again = run(2)
    assert [w["cached"] for w in again["windows"]][:2] == [True, True]

    def computed(report: dict) -> list[dict]:
        return [{k: v for k, v in w.items() if k != "cached"} for w in report["windows"]]

    assert computed(again) == computed(canary)

    report = psl.drift("churn", since="3h", multivariate=False, version=2, client=client)
    assert report.raw["version"] == 2 and report.prediction["drifted"]
    r = deployed.http.get("/api/v1/endpoints/churn/drift", params={"since": "3h", "version": 1})
    assert r.status_code == 200 and r.json()["rows"]["current"] == 300
    never = deployed.http.get("/api/v1/endpoints/churn/drift", params={"version": 9})
    assert never.status_code == 404 and never.json()["error"]["field"] == "version"
    page = deployed.http.get("/endpoints/churn/drift", params={"since": "24h", "version": 2})
    assert page.status_code == 200 and "Drift of churn, version 2" in page.text
    assert "300 predictions" in page.text and "since=7d&amp;version=2" in page.text
    chips = page.text.split('class="periods"')[2].split("</span>")[0]
    assert '"chip chosen" href="?since=24h&amp;version=2">v2 (not routed)' in chips
    assert 'href="?since=24h&amp;version=1">v1 (primary)' in chips
    assert 'href="?since=24h">all traffic' in chips
    zero = deployed.http.post("/api/v1/endpoints/churn/drift", json={"version": 0})
    assert zero.status_code == 422 and zero.json()["error"]["field"] == "version"

    server = LiveServer(app).start()
    try:
        runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
        args = ["--url", server.url, "monitor", "drift", "churn", "--since", "3h"]
        out = runner.invoke(cli_app, [*args, "--version", "2", "--no-multivariate"])
        assert out.exit_code == 0, out.output
        assert "Drift of churn version 2" in out.stdout and "(300 predictions" in out.stdout
        target = tmp_path / "v2.html"
        args = ["--url", server.url, "monitor", "report", "churn", "--since", "3h"]
        made = runner.invoke(cli_app, [*args, "--version", "2", "-o", str(target)])
        assert made.exit_code == 0, made.output
        assert "What version 2 answered from" in target.read_text()
    finally:
        server.stop()


def test_bad_input_is_refused_and_writes_nothing(deployed: Deployed, tmp_path) -> None:
    http = deployed.http
    from_dataset = psl.reference("churn", dataset=deployed.dataset_id, client=deployed.client)
    assert from_dataset.source["kind"] == "dataset" and from_dataset.rows == 300
    uploaded = psl.reference("churn", data=deployed.train, client=deployed.client)
    assert uploaded.source == {"kind": "upload"} and uploaded.has_predictions
    assert deployed.http.get("/api/v1/endpoints/churn/drift/reference").json()["rows"] == 300
    deployed.predict(features(50, seed=3))
    before = deployed.monitoring_objects()

    zero = http.get("/api/v1/endpoints/churn/drift", params={"window": "0m"})
    assert zero.status_code == 422 and zero.json()["error"]["field"] == "window"
    unknown = http.post("/api/v1/endpoints/churn/drift", json={"overrides": {"nope": {}}})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "overrides.nope"
    assert "nope" in unknown.json()["error"]["message"]
    wrong = http.post(
        "/api/v1/endpoints/churn/drift", json={"overrides": {"age": {"test": "chi2"}}}
    )
    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "overrides.age.test"
    with pytest.raises(InvalidInput) as err:
        psl.reference("churn", data=deployed.train.iloc[:0], client=deployed.client)
    assert err.value.field == "reference"
    twice = pa.table([pa.array([1.0]), pa.array([2.0])], names=["age", "age"])
    with pytest.raises(InvalidInput) as err:
        psl.reference("churn", data=twice, client=deployed.client)
    assert err.value.field == "reference" and "twice" in err.value.message
    with pytest.raises(InvalidInput) as err:
        psl.drift("churn", window="0s", client=deployed.client)
    assert err.value.field == "window"
    both = http.put(
        "/api/v1/endpoints/churn/drift/reference", json={"version": 1, "dataset_id": "x"}
    )
    assert both.status_code == 422 and both.json()["error"]["field"] == "dataset_id"
    unknown_version = http.put("/api/v1/endpoints/churn/drift/reference", json={"version": 9})
    assert unknown_version.status_code == 404
    missing = http.get("/api/v1/endpoints/nobody/drift")
    assert missing.status_code == 404
    page = http.get("/endpoints/churn/drift", params={"since": "0h"})
    assert page.status_code == 422 and "since must be longer than zero" in page.text
    assert deployed.monitoring_objects() == before  # nothing written by any of them

    server = LiveServer(deployed.app).start()
    try:
        runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
        target = tmp_path / "report.html"
        for bad in (["--window", "0h"], ["--override", "nope.test=ks"], ["--override", "age=1"]):
            args = ["--url", server.url, "monitor", "report", "churn", "-o", str(target), *bad]
            out = runner.invoke(cli_app, args)
            assert out.exit_code != 0 and "error:" in out.output, out.output
            assert not target.exists()
        assert list(tmp_path.glob("*.part")) == [] and list(tmp_path.glob(".report*")) == []
    finally:
        server.stop()
    assert deployed.monitoring_objects() == before
