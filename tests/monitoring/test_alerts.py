"""Alerts: fired once per incident, again after a recovery and a new break, received by a
local webhook server; evaluated once across two servers on one database (the lease)."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from passerelle.app import create_app
from passerelle.core.settings import Settings
from tests.monitoring._webhook import WebhookReceiver


def _labelled_traffic(served, n=60) -> tuple[list[str], list[int]]:
    served.change(action="deploy", version=1)
    rows = served.X.head(n)
    ids = served.predict(rows.to_dict("records"))["prediction_ids"]
    predicted = [int(p) for p in served.models[1].predict(rows)]
    return ids, predicted


def _feedback(served, ids, labels):
    items = [{"prediction_id": i, "ground_truth": t} for i, t in zip(ids, labels, strict=True)]
    assert served.http.post("/api/v1/feedback", json={"items": items}).status_code == 202


def test_an_alert_fires_once_per_incident_and_again_after_recovery(served):
    scheduler = served.app.state.monitoring
    ids, predicted = _labelled_traffic(served)
    right, wrong = predicted, [1 - p for p in predicted]
    with WebhookReceiver() as hook:
        r = served.http.post(
            "/api/v1/alerts",
            json={
                "endpoint": "churn",
                "metric": "accuracy",
                "below": 0.75,
                "window": "1h",
                "min_samples": 50,
                "webhook": hook.url,
            },
        )
        assert r.status_code == 201, r.text
        rule_id = r.json()["id"]

        _feedback(served, ids[:40], right[:40])  # under the minimum sample: nothing happens
        assert scheduler.tick()
        rule = served.http.get(f"/api/v1/alerts/{rule_id}").json()
        assert rule["state"] == "unknown" and rule["last_samples"] == 40

        _feedback(served, ids, right)
        assert scheduler.tick()
        assert served.http.get(f"/api/v1/alerts/{rule_id}").json()["state"] == "ok"
        assert hook.received == []

        _feedback(served, ids, wrong)  # the model is now wrong on every labelled prediction
        scheduler.tick()
        scheduler.tick()  # still broken: the incident lasts, nothing new is sent
        assert hook.statuses() == ["firing"]
        message = hook.received[0]
        assert message["endpoint"] == "churn" and message["metric"] == "accuracy"
        assert message["value"] == 0.0 and message["threshold"] == 0.75
        assert message["samples"] == 60

        _feedback(served, ids, right)  # recovered
        scheduler.tick()
        assert hook.statuses() == ["firing", "resolved"]
        _feedback(served, ids, wrong)  # and broken anew
        scheduler.tick()
        assert hook.statuses() == ["firing", "resolved", "firing"]
        assert hook.received[2]["incident"]["id"] != hook.received[0]["incident"]["id"]

    incidents = served.http.get(f"/api/v1/alerts/{rule_id}/incidents").json()
    assert len(incidents) == 2
    assert incidents[0]["resolved_at"] is None and incidents[1]["resolved_at"] is not None
    assert served.http.get("/api/v1/alerts/incidents").json() == incidents


def test_a_failing_webhook_is_retried_and_does_not_stop_other_rules(served):
    scheduler = served.app.state.monitoring
    _labelled_traffic(served, n=20)
    with WebhookReceiver() as hook:
        hook.status = 500
        for _ in range(2):
            body = {"endpoint": "churn", "metric": "requests", "above": 5, "min_samples": 1}
            assert (
                served.http.post("/api/v1/alerts", json={**body, "webhook": hook.url}).status_code
                == 201
            )
        assert scheduler.tick()
        incidents = served.http.get("/api/v1/alerts/incidents").json()
        assert len(incidents) == 2
        assert all(i["notified_at"] is None and "HTTP 500" in i["notify_error"] for i in incidents)
        hook.status = 200
        scheduler.tick()  # the receiver is back: each incident delivered once
        assert hook.statuses() == ["firing", "firing"]
        scheduler.tick()
        assert len(hook.received) == 2


def test_two_servers_on_one_database_evaluate_once(served, settings, tmp_path):
    _labelled_traffic(served, n=20)
    served.app.state.serving.log.compact()  # the parts are in the store for any replica
    other = create_app(
        Settings(
            home=tmp_path / "other",
            database_url=settings.resolved_database_url,
            artifact_root=settings.resolved_artifact_root,  # one object store, as in scale-out
            _env_file=None,
        )
    )
    try:
        with WebhookReceiver() as hook:
            body = {"endpoint": "churn", "metric": "requests", "above": 5, "min_samples": 1}
            r = served.http.post("/api/v1/alerts", json={**body, "webhook": hook.url})
            assert r.status_code == 201
            schedulers = [served.app.state.monitoring, other.state.monitoring]
            results: dict[int, bool] = {}
            barrier = threading.Barrier(2)

            def tick(i):
                barrier.wait()
                results[i] = schedulers[i].tick()

            threads = [threading.Thread(target=tick, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(results.values()) == [False, True]
            assert hook.statuses() == ["firing"]
            # the holder keeps its lease; the other one stays idle
            winner = schedulers[0] if results[0] else schedulers[1]
            loser = schedulers[1] if results[0] else schedulers[0]
            assert not loser.tick() and winner.tick()
            # once the holder's lease has expired, the other carries on
            later = int(time.time() * 1000) + winner.lease_ms + 1
            assert loser.tick(now=later)
            assert not winner.tick(now=later)
    finally:
        other.state.engine.dispose()


def test_the_scheduler_thread_evaluates_in_the_background(settings, tmp_path, served):
    _labelled_traffic(served, n=20)
    served.app.state.serving.log.compact()
    fast = create_app(
        Settings(
            home=tmp_path / "fast",
            database_url=settings.resolved_database_url,
            artifact_root=settings.resolved_artifact_root,
            monitor_interval=0.1,
            _env_file=None,
        )
    )
    assert fast.state.monitoring.thread is None  # only a serving app evaluates
    try:
        with WebhookReceiver() as hook, TestClient(fast):  # the app's lifespan starts it
            body = {"endpoint": "churn", "metric": "requests", "above": 5, "min_samples": 1}
            assert (
                served.http.post("/api/v1/alerts", json={**body, "webhook": hook.url}).status_code
                == 201
            )
            deadline = time.monotonic() + 30
            while not hook.received and time.monotonic() < deadline:
                time.sleep(0.05)
            assert hook.statuses() == ["firing"]
    finally:
        fast.state.stop_background.set()
        fast.state.monitoring.thread.join(timeout=10)
        fast.state.engine.dispose()


BAD_RULES = [
    ({"metric": "accuracy", "below": 0.7, "window": "0m"}, "window"),
    ({"metric": "accuracy", "below": 0.7, "window": "soon"}, "window"),
    ({"metric": "happiness", "below": 0.7}, "metric"),
    ({"metric": "accuracy"}, "below"),
    ({"metric": "accuracy", "below": 0.7, "above": 0.9}, "below"),
    ({"metric": "accuracy", "below": 0.7, "min_samples": 0}, "min_samples"),
    ({"metric": "accuracy", "below": 0.7, "webhook": "file:///etc/passwd"}, "webhook"),
    ({"metric": "accuracy", "below": 0.7, "endpoint": "nope"}, "endpoint"),
    ({"metric": "accuracy", "below": 0.7, "version": 9}, "version"),  # the model has no v9
    ({"metric": "accuracy", "below": 0.7, "version": 0}, "version"),
]


def test_bad_alert_rules_are_refused_and_the_commands(served, tmp_path):
    served.change(action="deploy", version=1)
    for body, field in BAD_RULES:
        r = served.http.post("/api/v1/alerts", json={"endpoint": "churn", **body})
        assert r.status_code in (404, 422), r.text
        assert r.json()["error"]["field"] == field, body
    assert served.http.get("/api/v1/alerts").json() == []
    assert served.http.get("/api/v1/alerts/999").status_code == 404
    assert served.http.delete("/api/v1/alerts/999").status_code == 404
    assert served.http.get("/api/v1/alerts/0").status_code == 422

    # the same through the command line, against a server
    from tests.cli._helpers import as_json, make_invoke
    from tests.conftest import LiveServer

    server = LiveServer(served.app).start()
    try:
        invoke = make_invoke(tmp_path / "unused")

        def run(*args):
            return invoke("--url", server.url, *args)

        added = as_json(
            run(
                "alerts",
                "add",
                "churn",
                "--metric",
                "f1",
                "--below",
                "0.8",
                "--window",
                "1d",
                "--json",
            )
        )
        assert added["metric"] == "f1_macro" and added["window_ms"] == 86_400_000
        listed = run("alerts", "list")
        assert listed.exit_code == 0 and "f1_macro below 0.8" in listed.stdout
        bad = run("alerts", "add", "churn", "--metric", "f1", "--below", "1", "--window", "0d")
        assert bad.exit_code != 0 and "window" in bad.output
        assert run("alerts", "incidents").exit_code == 0
        assert run("alerts", "remove", str(added["id"])).exit_code == 0
        assert as_json(run("alerts", "list", "--json")) == []
    finally:
        server.stop()


def test_a_webhook_that_hangs_times_out_and_says_so():
    from passerelle.monitoring import notify

    with WebhookReceiver() as hook:
        hook.delay = 2.0
        error = notify.post_json(hook.url, {"kind": "alert"}, timeout=0.2)
    assert error is not None and "Timeout" in error
    with WebhookReceiver() as hook:
        assert notify.post_json(hook.url, {"kind": "alert"}) is None
        assert hook.received == [{"kind": "alert"}]
    assert "ConnectError" in (notify.post_json(hook.url, {}, timeout=1) or "")  # server gone


def test_a_figure_plugged_in_by_prefix_is_accepted_and_computed():
    from passerelle.core.errors import InvalidInput
    from passerelle.monitoring import figures

    def share(ctx, name):
        return figures.Figure(value=float(len(name)), samples=7)

    figures.register_figure_family("custom.", share)
    try:
        assert figures.canonical("custom.age") == "custom.age"
        assert "custom.<name>" in figures.known_figures()
        found = figures.compute(None, "custom.age")  # type: ignore[arg-type]
        assert (found.value, found.samples) == (10.0, 7)
        assert figures.canonical("f1") == "f1_macro"
    finally:
        figures._FAMILIES.pop("custom.")
    try:
        figures.canonical("custom.age")
    except InvalidInput as err:
        assert err.field == "metric"
    else:
        raise AssertionError("an unregistered figure was accepted")
