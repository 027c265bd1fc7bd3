"""Micro-batchers follow each endpoint's current settings and any event loop."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.serving.conftest import Served

ROW = {"age": 41, "income": 61.5}


def log_rows(served: Served, name: str) -> list[dict]:
    return served.http.get(f"/api/v1/endpoints/{name}/log").json()["rows"]


def test_redaction_added_later_applies_at_once(served: Served) -> None:
    served.change(action="deploy", version=1)
    first = served.predict([ROW])["prediction_ids"][0]
    served.change(action="configure", redact=["income"])
    second = served.predict([ROW])["prediction_ids"][0]
    rows = {r["prediction_id"]: r for r in log_rows(served, "churn")}
    assert float(rows[first]["input.income"]) == 61.5  # mixed with "***": kept as text
    assert rows[second]["input.income"] == "***"


def test_two_endpoints_on_one_version_keep_their_own_logs(served: Served) -> None:
    served.change(action="deploy", version=1)
    served.change("churn-eu", action="deploy", version=1, model="churn")
    a = served.predict([ROW])["prediction_ids"]
    b = served.predict([ROW], name="churn-eu")["prediction_ids"]
    assert {r["prediction_id"] for r in log_rows(served, "churn")} >= set(a)
    eu = {r["prediction_id"]: r for r in log_rows(served, "churn-eu")}
    assert set(b) <= set(eu) and not set(a) & set(eu)
    assert all(r["endpoint"] == "churn-eu" for r in eu.values())


def test_a_second_event_loop_still_predicts(app, served: Served) -> None:
    served.change(action="deploy", version=1)
    served.predict([ROW])  # the batcher starts on the fixture client's loop
    with TestClient(app) as other:  # another loop
        r = other.post("/v1/endpoints/churn/predict", json={"inputs": [ROW]})
    assert r.status_code == 200 and r.json()["model_version"] == 1


def test_bad_endpoint_names_refused(served: Served) -> None:
    r = served.http.post(
        '/api/v1/endpoints/odd"<b>/deployments',
        json={"action": "deploy", "version": 1, "model": "churn"},
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "endpoint"
    assert served.http.get("/api/v1/endpoints").json() == []
