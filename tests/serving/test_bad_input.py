"""Bad input gets a 4xx naming the cause; the gateway keeps serving."""

from __future__ import annotations

import pytest

from tests.serving.conftest import Served

ROW = {"age": 41, "income": 61.5}


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({"inputs": [{"age": "old", "income": 1.0}]}, 422, "age", "expected integer"),
        ({"inputs": [{"income": 1.0}]}, 422, "age", "missing"),
        ({"inputs": [{**ROW, "extra": 1}]}, 422, "extra", "unexpected column"),
        ({"inputs": []}, 422, "inputs", "empty"),
        ({"inputs": "x"}, 422, "inputs", "records"),
        ({"rows": [ROW]}, 422, "inputs", "expected"),
        ({"inputs": {"age": [1, 2], "income": [1.0]}}, 422, "inputs", "same length"),
    ],
)
def test_bad_predict_bodies(served: Served, body, status, field, words) -> None:
    served.change(action="deploy", version=1)
    r = served.http.post("/v1/endpoints/churn/predict", json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == field and words in err["message"]
    assert served.predict([ROW])["model_version"] == 1  # still serving


def test_empty_and_malformed_bodies(served: Served) -> None:
    served.change(action="deploy", version=1)
    for raw in (b"", b"{nope", b"[1, 2]"):
        r = served.http.post(
            "/v1/endpoints/churn/predict", content=raw, headers={"content-type": "application/json"}
        )
        assert r.status_code == 422, raw
    r = served.http.post(
        "/v1/endpoints/churn/predict",
        content=b"PAR1garbage",
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "body"


def test_body_over_the_limit_is_413(app, served: Served) -> None:
    served.change(action="deploy", version=1)
    limit = app.state.settings.max_request_bytes
    r = served.http.post(
        "/v1/endpoints/churn/predict",
        content=b"x" * (limit + 1),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413


def test_unknown_endpoint_and_undeployed_changes(served: Served) -> None:
    r = served.http.post("/v1/endpoints/ghost/predict", json={"inputs": [ROW]})
    assert r.status_code == 404 and r.json()["error"]["field"] == "endpoint"
    r = served.http.post(
        "/api/v1/endpoints/churn/deployments", json={"action": "deploy", "version": 9}
    )
    assert r.status_code == 404 and r.json()["error"]["field"] == "version"
    r = served.http.post("/api/v1/endpoints/ghost/deployments", json={"action": "rollback"})
    assert r.status_code == 404
    served.change(action="deploy", version=1)
    r = served.http.post("/api/v1/endpoints/churn/deployments", json={"action": "promote"})
    assert r.status_code == 409
    r = served.http.post(
        "/api/v1/endpoints/churn/deployments",
        json={"action": "canary", "version": 2, "weight": 120},
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "weight"
    assert served.http.get("/api/v1/endpoints/churn").json()["canary_version"] is None


def test_open_inference_protocol(served: Served) -> None:
    served.change(action="deploy", version=1)
    body = {
        "inputs": [
            {"name": "age", "shape": [2], "datatype": "INT64", "data": [41, 30]},
            {"name": "income", "shape": [2], "datatype": "FP64", "data": [61.5, 20.0]},
        ]
    }
    r = served.http.post("/v2/models/churn/infer", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model_version"] == "1" and out["outputs"][0]["shape"] == [2]
    assert len(out["parameters"]["prediction_ids"]) == 2
    bad = {"inputs": [{"name": "age", "datatype": "COMPLEX", "data": [1]}]}
    r = served.http.post("/v2/models/churn/infer", json=bad)
    assert r.status_code == 422 and r.json()["error"]["field"] == "inputs.0.datatype"
