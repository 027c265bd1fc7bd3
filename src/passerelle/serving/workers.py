"""``passerelle server --workers N``: N processes serving one port, each with its own socket.

uvicorn's own multi-process mode binds one listening socket in the parent and shares it: Nagle's
algorithm stays on for the connections it accepts (every keep-alive request after the first then
waits about 40 ms for a delayed ACK) and connections often pile onto one worker. Here instead:

- every worker binds its own socket to the same port with ``SO_REUSEPORT``, so the kernel spreads
  new connections evenly across the workers;
- ``TCP_NODELAY`` is set on each listening socket (accepted connections inherit it on Linux) and
  the socket is created as a TCP socket, so asyncio sets it again on every connection;
- the supervisor (the process the user started) holds the port with a bound, non-listening socket
  so that nothing else takes it while a worker restarts; it prints the URL once every worker
  listens, restarts a worker that dies, and on SIGTERM or Ctrl+C stops them all gracefully (each
  finishes its requests and compacts its inference log spool). A worker asks the kernel for a
  SIGTERM should the supervisor itself die.

Metrics of all workers are added up at ``/metrics`` through prometheus_client's multiprocess
mode, in a folder under the home that the supervisor creates and removes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from passerelle.serving.metrics import MULTIPROC_ENV

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from passerelle.core.settings import Settings

log = logging.getLogger("passerelle.server")
STARTUP_SECONDS = 120  # a worker builds its app (imports, migrations check) within this
STOP_SECONDS = 30  # graceful stop (10 s for open requests) plus the last compaction
PR_SET_PDEATHSIG = 1


class WorkersFailed(RuntimeError):
    """A worker could not start: the message says which and how it ended."""


def _address(host: str, port: int) -> tuple[Any, ...]:
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return family, kind, proto, address


def _reuseport_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, address = _address(host, port)
    # proto is IPPROTO_TCP here: asyncio then sets TCP_NODELAY on every accepted connection
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


def reserve_port(host: str, port: int) -> socket.socket:
    """Hold ``host:port`` for the workers; ``OSError`` when something else uses it.

    A plain bind first, which fails if anything at all listens there (another server started
    with ``SO_REUSEPORT`` would otherwise silently share the port); port 0 picks a free port.
    """
    family, kind, proto, address = _address(host, port)
    probe = socket.socket(family, kind, proto)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        port = probe.getsockname()[1]
    finally:
        probe.close()
    return _reuseport_socket(host, port)  # bound, never listening: it gets no connections


def listening_socket(host: str, port: int) -> socket.socket:
    """A worker's own listening socket on the shared port."""
    sock = _reuseport_socket(host, port)
    try:
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


# -- the metrics folder ----------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def metrics_folder(home: Path) -> Path:
    """A fresh multiprocess metrics folder for this supervisor; stale ones of dead servers go."""
    root = home / "metrics"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        if old.is_dir() and old.name.isdigit() and not _alive(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    folder = root / str(os.getpid())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder


# -- the worker process ---------------------------------------------------------------------
def _follow_parent(parent_pid: int) -> None:
    """Get SIGTERM when the supervisor dies (Linux), and stop now if it already has."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        sys.exit(0)


def worker_main(
    settings: Settings, host: str, port: int, ready: Connection, parent_pid: int
) -> None:
    """One worker: build the app, listen on the shared port, tell the supervisor, serve."""
    _follow_parent(parent_pid)
    import uvicorn

    from passerelle.app import create_app
    from passerelle.serving.process import uvicorn_config

    app = create_app(settings)
    sock = listening_socket(host, port)
    try:
        with contextlib.suppress(OSError):  # a restarted worker's supervisor may not listen
            ready.send(os.getpid())
            ready.close()
        config = uvicorn_config(app, host, port)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        app.state.engine.dispose()


# -- the supervisor --------------------------------------------------------------------------
@dataclass
class _Slot:
    index: int
    process: BaseProcess | None = None
    started: float = 0.0
    failures: int = 0
    not_before: float = 0.0


class Supervisor:
    """Starts ``count`` workers on ``held``'s port, keeps them running, stops them on a signal."""

    def __init__(self, settings: Settings, count: int, held: socket.socket) -> None:
        import multiprocessing

        self.settings = settings
        self.count = count
        self.held = held
        self.host = settings.host
        self.port = held.getsockname()[1]
        self.context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self.slots = [_Slot(i) for i in range(count)]
        self.stopping = threading.Event()
        self.metrics_dir: Path | None = None

    def _spawn(self, slot: _Slot) -> Connection:
        receiver, sender = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=worker_main,
            args=(self.settings, self.host, self.port, sender, os.getpid()),
            name=f"passerelle-worker-{slot.index}",
        )
        process.start()
        sender.close()
        slot.process, slot.started = process, time.monotonic()
        return receiver

    def _wait_ready(self, pipes: list[Connection]) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        waiting = dict(enumerate(pipes))
        while waiting:
            if self.stopping.is_set():
                return
            if time.monotonic() > deadline:
                raise WorkersFailed(f"workers did not start within {STARTUP_SECONDS} s")
            for index, pipe in list(waiting.items()):
                slot = self.slots[index]
                assert slot.process is not None
                if pipe.poll(0.05):
                    with contextlib.suppress(EOFError):  # EOF: it died, said below
                        pipe.recv()
                        pipe.close()
                        del waiting[index]
                        continue
                if not slot.process.is_alive():
                    raise WorkersFailed(
                        f"worker {index} exited with code {slot.process.exitcode} while "
                        "starting; see its messages above"
                    )

    def _signals(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            self.stopping.set()

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, stop)

    def run(self, announce: Callable[[], None]) -> None:
        """Serve until SIGTERM / SIGINT; raise ``WorkersFailed`` if the workers cannot start."""
        self.metrics_dir = metrics_folder(self.settings.home.resolve())
        os.environ[MULTIPROC_ENV] = str(self.metrics_dir)
        self._signals()
        try:
            pipes = [self._spawn(slot) for slot in self.slots]
            self._wait_ready(pipes)
            if not self.stopping.is_set():
                announce()
            while not self.stopping.wait(0.2):
                self._keep_alive()
        finally:
            self._stop_all()
            self.held.close()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)

    def _keep_alive(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            process = slot.process
            if process is None or process.is_alive():
                continue
            if slot.not_before == 0.0:
                quick = now - slot.started < 10
                slot.failures = slot.failures + 1 if quick else 0
                wait = min(30.0, 0.5 * 2**slot.failures) if quick else 0.0
                slot.not_before = now + wait
                log.warning(
                    "worker %s (pid %s) exited with code %s; restarting it in %.1f s",
                    slot.index,
                    process.pid,
                    process.exitcode,
                    wait,
                )
            if now >= slot.not_before:
                slot.not_before = 0.0
                self._spawn(slot).close()

    def _stop_all(self) -> None:
        running = [s.process for s in self.slots if s.process is not None and s.process.is_alive()]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()  # SIGTERM: uvicorn's graceful stop, then the lifespan's
        deadline = time.monotonic() + STOP_SECONDS
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in running:
            if process.is_alive():
                log.warning("worker pid %s did not stop in time: killing it", process.pid)
                process.kill()
                process.join(5)
