"""The durable spool: nothing acknowledged is lost when the writer is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from passerelle.core.spool import Spool, read_records, recoverable

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from passerelle.core.spool import Spool

    spool = Spool(Path(sys.argv[1]), "events")
    i = 0
    while True:
        batch = [{"id": i + k, "payload": "x" * 50} for k in range(7)]
        spool.append(batch)
        # acknowledge only after append returned, as a server answers after spooling
        sys.stdout.write(f"{i + 6}\\n")
        sys.stdout.flush()
        i += 7
    """
)


def test_append_seal_and_read(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "events", max_bytes=200)
    for i in range(10):
        spool.append([{"id": i, "text": "line\nbreak"}])
    spool.close()
    files = recoverable(tmp_path, "events")
    assert len(files) > 1  # max_bytes rotated the file
    ids = [r["id"] for f in files for r in read_records(f)]
    assert sorted(ids) == list(range(10))
    assert next(read_records(files[0]))["text"] == "line\nbreak"


def test_live_files_are_not_recovered_by_others(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "events")
    spool.append([{"id": 1}])
    assert recoverable(tmp_path, "events") == []  # still held by its writer
    spool.close()
    assert len(recoverable(tmp_path, "events")) == 1


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events-1-x.sealed"
    path.write_bytes(b'{"id": 1}\n{"id": 2}\n{"id": 3, "pa')
    assert [r["id"] for r in read_records(path)] == [1, 2]


def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    acknowledged = -1
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while acknowledged < 5000 and time.monotonic() < deadline:
        acknowledged = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert acknowledged >= 5000
    ids = {r["id"] for f in recoverable(tmp_path, "events") for r in read_records(f)}
    assert set(range(acknowledged + 1)) <= ids


def test_recovery_running_beside_a_live_writer_takes_nothing_from_it(tmp_path: Path) -> None:
    """A compactor thread recovering files while this process keeps opening new ones (a small
    size limit seals a file every few records) must never take a file still being written."""
    import threading

    spool = Spool(tmp_path, "race", max_bytes=300)
    taken: list[int] = []
    done = threading.Event()

    def compactor() -> None:
        while True:
            finished = done.is_set()
            for path in recoverable(tmp_path, "race"):
                taken.extend(r["i"] for r in read_records(path))
                path.unlink()
            if finished:
                return

    thread = threading.Thread(target=compactor)
    thread.start()
    for i in range(20_000):
        spool.append([{"i": i}])
    spool.seal()
    done.set()
    thread.join()
    assert sorted(taken) == list(range(20_000))


def test_files_compacted_away_by_another_process_meanwhile_are_skipped(tmp_path: Path) -> None:
    """Two processes on one home share a spool folder: a sealed file may be compacted and
    removed by the other between this process's listing and its look at the file."""
    import threading

    stop = threading.Event()

    def other_process() -> None:
        i = 0
        while not stop.is_set():
            paths = [tmp_path / f"log-{i}-{j}.sealed" for j in range(20)]
            for path in paths:
                path.write_bytes(b"{}\n")
            for path in paths:
                path.unlink()
            i += 1

    thread = threading.Thread(target=other_process)
    thread.start()
    try:
        for _ in range(3000):
            for path in recoverable(tmp_path, "log"):
                assert path.name.startswith("log-")
    finally:
        stop.set()
        thread.join()
