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


def log_records(
    deployed: Deployed, start: int, frame: pd.DataFrame, version: int = 1, says_yes: bool = False
) -> list[dict]:
    """Log records of ``frame`` from ``start``, a second apart; ``says_yes``: a model that
    answers 1 to everyone rather than whether the income is above 50."""
    eid = deployed.endpoint_id
    return [
        {
            "prediction_id": f"{start + i:012x}{i:020x}",
            "endpoint": "churn",
            "endpoint_id": eid,
            "version": version,
            "route": "primary" if version == 1 else "shadow",
            "inputs": {"age": int(row.age), "income": float(row.income)},
            "output": 1 if says_yes else int(row.income > 50),
            "latency_ms": 1.0,
            "status": "ok",
            "request_key": None,
            "ts": start + i * 1000,
        }
        for i, row in enumerate(frame.itertuples())
    ]


def register_second_version(deployed: Deployed) -> None:
    """Version 2 of ``churn`` (not deployed): log records may name it."""
    y = (deployed.train["income"] > 50).astype(int)
    with psl.start_run(experiment="churn", client=deployed.client, capture_lineage=False):
        uri = psl.log_model(LogisticRegression().fit(deployed.train, y), "model")
    assert psl.register_model(uri, name="churn", client=deployed.client).version == 2
