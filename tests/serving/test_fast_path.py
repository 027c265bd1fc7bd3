"""The numeric fast path takes only what the signature check takes; it predicts and logs alike."""

from __future__ import annotations

import asyncio
import io
import random
import threading
import time

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import passerelle as psl
from passerelle.registry.matrix import MatrixPlan
from passerelle.registry.signature import infer_signature, to_table, validate_input
from passerelle.sdk.client import Client
from passerelle.sdk.transport import InProcessTransport
from passerelle.serving.batching import INLINE_SECONDS, Batcher
from tests.serving.conftest import Served

SIGNATURE = infer_signature([{"age": 41, "income": 61.5}])  # age: integer, income: float
NUMBERS = [0, 7, -3, 2**60, 2**70, 1.5, -0.0, 1e300]
OTHERS = [True, False, None, "3", "x", [1], {"a": 1}]


def _general(records: list) -> np.ndarray | None:
    """What the general path makes of ``records``: the matrix it accepts, or None."""
    try:
        table = validate_input(to_table(records), SIGNATURE)
    except Exception:
        return None
    return np.column_stack(
        [table.column(c).to_numpy(zero_copy_only=False) for c in ("age", "income")]
    )


def _random_record(rng: random.Random) -> dict:
    def value():
        return rng.choice(NUMBERS if rng.random() < 0.9 else OTHERS)

    record = {"age": value(), "income": value()}
    if rng.random() < 0.1:
        record.pop(rng.choice(["age", "income"]))
    if rng.random() < 0.1:
        record["extra"] = 1
    return record


def test_the_matrix_plan_takes_only_what_the_signature_check_takes() -> None:
    plan = MatrixPlan.from_signature(SIGNATURE)
    assert plan is not None and plan.columns == ("age", "income") and plan.integer == (0,)
    rng = random.Random(7)
    taken = refused = 0
    for _ in range(3000):
        records = [_random_record(rng) for _ in range(rng.randint(1, 3))]
        fast, general = plan.matrix(records), _general(records)
        if fast is None:
            refused += 1  # the general path decides (and names the columns at fault)
            continue
        taken += 1
        assert general is not None, f"fast path took what the signature refuses: {records}"
        assert np.array_equal(fast, general.astype(np.float64)), records
    assert taken > 100 and refused > 100  # both sides of the rule were exercised


def test_plans_exist_only_for_all_numeric_signatures() -> None:
    assert MatrixPlan.from_signature(infer_signature([{"age": 1, "plan": "pro"}])) is None
    assert MatrixPlan.from_signature(infer_signature([{"ok": True}])) is None
    assert MatrixPlan.from_signature(None) is None
    single = MatrixPlan.from_signature(infer_signature([{"x": 1.0}]))
    assert single is not None and single.matrix([{"x": 2}, {"x": 3.5}]).tolist() == [[2.0], [3.5]]


def test_fast_and_general_paths_predict_like_the_estimator(served: Served) -> None:
    served.change(action="deploy", version=1)
    frame = served.X.head(50)
    expected = served.models[1].predict(frame).tolist()
    assert served.predict(frame.to_dict("records"))["predictions"] == expected
    sink = pa.BufferOutputStream()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    r = served.http.post(
        "/v1/endpoints/churn/predict",
        content=sink.getvalue().to_pybytes(),
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    )
    assert r.status_code == 200 and r.json()["predictions"] == expected
    loaded = next(iter(served.app.state.serving._models.values()))
    assert loaded._takes_matrix is True  # verified once, then the matrix goes straight in


def test_a_model_that_needs_column_names_keeps_its_dataframe(served: Served, app, settings) -> None:
    pipeline = make_pipeline(
        ColumnTransformer([("scaled", StandardScaler(), ["income"])], remainder="passthrough"),
        LogisticRegression(),
    ).fit(served.X, served.X["income"] > 50)
    _deploy(served, app, settings, pipeline, "named")
    rows = served.X.head(20).to_dict("records")
    got = served.predict(rows, name="named")["predictions"]
    assert got == pipeline.predict(served.X.head(20)).tolist()
    assert served.predict(rows, name="named")["predictions"] == got
    loaded = [m for k, m in served.app.state.serving._models.items() if k[1] == "named"]
    assert loaded and loaded[0]._takes_matrix is False


def test_frames_log_the_same_rows_as_records(served: Served) -> None:
    served.change(action="deploy", version=1)
    served.change(action="configure", redact=["income"], request_key="age")
    rows = [{"age": 41, "income": 61.5}, {"age": 20, "income": 10.0}]
    fast = served.predict(rows)["prediction_ids"]
    table = pa.Table.from_pylist(rows)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    r = served.http.post(
        "/v1/endpoints/churn/predict",
        content=buf.getvalue(),
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    general = r.json()["prediction_ids"]
    log = {
        r["prediction_id"]: r for r in served.http.get("/api/v1/endpoints/churn/log").json()["rows"]
    }
    for a, b in zip(fast, general, strict=True):
        got, want = log[a], log[b]
        assert got["input.age"] == want["input.age"] and isinstance(got["input.age"], int)
        assert got["input.income"] == want["input.income"] == "***"
        for key in ("endpoint", "version", "route", "status", "output", "request_key"):
            assert got[key] == want[key], key
    assert log[fast[0]]["request_key"] == "41"  # the first record's field keys the request


def test_a_fast_model_runs_on_the_event_loop_and_a_slow_one_in_a_thread() -> None:
    async def calls(delay: float) -> list[bool]:
        loop_thread = threading.get_ident()
        on_loop: list[bool] = []

        def predict_many(batch):
            on_loop.append(threading.get_ident() == loop_thread)
            time.sleep(delay)
            return [None] * len(batch)

        batcher = Batcher(predict_many, max_rows=10, max_wait=0)
        for _ in range(5):
            await batcher.submit({}, [{}], None, None, None, "primary")
        batcher.close()
        return on_loop

    fast = asyncio.run(calls(0))
    assert fast[0] is False and all(fast[1:])  # unmeasured first, then measured and inlined
    slow = asyncio.run(calls(INLINE_SECONDS * 2))
    assert not any(slow)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"age": "41", "income": 1.0}, "age"),
        ({"age": 1.5, "income": 1.0}, "age"),
        ({"age": 2**70, "income": 1.0}, "age"),
    ],
)
def test_refusals_still_name_the_field(served: Served, bad: dict, field: str) -> None:
    served.change(action="deploy", version=1)
    r = served.http.post("/v1/endpoints/churn/predict", json={"inputs": [bad]})
    assert r.status_code == 422 and r.json()["error"]["field"] == field


class _Contrarian:
    """A classifier whose labels are not its most likely class (as with Platt scaling)."""

    classes_ = np.array([0, 1])

    def predict(self, frame):
        return np.ones(len(frame), dtype=np.int64)

    def predict_proba(self, frame):
        return np.tile([0.9, 0.1], (len(frame), 1))


def _deploy(served: Served, app, settings, model, name: str) -> None:
    client = Client(home=settings.home, transport=InProcessTransport(app))
    with psl.start_run(experiment=name, client=client):
        uri = psl.log_model(model, "model", input_example=served.X.head(5))
    version = psl.register_model(uri, name=name, client=client).version
    client.close()
    served.change(name, action="deploy", version=version, model=name)


def test_class_probabilities_are_logged_with_each_prediction(served: Served) -> None:
    served.change(action="deploy", version=1)
    frame = served.X.head(30)
    fast = served.predict(frame.to_dict("records"))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    r = served.http.post(
        "/v1/endpoints/churn/predict",
        content=buf.getvalue(),
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    general = r.json()
    model = served.models[1]
    assert fast["predictions"] == general["predictions"] == model.predict(frame).tolist()
    log = {
        r["prediction_id"]: r for r in served.http.get("/api/v1/endpoints/churn/log").json()["rows"]
    }
    expected = model.predict_proba(frame)
    for ids in (fast["prediction_ids"], general["prediction_ids"]):
        logged = [orjson.loads(log[i]["proba"]) for i in ids]
        assert all(set(p) == {"0", "1"} for p in logged)
        got = np.array([[p["0"], p["1"]] for p in logged])
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    loaded = next(iter(served.app.state.serving._models.values()))
    assert loaded._labels_from_proba is True  # one predict_proba call now gives both


def test_labels_that_are_not_the_most_likely_class_come_from_predict(
    served: Served, app, settings
) -> None:
    _deploy(served, app, settings, _Contrarian(), "contrarian")
    for _ in range(3):
        answer = served.predict(served.X.head(4).to_dict("records"), name="contrarian")
        assert answer["predictions"] == [1, 1, 1, 1]  # predict's answer, not the argmax
    rows = served.http.get("/api/v1/endpoints/contrarian/log").json()["rows"]
    assert [orjson.loads(r["proba"]) for r in rows[:2]] == [{"0": 0.9, "1": 0.1}] * 2
    loaded = [m for k, m in served.app.state.serving._models.items() if k[1] == "contrarian"]
    assert loaded[0]._labels_from_proba is False
