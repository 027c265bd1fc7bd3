"""A durable local spool for high-volume events (inference logs, spans).

Each process appends JSON lines to its own file, holding an exclusive ``flock`` on it. A batch of
records is written with one ``write`` call before the caller acknowledges anything: once that call
returns, the bytes are in the kernel, so a process killed with SIGKILL loses nothing it
acknowledged (``fsync=True`` extends that to power loss, at a price per batch). Files are sealed
(renamed) when they grow or on request, and a compactor turns sealed files into Parquet parts. On
start-up, ``recoverable`` finds what a dead process left behind: files nobody holds a lock on.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

ACTIVE = ".spool"
SEALED = ".sealed"
OPENING = ".opening"


class Spool:
    """An append-only, crash-safe log of JSON records owned by this process."""

    def __init__(
        self, directory: Path, name: str, *, fsync: bool = False, max_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.fsync = fsync
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0

    def _open(self) -> None:
        # Created under a name recovery ignores, locked, then renamed: a file that appeared
        # under the active name before its lock was taken could be taken for a dead process's
        # by ``recoverable`` (in another thread or process), sealed and compacted away while
        # this process went on writing to it.
        path = self.directory / f"{self.name}-{os.getpid()}-{uuid.uuid4().hex[:12]}{ACTIVE}"
        opening = path.with_suffix(OPENING)
        fd = os.open(opening, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(opening, path)
        self._fd, self._path, self._size = fd, path, 0

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Write ``records`` durably (one ``write``); returns how many. Thread-safe."""
        data = b"".join(orjson.dumps(r, default=str) + b"\n" for r in records)
        if not data:
            return 0
        with self._lock:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self.fsync:
                os.fsync(self._fd)
            self._size += len(data)
            if self._size >= self.max_bytes:
                self._seal_locked()
        return data.count(b"\n")

    def _seal_locked(self) -> Path | None:
        if self._fd is None or self._path is None:
            return None
        sealed = self._path.with_suffix(SEALED)
        os.rename(self._path, sealed)  # rename first: the lock still guards the file
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd, self._path, self._size = None, None, 0
        return sealed

    def seal(self) -> Path | None:
        """Close the current file for compaction; the next append starts a new one."""
        with self._lock:
            return self._seal_locked()

    def close(self) -> None:
        self.seal()


def recoverable(directory: Path, name: str) -> list[Path]:
    """Sealed files, and active files whose process is gone (sealed now), oldest first."""
    directory = Path(directory)
    if not directory.exists():
        return []
    for path in directory.glob(f"{name}-*{OPENING}"):
        _remove_if_abandoned(path)  # killed between creating and naming it: nothing written
    for path in directory.glob(f"{name}-*{ACTIVE}"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live process owns it
        else:
            with contextlib.suppress(FileNotFoundError):  # sealed by someone else meanwhile
                os.rename(path, path.with_suffix(SEALED))
        finally:
            os.close(fd)
    sealed = []
    for path in directory.glob(f"{name}-*{SEALED}"):
        try:
            sealed.append((path.stat().st_mtime, path))
        except FileNotFoundError:  # compacted away by another process sharing the folder
            continue
    return [path for _, path in sorted(sealed)]


def _remove_if_abandoned(path: Path) -> None:
    """Remove an empty file a process created and never named (it was killed in between); one
    younger than a minute may be in the middle of being opened."""
    import time

    try:
        if time.time() - path.stat().st_mtime < 60:
            return
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # being opened right now
    else:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every complete record of a spool file; a torn last line (power loss) is skipped."""
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                return
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
