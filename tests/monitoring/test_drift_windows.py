"""Windows of the inference log read with DuckDB, from a local folder and from S3."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from passerelle.core.errors import InvalidInput
from passerelle.core.store import ObjectStore
from passerelle.monitoring.drift.compare import build_profile
from passerelle.monitoring.drift.windows import bounds, parse_duration, summarise_windows
from tests._s3 import S3Location

HOUR = 3_600_000
T0 = 1_700_002_800_000  # a whole hour


def _part(store: ObjectStore, day: str, name: str, rows: list[dict]) -> None:
    """A Parquet part in the inference log's layout (the contract serving writes)."""
    store.put_named_table(f"inference/endpoint=churn/date={day}/part-{name}.parquet", pa.table(
        {
            "prediction_id": [f"p{i}" for i in range(len(rows))],
            "endpoint": ["churn"] * len(rows),
            "endpoint_id": [1] * len(rows),
            "version": [1] * len(rows),
            "route": [r["route"] for r in rows],
            "input.income": [r["income"] for r in rows],
            "input.plan": [r["plan"] for r in rows],
            'input.odd" name); --': [r["plan"] for r in rows],  # names are user data
            "output": [int(r["income"] > 50) for r in rows],
            "latency_ms": [1.0] * len(rows),
            "status": [r.get("status", "ok") for r in rows],
            "request_key": [None] * len(rows),
            "ts": [r["ts"] for r in rows],
        }
    ))  # fmt: skip


def _check_store(store: ObjectStore) -> None:
    rng = np.random.default_rng(0)
    plans = rng.choice(["a", "b"], 500)
    reference = pa.table(
        {
            "income": rng.normal(50, 10, 500),
            "plan": plans,
            'odd" name); --': plans,
            "output": [0] * 500,
        }
    )
    profile = build_profile(reference)
    rows = [
        {"route": "primary", "income": float(v), "plan": "a", "ts": T0 + i * 1000}
        for i, v in enumerate(rng.normal(50, 10, 40))
    ]
    rows += [{"route": "shadow", "income": 0.0, "plan": "z", "ts": T0 + 5}]  # a copy: left out
    rows += [{"route": "primary", "income": 0.0, "plan": "z", "ts": T0 + 6, "status": "error"}]
    rows += [{"route": "canary", "income": 70.0, "plan": "b", "ts": T0 + HOUR + 10}]
    _part(store, "2023-11-14", "one", rows[:20])
    _part(store, "2023-11-14", "two", rows[20:-1])
    _part(store, "2023-11-15", "one", rows[-1:])  # the second window starts at midnight
    spans = bounds(T0, T0 + 2 * HOUR, HOUR)
    first = summarise_windows(
        store, "churn", profile, "monitoring/drift/test", spans, T0 + 3 * HOUR
    )
    assert [(w.rows, w.cached) for w in first] == [(40, False), (1, False)]
    assert first[0].sketches["plan"].counts == {"a": 40}
    assert first[0].sketches['odd" name); --'].counts == {"a": 40}
    assert first[1].sketches["income"].count == 1 and first[1].sketches["plan"].counts == {"b": 1}
    again = summarise_windows(
        store, "churn", profile, "monitoring/drift/test", spans, T0 + 3 * HOUR
    )
    assert [(w.rows, w.cached) for w in again] == [(40, True), (1, True)]
    assert np.array_equal(again[0].sketches["income"].inside, first[0].sketches["income"].inside)


def test_windows_from_a_local_store(tmp_path) -> None:
    _check_store(ObjectStore(str(tmp_path / "store"), spool_dir=tmp_path / "spool"))


@pytest.mark.s3
def test_windows_from_s3(tmp_path, s3: S3Location) -> None:
    store = ObjectStore(s3.root, spool_dir=tmp_path / "spool", s3_endpoint_url=s3.endpoint_url)
    _check_store(store)


def test_durations_and_window_bounds() -> None:
    assert parse_duration("24h", "since") == 24 * HOUR
    assert parse_duration("15m", "window") == 900_000
    for bad in ("0h", "soon", "-1d", True, 0):
        with pytest.raises(InvalidInput) as err:
            parse_duration(bad, "window")
        assert err.value.field == "window"
    assert bounds(T0 + 10, T0 + HOUR + 1, HOUR) == [(T0, T0 + HOUR), (T0 + HOUR, T0 + 2 * HOUR)]
    with pytest.raises(InvalidInput) as err:
        bounds(0, 3000 * HOUR, HOUR)
    assert err.value.field == "window"
