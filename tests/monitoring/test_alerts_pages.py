"""The alerts page: rules with their state and last value, incidents open and resolved."""

from __future__ import annotations

import re


def test_alerts_page_lists_rules_and_incidents(served):
    served.change(action="deploy", version=1)
    served.predict(served.X.head(20).to_dict("records"))
    empty = served.http.get("/alerts")
    assert empty.status_code == 200 and "No rule yet" in empty.text
    rule = {"endpoint": "churn", "metric": "requests", "above": 5, "min_samples": 1}
    first = served.http.post("/api/v1/alerts", json=rule).json()
    second = served.http.post("/api/v1/alerts", json={**rule, "above": 1000}).json()
    assert served.app.state.monitoring.tick()
    html = served.http.get("/alerts").text
    assert re.search(rf'data-rule="{first["id"]}" data-state="firing"', html)
    assert re.search(rf'data-rule="{second["id"]}" data-state="ok"', html)
    assert "1 firing" in html
    assert html.count('data-open="yes"') == 1
    assert "requests above 5" in html
    only = served.http.get("/alerts?endpoint=nope")
    assert only.status_code == 404
