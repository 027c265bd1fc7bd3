"""Registry fixtures: a trained pipeline and clients, embedded and remote."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tests.sdk.conftest import embedded_client, sdk_client, workdir  # noqa: F401


@pytest.fixture(scope="session")
def churn_data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(42)
    n = 300
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50.0, 12.0, n),
            "plan": rng.choice(["free", "pro", "team"], n),
        }
    )
    y = ((X["income"] > 50) ^ (X["plan"] == "free")).astype(int)
    return X, y


@pytest.fixture(scope="session")
def pipeline(churn_data) -> Pipeline:
    X, y = churn_data
    pre = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["plan"]), (StandardScaler(), ["age", "income"])
    )
    return make_pipeline(pre, LogisticRegression(max_iter=500)).fit(X, y)


class ThresholdModel:
    """A generic Python model; its unpickling leaves a marker so tests see when it happens."""

    marker: str | None = None

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return (df["income"].to_numpy() > self.threshold).astype(int)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if state.get("marker"):
            with open(state["marker"], "a") as fh:
                fh.write("unpickled\n")


@pytest.fixture
def marker_model(tmp_path) -> Iterator[ThresholdModel]:
    model = ThresholdModel(50.0)
    model.marker = str(tmp_path / "unpickled.txt")
    yield model
