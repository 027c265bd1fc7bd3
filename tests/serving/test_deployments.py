"""Deployments: routing, stickiness, promotion, rollback and the recorded history."""

from __future__ import annotations

import numpy as np

from tests.serving.conftest import Served

ROW = {"age": 41, "income": 61.5}


def test_predictions_match_the_registered_model(served: Served) -> None:
    served.change(action="deploy", version=1)
    rows = served.X.head(25).to_dict(orient="records")
    answer = served.predict(rows)
    assert answer["model_version"] == 1
    np.testing.assert_array_equal(
        answer["predictions"], served.models[1].predict(served.X.head(25))
    )
    assert len(set(answer["prediction_ids"])) == 25
    columns = {"age": [r["age"] for r in rows], "income": [r["income"] for r in rows]}
    r = served.http.post("/v1/endpoints/churn/predict", json={"inputs": columns})
    assert r.json()["predictions"] == answer["predictions"]


def test_same_request_key_same_version_and_rollback(served: Served) -> None:
    served.change(action="deploy", version=1)
    served.change(action="canary", version=2, weight=50)
    seen: dict[str, set[int]] = {}
    for user in range(40):
        for _ in range(5):
            v = served.predict([ROW], headers={"X-Request-Key": f"user-{user}"})["model_version"]
            seen.setdefault(f"user-{user}", set()).add(v)
    assert all(len(v) == 1 for v in seen.values())
    assert {next(iter(v)) for v in seen.values()} == {1, 2}  # both sides get some users
    served.change(action="rollback", reason="canary degraded")
    assert {served.predict([ROW])["model_version"] for _ in range(200)} == {1}


def test_request_key_from_a_named_input_field(served: Served) -> None:
    served.change(action="deploy", version=1)
    served.change(action="canary", version=2, weight=50)
    served.change(action="configure", request_key="age")
    versions = {served.predict([{"age": 33, "income": 50.0}])["model_version"] for _ in range(30)}
    assert len(versions) == 1


def test_promote_then_rollback_restores_the_previous_primary(served: Served) -> None:
    served.change(action="deploy", version=1)
    served.change(action="canary", version=2, weight=10)
    after = served.change(action="promote")
    assert (after["primary_version"], after["canary_version"]) == (2, None)
    assert served.predict([ROW])["model_version"] == 2
    back = served.change(action="rollback")
    assert back["primary_version"] == 1
    history = served.http.get("/api/v1/endpoints/churn/history").json()
    assert [h["action"] for h in history] == ["rollback", "promote", "canary", "deploy"]
    assert history[0]["detail"]["before"]["primary_version"] == 2
    assert history[0]["actor"] == "anonymous" and history[0]["at"] > 0


def test_shadow_answers_are_logged_not_returned(served: Served) -> None:
    served.change(action="deploy", version=1)
    served.change(action="shadow", version=2)
    answer = served.predict([ROW])
    assert answer["model_version"] == 1
    rows = served.http.get("/api/v1/endpoints/churn/log").json()["rows"]
    routes = sorted(r["route"] for r in rows)
    assert routes == ["primary", "shadow"]
    assert {r["version"] for r in rows if r["route"] == "shadow"} == {2}


def test_deployed_version_cannot_be_deleted(served: Served) -> None:
    served.change(action="deploy", version=1)
    r = served.http.delete("/api/v1/models/churn/versions/1")
    assert r.status_code == 409 and "endpoint 'churn'" in r.json()["error"]["message"]


def test_pause_refuses_predictions_until_resumed(served: Served) -> None:
    served.change(action="deploy", version=1)
    served.change(action="pause", reason="maintenance")
    r = served.http.post("/v1/endpoints/churn/predict", json={"inputs": [ROW]})
    assert r.status_code == 503 and "paused" in r.json()["error"]["message"]
    served.change(action="resume")
    assert served.predict([ROW])["model_version"] == 1
