"""An app serving model ``churn`` v1, trained on a table logged as its training snapshot."""

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
from passerelle.core.auth import ANONYMOUS_ADMIN
from passerelle.sdk.client import Client
from passerelle.sdk.transport import InProcessTransport


def features(n: int, seed: int, income_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"age": rng.integers(18, 80, n), "income": rng.normal(50 + income_shift, 10, n)}
    )


@dataclass
class Deployed:
    app: FastAPI
    http: TestClient
    client: Client
    train: pd.DataFrame
    dataset_id: str

    @property
    def endpoint_id(self) -> int:
        return self.app.state.serving.config("churn", ANONYMOUS_ADMIN)["id"]

    def predict(self, frame: pd.DataFrame) -> None:
        rows = frame.to_dict(orient="records")
        r = self.http.post("/v1/endpoints/churn/predict", json={"inputs": rows})
        assert r.status_code == 200, r.text

    def monitoring_objects(self) -> list[str]:
        return self.app.state.store.list_named("monitoring/")


@pytest.fixture
def deployed(app: FastAPI, settings, tmp_path, monkeypatch) -> Iterator[Deployed]:
    monkeypatch.chdir(tmp_path)
    client = Client(home=settings.home, transport=InProcessTransport(app))
    train = features(300, seed=1)
    y = (train["income"] > 50).astype(int)
    with psl.start_run(experiment="churn", client=client, capture_lineage=False) as run:
        logged = run.log_dataset(train.assign(churned=y), name="train", context="training")
        uri = psl.log_model(LogisticRegression().fit(train, y), "model", input_example=train[:5])
    psl.register_model(uri, name="churn", client=client)
    with TestClient(app, raise_server_exceptions=False) as http:
        r = http.post(
            "/api/v1/endpoints/churn/deployments", json={"action": "deploy", "version": 1}
        )
        assert r.status_code == 200, r.text
        yield Deployed(app, http, client, train, logged["id"])
    client.close()
