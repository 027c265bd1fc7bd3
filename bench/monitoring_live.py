"""Live performance over a large inference log: how long ``performance`` takes, and the canary
analysis and an alert figure over the same log.

    uv run python bench/monitoring_live.py --rows 100000 --rows 1000000

Per size: a fresh embedded home, ``rows`` predictions of a probabilistic binary classifier over
seven days (two versions, primary and canary), feedback for half of them, written by a child
process; then each figure is computed twice and the second (warm) time is reported, with the
measuring process's peak resident memory. Feedback rows are written straight into the database
(a bench shortcut: the feedback route checks every id against the log first, which is not what
is measured here).
"""

from __future__ import annotations

import argparse
import resource
import secrets
import tempfile
import time
from pathlib import Path

import numpy as np


def seed(home: Path, rows: int):
    from passerelle.app import create_app
    from passerelle.core.db import session_scope
    from passerelle.core.settings import Settings
    from passerelle.core.upsert import upsert
    from passerelle.serving.models import DeploymentEvent, Endpoint, Feedback

    app = create_app(Settings(home=home, monitor_interval=0, _env_file=None))
    now = int(time.time() * 1000)
    start = now - 7 * 86_400_000
    with session_scope(app.state.sessions) as s:
        e = Endpoint(
            project_id=1,
            name="churn",
            model_name="churn",
            primary_version=1,
            canary_version=2,
            canary_weight=20.0,
            shadow_versions=[],
            primary_history=[],
            redact=[],
            paused=False,
            revision=2,
            created_at=start,
            updated_at=start,
        )
        s.add(e)
        s.flush()
        after = {
            "primary_version": 1,
            "canary_version": 2,
            "canary_weight": 20.0,
            "shadow_versions": [],
            "paused": False,
        }
        s.add(
            DeploymentEvent(
                endpoint_id=e.id,
                revision=2,
                action="canary",
                detail={"before": after, "after": after},
                actor="bench",
                reason="",
                evidence=None,
                at=start,
            )
        )
        endpoint_id = e.id
    rng = np.random.default_rng(0)
    log = app.state.serving.log
    chunk = 100_000
    for offset in range(0, rows, chunk):
        n = min(chunk, rows - offset)
        p1 = rng.uniform(size=n)
        ts = np.sort(rng.integers(start, now, n))
        canary = rng.uniform(size=n) < 0.2
        records, feedback = [], []
        for i in range(n):
            pid = f"{int(ts[i]):012x}{secrets.token_hex(10)}"
            records.append(
                {
                    "prediction_id": pid,
                    "endpoint": "churn",
                    "endpoint_id": endpoint_id,
                    "version": 2 if canary[i] else 1,
                    "route": "canary" if canary[i] else "primary",
                    "inputs": {"x": float(p1[i])},
                    "output": {
                        "label": str(int(p1[i] > 0.5)),
                        "proba": {"0": float(1 - p1[i]), "1": float(p1[i])},
                    },
                    "latency_ms": float(rng.gamma(4, 1)),
                    "status": "ok",
                    "request_key": None,
                    "ts": int(ts[i]),
                }
            )
            if i % 2 == 0:
                feedback.append(
                    {
                        "prediction_id": pid,
                        "endpoint_id": endpoint_id,
                        "ground_truth": int(rng.uniform() < p1[i]),
                        "score": None,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        log.append(records)
        log.compact()
        with session_scope(app.state.sessions) as s:
            for k in range(0, len(feedback), 20_000):
                upsert(s, Feedback, feedback[k : k + 20_000], ["prediction_id"], ["ground_truth"])
    return app


def _seed_only(home: Path, rows: int) -> None:
    seed(home, rows).state.engine.dispose()


def warm(fn):
    fn()
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def measure(app, rows: int) -> str:
    from passerelle.core.auth import ANONYMOUS_ADMIN
    from passerelle.core.db import session_scope
    from passerelle.monitoring import alerts, policy, service
    from passerelle.monitoring.schemas import AlertRuleCreate

    log, sessions = app.state.serving.log, app.state.sessions

    def perf():
        with sessions() as s:
            return service.performance_report(
                s, ANONYMOUS_ADMIN, log, "churn", window="1d", since="8d"
            )

    def canary():
        with sessions() as s:
            return policy.analyse(s, ANONYMOUS_ADMIN, log, "churn")

    def figures():
        with sessions() as s:
            return alerts.compute_figures(s, ANONYMOUS_ADMIN, log, int(time.time() * 1000))

    with session_scope(sessions) as s:
        for metric in ("accuracy", "estimated_accuracy", "latency_p95", "error_rate"):
            body = AlertRuleCreate(endpoint="churn", metric=metric, below=0.5, window="1d")
            alerts.create_rule(s, ANONYMOUS_ADMIN, body)
    t_perf, report = warm(perf)
    t_canary, analysis = warm(canary)
    t_fig, _ = warm(figures)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert len(report["windows"]) >= 14 and analysis["verdict"] in ("no_worse", "worse")
    return f"| {rows:,} | {t_perf:.2f} | {t_canary:.2f} | {t_fig:.2f} | {peak:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="predictions in the log")
    args = parser.parse_args()
    print(
        "| predictions | performance, 1d windows (s) | canary analysis (s) | 4 alert figures (s) |"
        " peak RSS (MB) |"
    )
    print("|---:|---:|---:|---:|---:|")
    import multiprocessing

    from passerelle.app import create_app
    from passerelle.core.settings import Settings

    for rows in args.rows or [100_000]:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            # seeded in another process, so the peak memory below is the measurement's own
            child = multiprocessing.get_context("spawn").Process(
                target=_seed_only, args=(home, rows)
            )
            child.start()
            child.join()
            assert child.exitcode == 0, "seeding failed"
            app = create_app(Settings(home=home, monitor_interval=0, _env_file=None))
            try:
                print(measure(app, rows), flush=True)
            finally:
                app.state.engine.dispose()


if __name__ == "__main__":
    main()
