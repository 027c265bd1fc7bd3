"""Canary analysis with a policy: a clearly worse canary is rolled back once the minimum sample
is reached, with the evidence in the history; a canary no worse is promoted."""

from __future__ import annotations

import numpy as np

import passerelle as psl
from passerelle.sdk.client import Client
from passerelle.sdk.transport import InProcessTransport
from tests.monitoring._models import Inverted
from tests.monitoring._webhook import WebhookReceiver


def _register(served, model, settings, flavor):
    client = Client(home=settings.home, transport=InProcessTransport(served.app))
    try:
        with psl.start_run(experiment="churn", client=client):
            uri = psl.log_model(model, "model", input_example=served.X.head(10), flavor=flavor)
        return psl.register_model(uri, name="churn", client=client).version
    finally:
        client.close()


def _traffic(served, per_arm: int, rng) -> dict[int, list[str]]:
    """Requests of three rows until each version answered ``per_arm`` requests; feedback for
    every prediction. Returns the prediction ids per version."""
    X = served.X
    truth = (X["income"] > 50).astype(int).to_numpy()
    ids: dict[int, list[str]] = {}
    calls: dict[int, int] = {}
    items = []
    for _ in range(40 * per_arm):
        rows = rng.choice(len(X), 3, replace=False)
        answer = served.predict(X.iloc[rows].to_dict("records"))
        v = answer["model_version"]
        calls[v] = calls.get(v, 0) + 1
        ids.setdefault(v, []).extend(answer["prediction_ids"])
        items += [
            {"prediction_id": pid, "ground_truth": int(truth[r])}
            for pid, r in zip(answer["prediction_ids"], rows, strict=True)
        ]
        if len(calls) == 2 and min(calls.values()) >= per_arm:
            break
    r = served.http.post("/api/v1/feedback", json={"items": items})
    assert r.status_code == 202, r.text
    return ids


def test_a_clearly_worse_canary_is_rolled_back_with_the_reason(served, settings):
    rng = np.random.default_rng(11)
    bad = _register(served, Inverted(served.models[1]), settings, "python")
    served.change(action="deploy", version=1)
    served.change(action="canary", version=bad, weight=50)
    r = served.http.put(
        "/api/v1/endpoints/churn/canary/policy",
        json={"when_worse": "rollback", "when_no_worse": "wait", "min_samples": 40},
    )
    assert r.status_code == 200, r.text

    _traffic(served, 5, rng)  # far below the minimum sample: no decision yet
    early = served.http.post("/api/v1/endpoints/churn/canary/evaluate").json()
    assert early["verdict"] == "insufficient" and early["action"] == "none"
    assert served.http.get("/api/v1/endpoints/churn").json()["canary_version"] == bad

    _traffic(served, 40, rng)
    analysis = served.http.get("/api/v1/endpoints/churn/canary").json()
    accuracy = next(c for c in analysis["comparisons"] if c["figure"] == "accuracy")
    assert accuracy["worse"] and accuracy["canary"] < 0.3 < 0.7 < accuracy["primary"]
    assert (
        served.http.get("/api/v1/endpoints/churn").json()["canary_version"] == bad
    )  # GET: no action

    # a policy that only alerts: one message per canary version and verdict, nothing changed
    with WebhookReceiver() as hook:
        alert_only = {"when_worse": "alert", "min_samples": 40, "webhook": hook.url}
        r = served.http.put("/api/v1/endpoints/churn/canary/policy", json=alert_only)
        assert r.status_code == 200
        for _ in range(2):
            answer = served.http.post("/api/v1/endpoints/churn/canary/evaluate").json()
            assert answer["verdict"] == "worse"
        assert hook.statuses() == ["worse"]
        assert hook.received[0]["kind"] == "canary" and hook.received[0]["canary_version"] == bad
    assert served.http.get("/api/v1/endpoints/churn").json()["canary_version"] == bad

    r = served.http.put(
        "/api/v1/endpoints/churn/canary/policy", json={"when_worse": "rollback", "min_samples": 40}
    )
    # the background scheduler applies the policy, like a person rolling back
    assert served.app.state.monitoring.tick()
    endpoint = served.http.get("/api/v1/endpoints/churn").json()
    assert endpoint["canary_version"] is None and endpoint["primary_version"] == 1
    event = served.http.get("/api/v1/endpoints/churn/history").json()[0]
    assert event["action"] == "rollback" and event["actor"] == "canary policy"
    assert event["reason"].startswith("canary worse than the primary: ")
    assert "accuracy 0.0 vs 1.0" in event["reason"]
    assert event["evidence"]["verdict"] == "worse"
    assert event["evidence"]["canary_version"] == bad
    figures = {c["figure"]: c for c in event["evidence"]["comparisons"]}
    assert figures["accuracy"]["canary_n"] >= 40 and figures["accuracy"]["p_value"] < 0.01
    # all traffic is back on the primary
    assert served.predict(served.X.head(3).to_dict("records"))["model_version"] == 1
    policy = served.http.get("/api/v1/endpoints/churn/canary/policy").json()
    assert (policy["last_version"], policy["last_verdict"]) == (bad, "worse")


def test_a_canary_no_worse_is_promoted_when_the_policy_says_so(served, settings):
    rng = np.random.default_rng(12)
    same = _register(served, served.models[1], settings, "sklearn")
    served.change(action="deploy", version=1)
    served.change(action="canary", version=same, weight=50)
    policy = {"when_no_worse": "promote", "min_samples": 30, "max_latency_increase": 20}
    assert served.http.put("/api/v1/endpoints/churn/canary/policy", json=policy).status_code == 200
    _traffic(served, 30, rng)
    decided = served.http.post("/api/v1/endpoints/churn/canary/evaluate").json()
    assert decided["verdict"] == "no_worse", decided
    assert decided["action"] == "promote"
    endpoint = served.http.get("/api/v1/endpoints/churn").json()
    assert endpoint["primary_version"] == same and endpoint["canary_version"] is None
    event = served.http.get("/api/v1/endpoints/churn/history").json()[0]
    assert event["action"] == "promote" and event["actor"] == "canary policy"
    assert event["reason"].startswith("canary no worse than the primary")
    assert {c["figure"] for c in event["evidence"]["comparisons"]} == {
        "error_rate",
        "latency_p95_ms",
        "accuracy",
    }


def test_canary_bad_input_and_the_commands(served, tmp_path):
    served.change(action="deploy", version=1)
    r = served.http.get("/api/v1/endpoints/churn/canary")
    assert r.status_code == 409 and r.json()["error"]["field"] == "endpoint"
    r = served.http.put("/api/v1/endpoints/churn/canary/policy", json={"when_worse": "panic"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "when_worse"
    r = served.http.put("/api/v1/endpoints/churn/canary/policy", json={"min_samples": 0})
    assert r.status_code == 422 and r.json()["error"]["field"] == "min_samples"
    r = served.http.put("/api/v1/endpoints/churn/canary/policy", json={"webhook": "ftp://x"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "webhook"
    r = served.http.get("/api/v1/endpoints/churn/canary/policy")
    assert r.status_code == 404
    r = served.http.post("/api/v1/endpoints/churn/canary/evaluate")
    assert r.status_code == 404 and r.json()["error"]["field"] == "endpoint"
    assert served.http.put("/api/v1/endpoints/churn/canary/policy", json={}).status_code == 200
    assert served.http.delete("/api/v1/endpoints/churn/canary/policy").status_code == 204
    assert served.http.get("/api/v1/endpoints/churn/canary/policy").status_code == 404

    # the commands, against a server
    from tests.cli._helpers import as_json, make_invoke
    from tests.conftest import LiveServer

    served.change(action="canary", version=2, weight=50)
    server = LiveServer(served.app).start()
    try:
        invoke = make_invoke(tmp_path / "unused")

        def run(*args):
            return invoke("--url", server.url, *args)

        policy = as_json(
            run(
                "monitor",
                "canary-policy",
                "churn",
                "--when-no-worse",
                "promote",
                "--min-samples",
                "500",
                "--json",
            )
        )
        assert policy["when_no_worse"] == "promote" and policy["min_samples"] == 500
        shown = run("monitor", "canary-policy", "churn", "--show")
        assert shown.exit_code == 0 and "promote" in shown.stdout
        analysis = run("monitor", "canary", "churn", "--apply")
        assert analysis.exit_code == 0, analysis.output
        assert "verdict: insufficient" in analysis.stdout and "error_rate" in analysis.stdout
        bad = run("monitor", "canary-policy", "churn", "--when-worse", "panic")
        assert bad.exit_code != 0 and "when_worse" in bad.output
        assert run("monitor", "canary-policy", "churn", "--remove").exit_code == 0
    finally:
        server.stop()
