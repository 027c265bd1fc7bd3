"""The inference log and feedback joined to it."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from tests.serving.conftest import Served

ROW = {"age": 41, "income": 61.5}


def test_every_prediction_is_logged_with_its_inputs(served: Served) -> None:
    served.change(action="deploy", version=1)
    served.change(action="configure", redact=["income"])
    ids = served.predict([ROW, {"age": 20, "income": 10.0}])["prediction_ids"]
    rows = {
        r["prediction_id"]: r for r in served.http.get("/api/v1/endpoints/churn/log").json()["rows"]
    }
    assert set(ids) <= set(rows)
    first = rows[ids[0]]
    assert first["input.age"] == 41 and first["input.income"] == "***"  # redacted before writing
    assert first["version"] == 1 and first["route"] == "primary" and first["status"] == "ok"
    assert first["latency_ms"] >= 0 and first["ts"] > 0


def test_log_parts_are_parquet_partitioned_by_endpoint_and_day(app, served: Served) -> None:
    served.change(action="deploy", version=1)
    served.predict([ROW])
    served.http.get("/api/v1/endpoints/churn/log")  # compacts
    keys = app.state.store.list_named("inference/endpoint=churn/")
    assert keys and all("/date=" in k and k.endswith(".parquet") for k in keys)


def test_parquet_and_arrow_bodies(served: Served) -> None:
    served.change(action="deploy", version=1)
    table = pa.Table.from_pandas(served.X.head(100), preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    r = served.http.post(
        "/v1/endpoints/churn/predict",
        content=buf.getvalue(),
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert r.status_code == 200 and len(r.json()["predictions"]) == 100
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    r = served.http.post(
        "/v1/endpoints/churn/predict",
        content=sink.getvalue().to_pybytes(),
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    )
    assert r.status_code == 200 and len(r.json()["predictions"]) == 100


def test_feedback_single_bulk_and_unknown(served: Served) -> None:
    served.change(action="deploy", version=1)
    ids = served.predict([ROW, ROW, ROW])["prediction_ids"]
    r = served.http.post("/api/v1/feedback", json={"prediction_id": ids[0], "ground_truth": 1})
    assert r.status_code == 202 and r.json() == {"accepted": 1}
    bulk = {
        "items": [
            {"prediction_id": ids[1], "ground_truth": 0},
            {"prediction_id": ids[2], "score": 0.5},
        ]
    }
    assert served.http.post("/api/v1/feedback", json=bulk).json() == {"accepted": 2}
    unknown = "f" * 32
    r = served.http.post(
        "/api/v1/feedback",
        json={"items": [{"prediction_id": ids[0], "ground_truth": 0}, {"prediction_id": unknown}]},
    )
    assert r.status_code == 404 and unknown in r.json()["error"]["message"]
    rows = {
        r["prediction_id"]: r for r in served.http.get("/api/v1/endpoints/churn/log").json()["rows"]
    }
    assert rows[ids[0]]["ground_truth"] == 1  # the rejected call changed nothing
    assert rows[ids[1]]["ground_truth"] == 0 and rows[ids[2]]["score"] == 0.5
    r = served.http.post("/api/v1/feedback", json={"prediction_id": "not-hex"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "prediction_id"


def test_shutdown_compacts_the_spool(app, served: Served) -> None:
    """A stopped process leaves nothing in its spool (a deleted pod loses its disk)."""
    from fastapi.testclient import TestClient

    from passerelle.core.spool import recoverable

    served.change(action="deploy", version=1)
    with TestClient(app) as http:  # runs the lifespan: shutdown on exit
        ids = http.post("/v1/endpoints/churn/predict", json={"inputs": [ROW]}).json()[
            "prediction_ids"
        ]
    spool_dir = app.state.serving.log.spool_dir
    assert recoverable(spool_dir, "inference") == []
    assert not list(spool_dir.glob("*.spool"))
    keys = app.state.store.list_named("inference/endpoint=churn/")
    logged = {
        pid
        for k in keys
        for pid in app.state.store.read_named_table(k)["prediction_id"].to_pylist()
    }
    assert set(ids) <= logged


def test_the_log_reads_only_the_columns_asked_for(app, served: Served) -> None:
    served.change(action="deploy", version=1)
    served.predict([ROW, ROW])
    log = app.state.serving.log
    everything = log.read("churn")
    assert {"input.age", "input.income", "output", "ts"} <= set(everything.column_names)
    some = log.read("churn", columns=["prediction_id", "output", "no_such_column"])
    assert set(some.column_names) == {"prediction_id", "output", "ts"}  # ts orders the rows
    assert some["prediction_id"].to_pylist() == everything["prediction_id"].to_pylist()
