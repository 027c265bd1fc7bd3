"""``psl.deploy``, ``rollback``, ``predict``, ``inference_log``, ``feedback`` and
``feedback_many``: embedded and against a live server."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

import passerelle as psl
from passerelle.core.errors import Conflict, InvalidInput, NotFound
from passerelle.sdk.client import Client
from passerelle.sdk.serving import Endpoint, Predictions, read_log, since_ms


def register_two_versions(client: Client) -> tuple[pd.DataFrame, dict[int, LogisticRegression]]:
    rng = np.random.default_rng(11)
    X = pd.DataFrame({"age": rng.integers(18, 80, 150), "income": rng.normal(50, 10, 150)})
    y = (X["income"] > 50).astype(int)
    models = {}
    for version, c in ((1, 1.0), (2, 0.001)):
        with psl.start_run(experiment="churn", client=client, capture_lineage=False) as run:
            models[version] = LogisticRegression(C=c).fit(X, y)
            uri = psl.log_model(models[version], "model", input_example=X.head(10), run=run)
        psl.register_model(uri, name="churn", client=client)
    return X, models


def test_deploy_predict_log_and_feedback(sdk_client: Client) -> None:
    X, models = register_two_versions(sdk_client)
    endpoint = psl.deploy("churn", version=1, reason="first", client=sdk_client)
    assert isinstance(endpoint, Endpoint)
    assert (endpoint.name, endpoint.model, endpoint.primary_version) == ("churn", "churn", 1)

    frame = psl.predict("churn", X.head(20), client=sdk_client)
    assert isinstance(frame, Predictions) and len(frame) == 20 and frame.model_version == 1
    np.testing.assert_array_equal(frame.predictions, models[1].predict(X.head(20)))
    as_frame = frame.to_pandas()
    assert list(as_frame.columns) == ["prediction", "prediction_id"]
    assert as_frame["prediction_id"].tolist() == frame.prediction_ids
    records = psl.predict("churn", X.head(3).to_dict(orient="records"), client=sdk_client)
    one = psl.predict("churn", {"age": 40, "income": 70.0}, client=sdk_client)
    columns = psl.predict("churn", {"age": [40, 20], "income": [70.0, 20.0]}, client=sdk_client)
    assert records.predictions == frame.predictions[:3]
    assert len(one) == 1 and one.predictions == columns.predictions[:1]

    log = psl.inference_log("churn", client=sdk_client)
    ids = frame.prediction_ids + records.prediction_ids + one.prediction_ids
    assert isinstance(log, pd.DataFrame) and set(ids) <= set(log["prediction_id"])
    row = log.set_index("prediction_id").loc[frame.prediction_ids[0]]
    assert row["input.age"] == X["age"].iloc[0] and row["route"] == "primary"
    assert row["version"] == 1 and row["output"] == frame.predictions[0]

    assert psl.feedback(ids[0], ground_truth=1, client=sdk_client) == 1
    items = [{"prediction_id": ids[1], "ground_truth": 0}, {"prediction_id": ids[2], "score": 0.3}]
    assert psl.feedback_many(items, client=sdk_client) == 2
    with pytest.raises(NotFound, match="f" * 32):
        psl.feedback("f" * 32, ground_truth=1, client=sdk_client)
    joined = psl.inference_log("churn", client=sdk_client).set_index("prediction_id")
    assert joined.loc[ids[0], "ground_truth"] == 1
    assert joined.loc[ids[1], "ground_truth"] == 0
    assert joined.loc[ids[2], "score"] == 0.3

    canary = psl.deploy("churn", canary=2, weight=100, client=sdk_client)
    assert (canary.canary_version, canary.canary_weight) == (2, 100)
    assert psl.predict("churn", X.head(2), client=sdk_client).model_version == 2
    back = psl.rollback("churn", reason="worse recall", client=sdk_client)
    assert (back.primary_version, back.canary_version) == (1, None)
    assert psl.predict("churn", X.head(2), client=sdk_client).model_version == 1


def test_promote_weight_shadow_and_refusals(embedded_client: Client) -> None:
    X, _ = register_two_versions(embedded_client)
    c = embedded_client
    with pytest.raises(NotFound, match="endpoint 'churn' not found"):
        psl.rollback("churn", client=c)
    psl.deploy("churn", version=1, client=c)
    with pytest.raises(Conflict, match="no canary"):
        psl.deploy("churn", weight=30, client=c)
    psl.deploy("churn", canary=2, client=c)
    assert psl.deploy("churn", weight=30, client=c).canary_weight == 30
    promoted = psl.deploy("churn", promote=True, reason="recall up", client=c)
    assert (promoted.primary_version, promoted.canary_version) == (2, None)
    assert psl.deploy("churn", shadow=1, client=c).shadow_versions == [1]
    answer = psl.predict("churn", X.head(4), request_key="user-7", client=c)
    assert answer.model_version == 2
    routes = psl.inference_log("churn", client=c).groupby("route")["version"].agg(set)
    assert routes.to_dict() == {"primary": {2}, "shadow": {1}}
    history = c.request("GET", "/api/v1/endpoints/churn/history")
    assert [h["action"] for h in history] == ["shadow", "promote", "weight", "canary", "deploy"]
    assert history[1]["reason"] == "recall up"

    for kwargs, field in [
        ({}, None),
        ({"version": 1, "canary": 2}, "canary"),
        ({"shadow": 1, "weight": 5}, "weight"),
        ({"promote": True, "weight": 5}, "weight"),
    ]:
        with pytest.raises(InvalidInput) as info:
            psl.deploy("churn", client=c, **kwargs)
        assert info.value.field == field
    with pytest.raises(NotFound, match="no version 9"):
        psl.deploy("churn", version=9, client=c)


def test_inference_log_since_limit_and_paging(embedded_client: Client) -> None:
    X, _ = register_two_versions(embedded_client)
    c = embedded_client
    psl.deploy("churn", version=1, client=c)
    early = psl.predict("churn", X.head(5), client=c).prediction_ids
    time.sleep(0.01)
    cut = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    late = psl.predict("churn", X.iloc[5:12], client=c).prediction_ids
    everything = psl.inference_log("churn", client=c)
    assert everything["prediction_id"].tolist() == early + late  # oldest first
    assert psl.inference_log("churn", since=cut, client=c)["prediction_id"].tolist() == late
    epoch = int(cut.timestamp() * 1000)
    assert psl.inference_log("churn", since=epoch, client=c)["prediction_id"].tolist() == late
    assert len(psl.inference_log("churn", since="1h", client=c)) == 12
    assert psl.inference_log("churn", limit=3, client=c)["prediction_id"].tolist() == early[:3]
    # pages of two rows, each starting at the last time seen: nothing lost, nothing twice
    paged = [r["prediction_id"] for r in read_log(c, "churn", None, None, page=2)]
    assert paged == early + late
    assert [r["prediction_id"] for r in read_log(c, "churn", None, 9, page=4)] == (early + late)[:9]
    empty = psl.inference_log("churn", since=dt.timedelta(seconds=-60), client=c)
    assert empty.empty and {"prediction_id", "version", "ts"} <= set(empty.columns)
    with pytest.raises(InvalidInput, match="limit"):
        psl.inference_log("churn", limit=0, client=c)
    with pytest.raises(NotFound):
        psl.inference_log("nope", client=c)


def test_tables_and_feedback_frames(embedded_client: Client) -> None:
    import polars as pl

    X, models = register_two_versions(embedded_client)
    c = embedded_client
    psl.deploy("churn", version=1, client=c)
    expected = models[1].predict(X.head(6)).tolist()
    arrow = psl.predict("churn", pa.Table.from_pandas(X.head(6), preserve_index=False), client=c)
    polars = psl.predict("churn", pl.from_pandas(X.head(6)), client=c)
    assert arrow.predictions == expected and polars.predictions == expected
    frame = pd.DataFrame(
        {"prediction_id": arrow.prediction_ids, "ground_truth": [1, 0, 1, 0, 1, 0]}
    )
    assert psl.feedback_many(frame, client=c) == 6
    log = psl.inference_log("churn", client=c).set_index("prediction_id")
    assert log.loc[arrow.prediction_ids, "ground_truth"].tolist() == [1, 0, 1, 0, 1, 0]
    for bad, message in [
        ([], "no feedback items"),
        ([{"ground_truth": 1}], "needs a prediction_id"),
        ([{"prediction_id": arrow.prediction_ids[0], "label": 1}], "unknown fields"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            psl.feedback_many(bad, client=c)
    with pytest.raises(NotFound, match="unknown prediction id"):
        psl.feedback_many([{"prediction_id": "0" * 32, "ground_truth": 1}], client=c)


def test_since_accepts_times_durations_and_epoch_milliseconds() -> None:
    now = dt.datetime.now(dt.UTC)
    now_ms = now.timestamp() * 1000
    aware = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
    assert since_ms(aware) == 1_717_243_200_000
    assert since_ms("2024-06-01T12:00:00+00:00") == 1_717_243_200_000
    assert since_ms(1_717_243_200_000) == 1_717_243_200_000
    assert since_ms(None) is None
    for text, back_ms in [("24h", 86_400_000), ("7d", 604_800_000), ("30m", 1_800_000)]:
        assert abs(since_ms(text) - (now_ms - back_ms)) < 5_000, text
    assert abs(since_ms(" 1.5h ") - (now_ms - 5_400_000)) < 5_000
    assert abs(since_ms(dt.timedelta(hours=2)) - (now_ms - 7_200_000)) < 5_000
    local = dt.datetime(2024, 6, 1, 12, 0)  # no time zone: local time, as Python reads it
    assert since_ms(local) == int(local.timestamp() * 1000)
    assert since_ms(dt.date(2024, 6, 1)) == int(dt.datetime(2024, 6, 1).timestamp() * 1000)
    for bad in ("yesterday", "24 hours", "-3d", "", True):
        with pytest.raises(InvalidInput) as info:
            since_ms(bad)  # type: ignore[arg-type]
        assert info.value.field == "since"
