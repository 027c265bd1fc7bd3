"""Operations in one process: Prometheus metrics at /metrics and readiness at /readyz."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from passerelle.app import create_app
from passerelle.core.auth import ANONYMOUS_ADMIN
from passerelle.core.settings import Settings
from passerelle.registry import service as registry
from passerelle.serving import metrics as serving_metrics
from passerelle.serving.metrics import MetricsMiddleware, ServingMetrics, prediction_endpoint
from tests.serving.conftest import Served

ROW = {"age": 41, "income": 61.5}


def samples(http: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` as ``{(sample name, sorted labels): value}``."""
    r = http.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def total(found: dict, name: str, **labels: str) -> float:
    """Sum of ``name`` over every label set that includes ``labels``."""
    return sum(
        v
        for (n, ls), v in found.items()
        if n == name and all((k, w) in ls for k, w in labels.items())
    )


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


# -- metrics -----------------------------------------------------------------------------------
def test_metrics_count_requests_errors_latency_and_batch_sizes(served: Served) -> None:
    served.change(action="deploy", version=1)
    for _ in range(5):
        served.predict([ROW])
    served.predict([ROW, ROW, ROW])
    bad = served.http.post("/v1/endpoints/churn/predict", json={"inputs": [{"age": "old"}]})
    assert bad.status_code == 422
    unknown = served.http.post("/v1/endpoints/nope/predict", json={"inputs": [ROW]})
    assert unknown.status_code == 404
    v2 = served.http.post(
        "/v2/models/churn/infer",
        json={
            "inputs": [
                {"name": "age", "shape": [1], "datatype": "INT64", "data": [41]},
                {"name": "income", "shape": [1], "datatype": "FP64", "data": [61.5]},
            ]
        },
    )
    assert v2.status_code == 200, v2.text
    served.http.get("/api/v1/endpoints/churn")  # not a prediction: not counted

    found = samples(served.http)
    ok = {"endpoint": "churn", "version": "1"}
    # the six answers and the v2 call (it names its version too)
    assert value(found, "passerelle_serving_requests_total", **ok) == 7
    assert value(found, "passerelle_serving_request_duration_seconds_count", **ok) == 7
    assert 0 < value(found, "passerelle_serving_request_duration_seconds_sum", **ok) < 60
    assert value(found, "passerelle_serving_request_duration_seconds_bucket", le="+Inf", **ok) == 7
    # every request of the churn endpoint: six answers, the bad input and the v2 call
    assert total(found, "passerelle_serving_requests_total", endpoint="churn") == 8
    assert (
        total(found, "passerelle_serving_errors_total", endpoint="churn", status_class="4xx") == 1
    )
    assert total(found, "passerelle_serving_errors_total", status_class="5xx") == 0
    # the name of an endpoint that does not exist is not kept as a label
    assert total(found, "passerelle_serving_requests_total", endpoint="nope") == 0
    assert value(found, "passerelle_serving_requests_total", endpoint="(unknown)", version="") == 1
    # rows per model call: six calls of version 1 (8 rows), one by the v2 call
    assert value(found, "passerelle_serving_batch_rows_count", **ok) == 7
    assert value(found, "passerelle_serving_batch_rows_sum", **ok) == 9
    assert value(found, "passerelle_serving_batch_rows_bucket", le="1.0", **ok) == 6


def test_server_errors_are_counted_as_5xx(served: Served) -> None:
    served.change(action="deploy", version=1)
    served.change(action="pause", reason="maintenance")
    paused = served.http.post("/v1/endpoints/churn/predict", json={"inputs": [ROW]})
    assert paused.status_code == 503
    found = samples(served.http)
    errors = "passerelle_serving_errors_total"
    assert value(found, errors, endpoint="churn", version="", status_class="5xx") == 1
    assert total(found, errors, status_class="4xx") == 0


def test_an_unhandled_error_is_counted_and_raised() -> None:
    async def broken(scope, receive, send) -> None:
        raise RuntimeError("model exploded")

    m = ServingMetrics()
    scope = {"type": "http", "method": "POST", "path": "/v2/models/churn/infer"}
    with pytest.raises(RuntimeError):
        asyncio.run(MetricsMiddleware(broken, m)(scope, None, None))
    errors = {
        (s.labels["endpoint"], s.labels["status_class"]): s.value
        for s in m.errors.collect()[0].samples
        if s.name.endswith("_total")
    }
    assert errors == {("churn", "5xx"): 1.0}


def test_each_app_counts_on_its_own(served: Served, tmp_path) -> None:
    """No global registry: a second app in the same process starts from zero."""
    served.change(action="deploy", version=1)
    served.predict([ROW])
    other = create_app(Settings(home=tmp_path / "other", _env_file=None))
    try:
        with TestClient(other) as http:
            assert total(samples(http), "passerelle_serving_requests_total") == 0
    finally:
        other.state.engine.dispose()
    assert total(samples(served.http), "passerelle_serving_requests_total") == 1


def test_metrics_need_a_key_when_keys_are_required(tmp_path) -> None:
    admin = "an-admin-key-long-enough-000"
    app = create_app(Settings(home=tmp_path / "home", auth="on", admin_key=admin, _env_file=None))
    try:
        with TestClient(app) as http:
            assert http.get("/metrics").status_code == 401
            r = http.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
            assert r.status_code == 200
            assert "passerelle_serving_requests" in r.text
    finally:
        app.state.engine.dispose()


def test_endpoint_labels_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving_metrics, "MAX_ENDPOINT_LABELS", 3)
    m = ServingMetrics()
    for i in range(6):
        m.observe_request(f"e{i}", "1", 200, 0.001)
    labels = {s.labels["endpoint"] for s in m.requests.collect()[0].samples}
    assert labels == {"e0", "e1", "e2", "(other)"}


def test_only_prediction_routes_are_recognised() -> None:
    assert prediction_endpoint("/v1/endpoints/churn/predict") == "churn"
    assert prediction_endpoint("/v2/models/churn/infer") == "churn"
    for path in (
        "/v1/endpoints//predict",
        "/v1/endpoints/a/b/predict",
        "/v1/endpoints/churn",
        "/v2/models/churn/ready",
        "/api/v1/endpoints/churn/predict",
        "/metrics",
    ):
        assert prediction_endpoint(path) is None, path


# -- readiness ---------------------------------------------------------------------------------
def test_readyz_waits_for_every_deployed_version(served: Served) -> None:
    runtime = served.app.state.serving
    served.change(action="deploy", version=1)
    # loaded in the background, before any prediction asked for it
    wait_for(lambda: served.http.get("/readyz").status_code == 200)
    config = runtime.config("churn", ANONYMOUS_ADMIN)
    assert runtime.loaded(config)

    # a process that has just started on the same database: not ready until it loads version 1
    fresh = create_app(served.app.state.settings)
    try:
        probe = TestClient(fresh)  # no lifespan: the probe itself starts the loading
        first = probe.get("/readyz")
        assert first.status_code == 503
        body = first.json()
        assert body["status"] == "not ready"
        assert body["checks"]["database"] == "ok" and body["checks"]["object_store"] == "ok"
        assert "loading" in body["checks"]["models"]
        assert body["loading"] == [{"endpoint": "churn", "model": "churn", "version": 1}]
        wait_for(lambda: probe.get("/readyz").status_code == 200)
        assert probe.get("/readyz").json()["checks"]["models"] == "ok"
    finally:
        fresh.state.engine.dispose()


def test_a_version_that_cannot_load_keeps_the_process_not_ready(served: Served) -> None:
    served.change(action="deploy", version=1)
    wait_for(lambda: served.http.get("/readyz").status_code == 200)
    with served.app.state.sessions() as session:
        files = {
            v: set(registry.get_version(session, ANONYMOUS_ADMIN, "churn", v).files.values())
            for v in (1, 2)
        }
    store = served.app.state.store
    for digest in files[2] - files[1]:
        store.local_path(digest).write_bytes(b"tampered")
    served.change(action="canary", version=2, weight=0)

    def failed():
        r = served.http.get("/readyz")
        return r.status_code == 503 and r.json().get("failed") and r.json()

    body = wait_for(failed)
    assert [(f["endpoint"], f["version"]) for f in body["failed"]] == [("churn", 2)]
    assert "IntegrityFailure" in body["failed"][0]["error"]
    assert "failed to load" in body["checks"]["models"]
    assert served.predict([ROW])["model_version"] == 1  # the primary keeps serving

    served.change(action="rollback", reason="canary cannot load")
    wait_for(lambda: served.http.get("/readyz").status_code == 200)


def test_the_access_log_leaves_out_predictions_and_keeps_the_rest(served) -> None:
    import logging
    import threading
    import time

    import httpx
    import uvicorn

    from passerelle.serving.process import uvicorn_config
    from tests.conftest import free_port

    served.change(action="deploy", version=1)
    port = free_port()
    server = uvicorn.Server(uvicorn_config(served.app, "127.0.0.1", port))
    warmer = served.app.state.warmer
    assert warmer.freeze_heap  # a serving process freezes its heap once the models are loaded
    warmer.freeze_heap = False  # but not this test process: frozen objects are never freed
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    keep = Keep()
    logging.getLogger("uvicorn.access").addHandler(keep)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        row = {"age": 41, "income": 61.5}
        r = httpx.post(f"{url}/v1/endpoints/churn/predict?x=1", json={"inputs": [row]})
        assert r.status_code == 200
        assert httpx.get(f"{url}/healthz").status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        logging.getLogger("uvicorn.access").removeHandler(keep)
    assert any("/healthz" in line for line in seen), seen
    assert not any("/predict" in line for line in seen), seen
