"""Client threads that keep a live server busy until told to stop (or until it dies), recording
what it acknowledged: the crash tests kill the server under this load, restart it, and look for
every acknowledged item."""

from __future__ import annotations

import threading
import time
from typing import Self


class AcknowledgedLoad:
    """Subclasses implement ``_run(worker)``: send until ``stop`` is set or the server is gone,
    appending what the server acknowledged to ``acknowledged``."""

    what = "items"

    def __init__(self, url: str, threads: int) -> None:
        self.url = url
        self.acknowledged: list[str] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def _run(self, worker: int) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        for t in self.threads:
            t.start()
        return self

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < count:
            assert time.monotonic() < deadline, f"only {len(self.acknowledged)} {self.what}"
            time.sleep(0.02)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads)
