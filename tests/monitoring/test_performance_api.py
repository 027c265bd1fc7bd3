"""Live performance through the API, SDK and CLI: measured from feedback, estimated while
labels are pending."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

import passerelle as psl
from passerelle.core.errors import InvalidInput
from passerelle.sdk.client import Client
from passerelle.sdk.transport import InProcessTransport
from tests.monitoring._models import WithProbabilities


def _register(served, model, client):
    with psl.start_run(experiment="churn", client=client):
        uri = psl.log_model(model, "model", input_example=served.X.head(10), flavor="python")
    return psl.register_model(uri, name="churn", client=client).version


def test_performance_measured_estimated_and_bad_input(served, settings):
    client = Client(home=settings.home, transport=InProcessTransport(served.app))
    try:
        v3 = _register(served, WithProbabilities(served.models[1]), client)
        served.change(action="deploy", version=v3)
        X = served.X
        y = (X["income"] > 50).astype(int).to_numpy()
        answer = served.predict(X.to_dict("records"))
        assert answer["model_version"] == v3
        ids = answer["prediction_ids"]
        labelled = 200
        psl.feedback_many(
            [
                {"prediction_id": i, "ground_truth": int(t)}
                for i, t in zip(ids[:labelled], y[:labelled], strict=True)
            ],
            client=client,
        )
        perf = psl.performance("churn", window="1d", client=client)
        assert perf.attrs["task"] == "classification"
        assert list(perf["version"]) == [v3]
        row = perf.iloc[0]
        assert (row["predictions"], row["labelled"], row["pending"]) == (300, 200, 100)
        predicted = served.models[1].predict(X.iloc[:labelled])
        assert row["accuracy"] == pytest.approx(accuracy_score(y[:labelled], predicted), abs=1e-6)
        assert row["accuracy_low"] <= row["accuracy"] <= row["accuracy_high"]
        assert row["roc_auc"] is not None and row["roc_auc"] > 0.9
        # the estimate covers all 300 predictions, from the model's own probabilities
        proba = served.models[1].predict_proba(X)
        assert row["estimated_accuracy"] == pytest.approx(np.mean(proba.max(axis=1)), abs=0.02)

        with pytest.raises(InvalidInput) as err:
            psl.performance("churn", window="0d", client=client)
        assert err.value.field == "window"
        r = served.http.get("/api/v1/endpoints/churn/performance", params={"window": "0"})
        assert r.status_code == 422 and r.json()["error"]["field"] == "window"
        r = served.http.get("/api/v1/endpoints/churn/performance", params={"task": "ranking"})
        assert r.status_code == 422 and r.json()["error"]["field"] == "task"
        r = served.http.get("/api/v1/endpoints/nope/performance")
        assert r.status_code == 404
        r = served.http.get(
            "/api/v1/endpoints/churn/performance", params={"window": "1s", "since": "30d"}
        )
        assert r.status_code == 422 and r.json()["error"]["field"] == "window"
    finally:
        client.close()


def test_performance_per_version_from_logged_probabilities_and_the_command(served, tmp_path):
    served.change(action="deploy", version=1)
    rows = served.X.to_dict("records")
    first = served.predict(rows[:100])["prediction_ids"]
    served.change(action="deploy", version=2)
    second = served.predict(rows[100:200])["prediction_ids"]
    y = (served.X["income"] > 50).astype(int).tolist()
    items = [
        {"prediction_id": i, "ground_truth": t}
        for i, t in zip(first + second, y[:200], strict=True)
    ]
    r = served.http.post("/api/v1/feedback", json={"items": items})
    assert r.status_code == 202
    report = served.http.get("/api/v1/endpoints/churn/performance?window=1h").json()
    by_version = {w["version"]: w for w in report["windows"]}
    assert set(by_version) == {1, 2}
    for version, part in ((1, slice(0, 100)), (2, slice(100, 200))):
        predicted = served.models[version].predict(served.X.iloc[part])
        assert by_version[version]["metrics"]["accuracy"] == pytest.approx(
            accuracy_score(y[part], predicted)
        )
        # serving logs a classifier's probabilities: ROC AUC and the estimate come with them
        proba = served.models[version].predict_proba(served.X.iloc[part])[:, 1]
        assert by_version[version]["metrics"]["roc_auc"] == pytest.approx(
            roc_auc_score(y[part], proba)
        )
        assert by_version[version]["estimate"]["predictions"] == 100

    from tests.cli._helpers import make_invoke
    from tests.conftest import LiveServer

    server = LiveServer(served.app).start()
    try:
        invoke = make_invoke(tmp_path / "unused")
        result = invoke("--url", server.url, "monitor", "performance", "churn", "--window", "1d")
        assert result.exit_code == 0, result.output
        assert "v1" in result.stdout and "v2" in result.stdout and "accuracy" in result.stdout
        assert " 100 " in result.stdout
        bad = invoke("--url", server.url, "monitor", "performance", "churn", "--window", "0h")
        assert bad.exit_code != 0
        assert "window" in bad.output
    finally:
        server.stop()
