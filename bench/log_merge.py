"""Reading the inference log before and after merging compaction, in one run.

    uv run python bench/log_merge.py                 # 2,000 parts of 10 predictions
    uv run python bench/log_merge.py --parts 10000

A busy process compacts its spool into a part every two seconds: an hour and seven minutes of
traffic leaves 2,000 parts. The script writes that many small parts for one endpoint and day
into a local store, then times the readers that pay per part (the log read behind the log API
and performance windows, and the lookup behind every feedback request) three times each, best
kept: on the small parts, right after one merge pass (the sources still there, skipped), and
after the grace period (the sources deleted). It checks that every reader finds each prediction
exactly once at every stage.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from passerelle.core.db import make_engine, make_session_factory, migrate
from passerelle.core.ids import now_ms
from passerelle.core.store import ObjectStore
from passerelle.serving.inference_log import InferenceLog
from passerelle.serving.log_parts import GRACE_MS


def best_of(work: Callable[[], object], reps: int = 3) -> float:
    best = float("inf")
    for _ in range(reps):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=10, help="predictions per part")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="log-merge-"))
    store = ObjectStore(str(folder / "store"), spool_dir=folder / "tmp")
    engine = make_engine(f"sqlite:///{folder / 'db.sqlite'}")
    migrate(engine)
    log = InferenceLog(folder / "spool", store, make_session_factory(engine))
    start = now_ms() - args.parts * 2000
    day = time.strftime("%Y-%m-%d", time.gmtime(start / 1000))
    for i in range(args.parts):
        ts = [start + i * 2000 + j for j in range(args.rows)]
        part = pa.table(
            {
                "prediction_id": [f"{t:012x}{i:010x}{j:010x}" for j, t in enumerate(ts)],
                "endpoint_id": [1] * args.rows,
                "ts": ts,
                "input.x": [float(j) for j in range(args.rows)],
                "output": [1] * args.rows,
            }
        )
        store.put_named_table(f"inference/endpoint=e/date={day}/part-{i:06d}.parquet", part)
    total = args.parts * args.rows
    probe = [f"{start + 2000:012x}{1:010x}{0:010x}"]  # the first prediction of the second part

    def stage(name: str) -> None:
        assert log.read("e").num_rows == total and log.lookup(probe) == {probe[0]: 1}
        read, lookup = best_of(lambda: log.read("e")), best_of(lambda: log.lookup(probe))
        objects = len(store.list_named("inference/"))
        print(f"| {name} | {objects:,} | {read * 1000:,.1f} | {lookup * 1000:,.1f} |")

    print(f"{args.parts:,} parts of {args.rows} predictions ({total:,} in all), local store\n")
    print("| stage | objects | log read, ms | feedback lookup, ms |")
    print("|---|---:|---:|---:|")
    stage("small parts")
    now = now_ms()
    took = best_of(lambda: log.merge(now), reps=1)
    stage(f"after one merge pass ({took:.2f} s)")
    log.merge(now + GRACE_MS)
    stage("after the grace (sources deleted)")


if __name__ == "__main__":
    main()
