"""Serving fixtures: an app with a registered model in two versions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

import passerelle as psl
from passerelle.sdk.client import Client
from passerelle.sdk.transport import InProcessTransport


@dataclass
class Served:
    app: FastAPI
    http: TestClient
    X: pd.DataFrame
    models: dict[int, LogisticRegression]

    def change(self, name: str = "churn", **body) -> dict:
        r = self.http.post(f"/api/v1/endpoints/{name}/deployments", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def predict(self, rows: list[dict], name: str = "churn", **kw) -> dict:
        r = self.http.post(f"/v1/endpoints/{name}/predict", json={"inputs": rows}, **kw)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def served(app: FastAPI, settings, tmp_path, monkeypatch) -> Iterator[Served]:
    monkeypatch.chdir(tmp_path)
    client = Client(home=settings.home, transport=InProcessTransport(app))
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"age": rng.integers(18, 80, 300), "income": rng.normal(50, 10, 300)})
    y = (X["income"] > 50).astype(int)
    models = {}
    for version, C in ((1, 1.0), (2, 0.001)):
        with psl.start_run(experiment="churn", client=client):
            models[version] = LogisticRegression(C=C).fit(X, y)
            uri = psl.log_model(models[version], "model", input_example=X.head(10))
        assert psl.register_model(uri, name="churn", client=client).version == version
    with TestClient(app, raise_server_exceptions=False) as http:
        yield Served(app, http, X, models)
    client.close()
