"""Merging compaction: a day's small log parts become one, and every reader sees each
prediction exactly once before, during and after the merge."""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from passerelle.core import lease
from passerelle.core.db import session_scope
from passerelle.core.ids import now_ms
from passerelle.monitoring.drift.windows import LogReader
from passerelle.serving import log_parts
from passerelle.serving.inference_log import MERGE_LEASE
from passerelle.serving.log_parts import GRACE_MS, live_parts
from tests.conftest import _build_app
from tests.serving.conftest import Served

PREFIX = "inference/endpoint=churn/"


def predict_in_parts(served: Served, parts: int, rows: int = 3) -> list[str]:
    """``parts`` compactions of ``rows`` predictions each: one small part each."""
    ids: list[str] = []
    for i in range(parts):
        batch = [{"age": 20 + i, "income": 40.0 + j} for j in range(rows)]
        ids += served.predict(batch)["prediction_ids"]
        served.app.state.serving.log.compact()
    return ids


def logged_ids(served: Served) -> Counter[str]:
    """Prediction ids as the log API returns them, with how often each comes back."""
    r = served.http.get("/api/v1/endpoints/churn/log", params={"limit": 100_000})
    assert r.status_code == 200, r.text
    return Counter(row["prediction_id"] for row in r.json()["rows"])


def rows_through_duckdb(served: Served) -> int:
    """What the drift and performance windows read (DuckDB over the live parts)."""
    reader = LogReader(served.app.state.store, "churn")
    try:
        return sum(t.num_rows for t in reader.read(0, now_ms() + 60_000, ["age"]))
    finally:
        reader.close()


def test_small_parts_merge_into_one_and_each_prediction_is_read_once(served: Served) -> None:
    served.change(action="deploy", version=1)
    ids = predict_in_parts(served, 20)
    store, log = served.app.state.store, served.app.state.serving.log
    assert len(store.list_named(PREFIX)) == 20
    assert logged_ids(served) == Counter(ids)

    now = now_ms()
    assert log.merge(now) == 20
    keys = store.list_named(PREFIX)
    merged = [k for k in keys if log_parts.is_merged(k)]
    assert len(keys) == 21 and len(merged) == 1  # the sources stay for readers that listed them
    assert live_parts(store, PREFIX) == merged
    assert logged_ids(served) == Counter(ids)  # once each, not twice
    assert rows_through_duckdb(served) == len(ids)

    assert log.merge(now + 1000) == 0  # nothing left to merge; sources kept within the grace
    assert len(store.list_named(PREFIX)) == 21
    log.merge(now + GRACE_MS)
    assert store.list_named(PREFIX) == merged  # after the grace the sources go
    assert logged_ids(served) == Counter(ids)
    assert rows_through_duckdb(served) == len(ids)

    # feedback finds predictions in the merged part, and is joined to them
    r = served.http.post("/api/v1/feedback", json={"prediction_id": ids[5], "ground_truth": 1})
    assert r.status_code == 202, r.text
    rows = served.http.get("/api/v1/endpoints/churn/log").json()["rows"]
    assert [row["ground_truth"] for row in rows if row["prediction_id"] == ids[5]] == [1]


def test_a_reader_listing_before_the_merge_and_a_duplicate_merge_read_each_row_once(
    served: Served,
) -> None:
    served.change(action="deploy", version=1)
    ids = predict_in_parts(served, 16)
    store, log = served.app.state.store, served.app.state.serving.log
    before = store.list_named(PREFIX)
    now = now_ms()
    log.merge(now)
    # a reader that listed before the merge still finds every part it listed, within the grace
    assert log_parts.resolve(store, before)[0] == before
    assert sum(store.read_named_table(k).num_rows for k in before) == len(ids)

    # a second process merged the same parts (a lease taken over from a hung holder): the
    # first merge counts, the second is left out, and a later pass deletes it
    partition = before[0].rsplit("/", 1)[0]
    assert log_parts._merge_small(store, partition, list(before), now + 1) == len(before)
    assert len([k for k in store.list_named(PREFIX) if log_parts.is_merged(k)]) == 2
    assert logged_ids(served) == Counter(ids)
    assert rows_through_duckdb(served) == len(ids)
    log.merge(now + 1 + GRACE_MS)
    assert len(store.list_named(PREFIX)) == 1
    assert logged_ids(served) == Counter(ids)


def test_merged_parts_merge_again_once_settled_and_large_parts_are_left(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_parts, "MIN_PARTS", 2)
    monkeypatch.setattr(log_parts, "TARGET_ROWS", 12)
    served.change(action="deploy", version=1)
    store, log = served.app.state.store, served.app.state.serving.log
    large = predict_in_parts(served, 1, rows=12)  # a part at the target already
    ids = large + predict_in_parts(served, 2)
    now = now_ms()
    assert log.merge(now) == 2  # the two small parts; the large one stays as it is
    ids += predict_in_parts(served, 2)
    assert log.merge(now + 1) == 2  # the new parts; the first merge still has its sources
    assert len(live_parts(store, PREFIX)) == 3
    assert logged_ids(served) == Counter(ids)

    # after the grace, sources go and the two settled merged parts (6 rows each) merge
    assert log.merge(now + 1 + GRACE_MS) == 2
    assert logged_ids(served) == Counter(ids)
    live = live_parts(store, PREFIX)
    assert len(live) == 2 and sum(log_parts.is_merged(k) for k in live) == 1
    log.merge(now + 2 + 2 * GRACE_MS)
    assert sorted(store.list_named(PREFIX)) == sorted(live)
    assert logged_ids(served) == Counter(ids)
    assert rows_through_duckdb(served) == len(ids)


def test_a_crash_before_a_spool_file_was_removed_rewrites_nothing_merged_away_since(
    served: Served,
) -> None:
    """A crash between a part's upload and its spool file's removal leaves the file behind.
    By the time the process comes back the part may be merged, deleted, and its merged part
    merged again: recovering the file must not bring its rows back a second time, while a
    leftover that never reached the store is still written."""
    served.change(action="deploy", version=1)
    log, store = served.app.state.serving.log, served.app.state.store
    crashed_ids = served.predict([{"age": 30, "income": 51.0}] * 3)["prediction_ids"]
    sealed = log.spool.seal()
    kept = sealed.read_bytes()  # the file as the crash left it: its part uploaded, itself not
    log.compact()
    assert not sealed.exists()
    ids = crashed_ids + predict_in_parts(served, 15)
    now = now_ms()
    assert log.merge(now) == 16
    log.merge(now + GRACE_MS)  # the sources, the crashed file's part among them, are deleted
    ids += predict_in_parts(served, 15)
    assert log.merge(now + 2 * GRACE_MS) == 16  # the merged part is merged again
    log.merge(now + 3 * GRACE_MS)
    assert not any(sealed.stem in key for key in store.list_named(PREFIX))

    never_sent = served.predict([{"age": 40, "income": 60.0}] * 2)["prediction_ids"]
    unsent = log.spool.seal()  # a leftover whose part never reached the store
    sealed.write_bytes(kept)
    an_hour_ago = time.time() - 3600
    for path in (sealed, unsent):
        os.utime(path, (an_hour_ago, an_hour_ago))
    log.compact()  # what a restarted process does first
    assert not sealed.exists() and not unsent.exists()
    assert logged_ids(served) == Counter(ids + never_sent)
    assert rows_through_duckdb(served) == len(ids) + 2


def test_one_process_merges_at_a_time(served: Served) -> None:
    served.change(action="deploy", version=1)
    predict_in_parts(served, 16)
    store, log = served.app.state.store, served.app.state.serving.log
    now = now_ms()
    with session_scope(served.app.state.sessions) as session:
        assert lease.acquire(session, MERGE_LEASE, "another replica", 60_000, now)
    assert log.merge(now) is None  # another replica holds the lease
    assert len(store.list_named(PREFIX)) == 16
    assert log.merge(now + 61_000) == 16  # its lease ran out: this process takes over


def test_a_running_server_merges_in_the_background_and_hands_the_lease_over_at_shutdown(
    settings,
) -> None:
    import pyarrow as pa
    from fastapi.testclient import TestClient

    quick = settings.model_copy(update={"log_merge_interval": 0.1})
    built = _build_app(quick)
    app = next(built)
    store = app.state.store
    for i in range(16):  # parts as compaction writes them, from another replica say
        part = pa.table({"prediction_id": [f"p{i:02d}"], "ts": [1_764_900_000_000 + i]})
        store.put_named_table(f"{PREFIX}date=2025-12-05/part-{i:02d}.parquet", part)
    time.sleep(0.5)
    assert len(store.list_named(PREFIX)) == 16  # an app that is not serving leaves them
    try:
        with TestClient(app):  # serving: its lifespan starts the merging thread
            deadline = time.monotonic() + 30
            while len(live_parts(store, PREFIX)) > 1:
                assert time.monotonic() < deadline, "the parts were never merged"
                time.sleep(0.05)
            with session_scope(app.state.sessions) as session:
                assert lease.holder_of(session, MERGE_LEASE, now_ms()) is not None
        # stopped: the lease is handed over, so another replica merges at its next pass
        with session_scope(app.state.sessions) as session:
            assert lease.holder_of(session, MERGE_LEASE, now_ms()) is None
        (merged,) = live_parts(store, PREFIX)
        assert store.read_named_table(merged)["prediction_id"].to_pylist() == [
            f"p{i:02d}" for i in range(16)
        ]
    finally:
        built.close()
