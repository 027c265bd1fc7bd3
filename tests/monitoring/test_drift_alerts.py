"""Alert rules on drift figures: added through the command line, fired once when drift is
injected into the served traffic, the webhook received by a local HTTP server."""

from __future__ import annotations

import re

from passerelle.core.ids import now_ms
from passerelle.monitoring.drift.figures import granularity
from tests.cli._helpers import as_json, make_invoke
from tests.conftest import LiveServer
from tests.monitoring._webhook import WebhookReceiver
from tests.monitoring.drift_fixtures import (
    Deployed,
    deployed,
    features,
    log_records,
    register_second_version,
)

__all__ = ["deployed"]  # the fixture, imported for pytest


def test_a_drift_rule_fires_once_when_drift_is_injected(deployed: Deployed, tmp_path) -> None:
    scheduler = deployed.app.state.monitoring
    server = LiveServer(deployed.app).start()
    try:
        invoke = make_invoke(tmp_path / "unused")

        def add(metric: str, *args: str):
            base = ["--url", server.url, "alerts", "add", "churn", "--metric", metric]
            return invoke(*base, "--window", "1h", "--min-samples", "100", *args)

        bad = add("drift.incme", "--above", "0.2")
        assert bad.exit_code != 0
        assert "drift.incme" in bad.output and "drift.income" in bad.output  # names the choices
        with WebhookReceiver() as hook:
            share = as_json(add("drift.share", "--above", "0.4", "--webhook", hook.url, "--json"))
            income = as_json(add("drift.income", "--above", "0.25", "--json"))
            together = as_json(add("drift.multivariate", "--above", "0.6", "--json"))
            assert share["metric"] == "drift.share" and income["metric"] == "drift.income"

            deployed.predict(features(50, seed=2))  # under the minimum sample: nothing decided
            assert scheduler.tick()
            rule = deployed.http.get(f"/api/v1/alerts/{share['id']}").json()
            assert rule["state"] == "unknown" and rule["last_samples"] == 50

            deployed.predict(features(350, seed=3))  # clean traffic
            assert scheduler.tick()
            rule = deployed.http.get(f"/api/v1/alerts/{share['id']}").json()
            assert rule["state"] == "ok" and rule["last_value"] == 0.0
            assert rule["last_samples"] == 400
            assert hook.received == []
            rule = deployed.http.get(f"/api/v1/alerts/{together['id']}").json()
            assert rule["state"] == "ok" and rule["last_value"] < 0.6  # the classifier's AUC

            deployed.predict(features(2000, seed=4, income_shift=30))  # drift injected
            scheduler.tick()
            scheduler.tick()  # still drifted: the incident lasts, nothing new is sent
            assert hook.statuses() == ["firing"]
            message = hook.received[0]
            assert message["metric"] == "drift.share" and message["value"] == 0.5  # 1 of 2
            assert message["samples"] == 2400
            rule = deployed.http.get(f"/api/v1/alerts/{income['id']}").json()
            assert rule["state"] == "firing" and rule["last_value"] > 0.25
            rule = deployed.http.get(f"/api/v1/alerts/{together['id']}").json()
            assert rule["state"] == "firing" and rule["last_value"] > 0.6

        shown = deployed.http.get("/alerts", params={"endpoint": "churn"})
        assert shown.status_code == 200 and "drift.share" in shown.text

        target = tmp_path / "report.html"  # the offline report holds the rules and incidents
        base = ["--url", server.url, "monitor", "report", "churn", "--since", "2h"]
        made = invoke(*base, "-o", str(target))
        assert made.exit_code == 0, made.output
        html = target.read_text()
        rules = html.split('id="alert-rules"', 1)[1].split("</table>")[0]
        assert "drift.share above 0.4" in rules and 'class="drifted">firing' in rules
        incidents = html.split('id="alert-incidents"', 1)[1].split("</table>")[0]
        assert "delivered" in incidents
        table = html.split('id="performance-table"', 1)[1].split("</table>")[0]
        rows = re.findall(
            r'v1</td>\s*<td class="num">(\d+)</td>.*?([\d.]+|—)</td>\s*</tr>', table, re.S
        )
        assert sum(int(n) for n, _ in rows) == 2400  # every prediction, no label yet
        assert all(estimate != "—" for _, estimate in rows)  # the estimate stands in for it
    finally:
        server.stop()


def test_a_drift_rule_on_one_version_watches_that_version_alone(deployed: Deployed) -> None:
    """Version 2 in shadow answers 1 to everyone: a rule on its prediction drift fires, the
    same rule on the endpoint's traffic (which leaves shadow copies out) does not."""
    register_second_version(deployed)
    start = now_ms() - 10 * 60_000
    log = deployed.app.state.serving.log
    log.append(log_records(deployed, start, features(300, seed=5)))
    log.append(log_records(deployed, start + 500, features(300, seed=6), 2, says_yes=True))
    rules = {}
    for version in (None, 2):
        body = {"endpoint": "churn", "metric": "drift.prediction", "above": 10, "window": "1h"}
        r = deployed.http.post("/api/v1/alerts", json=body | {"version": version})
        assert r.status_code in (200, 201), r.text
        rules[version] = r.json()["id"]
    assert deployed.app.state.monitoring.tick()
    every = deployed.http.get(f"/api/v1/alerts/{rules[None]}").json()
    shadow = deployed.http.get(f"/api/v1/alerts/{rules[2]}").json()
    # the prediction's test on 300 rows is chi-squared (one degree of freedom here)
    assert every["state"] == "ok" and every["last_value"] < 10
    assert shadow["state"] == "firing" and shadow["last_value"] > 100
    assert every["last_samples"] == shadow["last_samples"] == 300


def test_rule_windows_split_in_cached_drift_windows() -> None:
    hour, day = 3_600_000, 86_400_000
    assert granularity(day) == hour and granularity(7 * day) == day
    assert granularity(hour) == 900_000 and granularity(120_000) == 120_000
