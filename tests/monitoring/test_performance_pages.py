"""The performance page: measured values with their intervals and the estimate beside them,
per window and version, drawn by plotly; bad input gets an error page, not a 500."""

from __future__ import annotations

import json
import re

import pytest

import passerelle as psl
from passerelle.sdk.client import Client
from passerelle.sdk.transport import InProcessTransport
from tests.monitoring._models import WithProbabilities


def _figure(html: str) -> dict:
    found = re.search(
        r'<script type="application/json" class="plotly-figure" data-target="performance-figure">'
        r"(.*?)</script>",
        html,
        re.DOTALL,
    )
    assert found, "no figure on the page"
    return json.loads(found.group(1))


def test_performance_page_shows_measured_and_estimated_per_version(served, settings):
    client = Client(home=settings.home, transport=InProcessTransport(served.app))
    try:
        with psl.start_run(experiment="churn", client=client):
            uri = psl.log_model(
                WithProbabilities(served.models[1]),
                "model",
                input_example=served.X.head(5),
                flavor="python",
            )
        v3 = psl.register_model(uri, name="churn", client=client).version
    finally:
        client.close()
    served.change(action="deploy", version=v3)
    ids = served.predict(served.X.head(100).to_dict("records"))["prediction_ids"]
    truth = (served.X["income"].head(100) > 50).astype(int).tolist()
    items = [
        {"prediction_id": i, "ground_truth": t} for i, t in zip(ids[:80], truth[:80], strict=True)
    ]
    assert served.http.post("/api/v1/feedback", json={"items": items}).status_code == 202

    page = served.http.get("/endpoints/churn/performance?window=1d&metric=accuracy")
    assert page.status_code == 200, page.text
    html = page.text
    report = served.http.get("/api/v1/endpoints/churn/performance?window=1d").json()
    row = report["windows"][0]
    assert f'data-version="{v3}"' in html
    assert f'<td class="num measured">{row["metrics"]["accuracy"]:.6g}</td>' in html
    assert f'<td class="num estimated">{row["estimate"]["metrics"]["accuracy"]:.6g}</td>' in html
    figure = _figure(html)
    names = [t["name"] for t in figure["data"]]
    assert names == [f"v{v3} measured", f"v{v3} estimated"]
    measured = figure["data"][0]
    low, high = row["intervals"]["accuracy"]
    assert measured["y"] == [row["metrics"]["accuracy"]]
    assert measured["error_y"]["array"][0] == pytest.approx(high - row["metrics"]["accuracy"])
    assert measured["error_y"]["arrayminus"][0] == pytest.approx(row["metrics"]["accuracy"] - low)
    assert figure["data"][1]["line"]["dash"] == "dash"
    assert "/static/plotly.min.js" in html

    bad = served.http.get("/endpoints/churn/performance?window=0d")
    assert 400 <= bad.status_code < 500 and "window" in bad.text
    assert bad.headers["content-type"].startswith("text/html")
    assert served.http.get("/endpoints/nope/performance").status_code == 404
