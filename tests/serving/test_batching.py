"""Micro-batching: concurrent requests share model calls; one bad request fails alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd
import pytest

import passerelle as psl
from passerelle.sdk.client import Client
from passerelle.sdk.transport import InProcessTransport
from tests.conftest import LiveServer


class Picky:
    """Refuses negative incomes, slowly, so concurrent requests pile up behind it."""

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        import time

        time.sleep(0.01)
        if (df["income"] < 0).any():
            raise ValueError("negative income")
        return (df["income"] > 50).astype(int).to_numpy()


@pytest.fixture
def picky_server(app, settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    client = Client(home=settings.home, transport=InProcessTransport(app))
    X = pd.DataFrame({"age": [30, 40], "income": [20.0, 80.0]})
    with psl.start_run(experiment="picky", client=client):
        uri = psl.log_model(Picky(), "model", input_example=X)
    psl.register_model(uri, name="picky", client=client)
    client.request(
        "POST", "/api/v1/endpoints/picky/deployments", json={"action": "deploy", "version": 1}
    )
    server = LiveServer(app).start()
    yield app, server.url
    server.stop()
    client.close()


def _post_all(url: str, incomes: list[float]) -> list[tuple[int, dict]]:
    def call(income: float) -> tuple[int, dict]:
        r = httpx.post(
            f"{url}/v1/endpoints/picky/predict",
            json={"inputs": [{"age": 30, "income": income}]},
            timeout=30,
        )
        return r.status_code, r.json()

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(call, incomes))


def test_concurrent_requests_share_calls_and_bad_ones_fail_alone(picky_server) -> None:
    app, url = picky_server
    sizes: list[int] = []
    lock = threading.Lock()

    def observe(endpoint: str, version: int, rows: int) -> None:
        with lock:
            sizes.append(rows)

    app.state.serving.on_batch.append(observe)

    # good requests only: a batch that succeeds is observed whole, so grouping shows in sizes
    clean = _post_all(url, [60.0 + i for i in range(96)])
    assert all(status == 200 and body["predictions"] == [1] for status, body in clean)
    assert max(sizes) > 1  # requests were grouped
    assert sum(sizes) < 96 + len(sizes)  # and fewer model calls than requests

    # one request in ten is refused by the model: it fails alone, its neighbours are answered
    incomes = [-1.0 if i % 10 == 0 else 60.0 + i for i in range(160)]
    for i, (status, body) in enumerate(_post_all(url, incomes)):
        if i % 10 == 0:
            assert status == 422, body  # the body says why, should this ever flake
            assert body["error"]["code"] == "prediction_failed", body
            assert "negative income" in body["error"]["message"]
        else:
            assert status == 200 and body["predictions"] == [1], body
