"""UI fixtures: a tracking store filled through the service layer, and a headless Chromium."""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI

from passerelle.core.auth import ANONYMOUS_ADMIN
from passerelle.core.db import session_scope
from passerelle.tracking import artifacts, datasets, service
from passerelle.tracking.schemas import DatasetRef, MetricIn, RunCreate, RunUpdate

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
COMMIT = "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
NOTES = "Trained on the March extract.\nThreshold tuned on validation: 0.42\n"
BASE_TIME = 1_717_000_000_000  # ms; runs start one minute apart from here


@dataclass
class Seeded:
    """Ids of what ``seed_tracking`` created, for tests to open the matching pages."""

    experiment_id: int
    runs: dict[str, str] = field(default_factory=dict)  # run name -> run id
    child_id: str = ""
    dataset_digest: str = ""


def tiny_png() -> bytes:
    """A valid 2x2 PNG built by hand, so tests need no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    pixels = b"".join(b"\x00" + b"\x3b\x6e\xa5" * 2 for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


def parquet_bytes(rows: int = 50) -> bytes:
    table = pa.table(
        {
            "customer": [f"c{i:03d}" for i in range(rows)],
            "tenure": list(range(rows)),
            "churned": [i % 3 == 0 for i in range(rows)],
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


# name, penalty, C, final f1, final accuracy; started in this order, one minute apart
RUNS = [
    ("lr-l2-c1", "l2", "1.0", 0.81, 0.86),
    ("lr-l1-c0.1", "l1", "0.1", 0.72, 0.80),
    ("lr-l2-c10", "l2", "10", 0.88, 0.90),
    ("lr-l1-c1", "l1", "1.0", 0.65, 0.77),
]


def seed_tracking(app: FastAPI) -> Seeded:
    """One experiment of four finished runs with histories, artifacts, a dataset and lineage."""
    store = app.state.store
    who = ANONYMOUS_ADMIN
    with session_scope(app.state.sessions) as session:
        exp = service.create_experiment(
            session, who, "churn-model", description="Logistic baseline"
        )
        seeded = Seeded(experiment_id=exp.id)
        for i, (name, penalty, c, f1, acc) in enumerate(RUNS):
            start = BASE_TIME + i * 60_000
            body = RunCreate(
                experiment_id=exp.id,
                name=name,
                start_time=start,
                tags={"team": "retention"},
                code={
                    "git": True,
                    "commit": COMMIT,
                    "branch": "main",
                    "remote": "https://git.example.com/ds/churn.git",
                    "dirty": i == 1,
                    "diff_sha256": "ab" * 32 if i == 1 else None,
                },
                environment={
                    "python_version": "3.11.9",
                    "platform": "Linux-6.1-x86_64",
                    "packages_sha256": "cd" * 32,
                    "packages_count": 112,
                    "uv_lock_sha256": "ef" * 32,
                    "container_image": None,
                    "command": ["python", "train.py", "--penalty", penalty],
                },
            )
            run = service.create_run(session, who, body)
            service.log_params(session, who, run.id, {"penalty": penalty, "C": c})
            steps = 10
            service.log_metrics(
                session,
                who,
                run.id,
                [MetricIn(key="f1", value=f1 * (s + 1) / steps, step=s) for s in range(steps)]
                + [
                    MetricIn(key="accuracy", value=acc * (s + 1) / steps, step=s)
                    for s in range(steps)
                ],
            )
            service.update_run(
                session, who, run.id, RunUpdate(status="FINISHED", end_time=start + 42_000)
            )
            seeded.runs[name] = run.id
        first = seeded.runs["lr-l2-c1"]
        files = {
            "notes.txt": NOTES.encode(),
            "plots/confusion.png": tiny_png(),
            "plots/roc.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20">'
            b'<script>alert(1)</script><rect width="20" height="20" fill="#3b6ea5"/></svg>',
            "data/predictions.parquet": parquet_bytes(),
        }
        for path, data in files.items():
            artifacts.record_artifact(session, who, first, path, store.put_bytes(data))
        snapshot = store.put_bytes(parquet_bytes(30))
        ref = DatasetRef(
            name="customers",
            digest="9e" * 32,
            num_rows=30,
            num_columns=3,
            schema=[
                {"name": "customer", "type": "string"},
                {"name": "tenure", "type": "int64"},
                {"name": "churned", "type": "bool"},
            ],
            source="s3://lake/customers/2024-03",
            snapshot_sha256=snapshot.sha256,
        )
        datasets.log_dataset(session, who, store, first, ref)
        seeded.dataset_digest = ref.digest
        child = service.create_run(
            session,
            who,
            RunCreate(
                experiment_id=exp.id,
                name="fold-0",
                parent_run_id=first,
                start_time=BASE_TIME + 10 * 60_000,
            ),
        )
        seeded.child_id = child.id
    return seeded


@pytest.fixture
def seeded(app: FastAPI) -> Seeded:
    return seed_tracking(app)


# -- browser -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium per test module (starting it costs about a second). Not per
    session: while Playwright's sync API is open, the main thread counts as running an event
    loop, and every later test calling ``asyncio.run`` would fail."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium`")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    home = tmp_path_factory.mktemp("browser-home")
    profile = tmp_path_factory.mktemp("browser-profile")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            env={**os.environ, "HOME": str(home)},
            viewport={"width": 1400, "height": 900},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    """A fresh tab with no cookies; errors thrown by the page's scripts fail the test."""
    browser_context.clear_cookies()
    tab = browser_context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    tab.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
