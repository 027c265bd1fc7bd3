"""A throwaway PostgreSQL cluster for the test session, and one fresh database per test.

The cluster lives in a temporary folder on a free loopback port, with durability switched off
(``fsync=off``): it exists for minutes and holds nothing worth keeping. PostgreSQL refuses to run
as root, so when the tests run as root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import itertools
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

INSTALL_HINT = "PostgreSQL not installed: apt-get install postgresql"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, newest major version first."""
    if os.environ.get("PG_BINDIR"):  # an explicit choice: that folder or nothing
        folder = Path(os.environ["PG_BINDIR"])
        return folder if (folder / "initdb").exists() and (folder / "pg_ctl").exists() else None
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    return None


class PostgresServer:
    """Creates and drops the per-test databases on a PostgreSQL server.

    Databases are copied from a template that already holds the schema, so a test does not pay
    for running every migration again (``create_database(empty=True)`` skips the template).
    Copying a database is the slowest part of a test's set-up, so a background thread keeps a
    couple of copies ready ahead of the tests and drops the used ones while the next test runs.
    """

    AHEAD = 2

    def __init__(self, prefix: str = "test_") -> None:
        self._prefix = prefix
        self._names = itertools.count(1)
        self._template: str | None = None
        self._jobs: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._worker: threading.Thread | None = None

    def url(self, database: str) -> str:
        raise NotImplementedError

    def _admin(self):
        raise NotImplementedError

    def _ensure_template(self) -> str:
        if self._template is None:
            from passerelle.core.db import make_engine, migrate

            name = f"{self._prefix}template"
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
            engine = make_engine(self.url(name))
            try:
                migrate(engine)
            finally:
                engine.dispose()
            with self._admin() as conn:  # nobody may connect, or copying it would fail
                conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            self._template = name
        return self._template

    def _copy(self, template: str) -> str:
        name = f"{self._prefix}{next(self._names)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def _drop(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            action, name = job
            try:
                if action == "create":
                    self._ready.put(self._copy(name))
                else:
                    self._drop(name)
            except BaseException as exc:  # handed to the test that waits for a database
                if action == "create":
                    self._ready.put(exc)

    def create_database(self, *, empty: bool = False) -> str:
        """A new database, already migrated unless ``empty``; returns its name."""
        if empty:
            return self._copy("template0")
        template = self._ensure_template()
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="pg-databases", daemon=True)
            self._worker.start()
            for _ in range(self.AHEAD):
                self._jobs.put(("create", template))
        self._jobs.put(("create", template))
        ready = self._ready.get(timeout=300)
        if isinstance(ready, BaseException):
            raise ready
        return ready

    def drop_database(self, name: str) -> None:
        """Drop ``name`` in the background (its connections are closed by force)."""
        if self._worker is None:
            self._drop(name)
        else:
            self._jobs.put(("drop", name))

    def close(self) -> None:
        """Finish pending drops, then drop the databases made ahead and the template."""
        if self._worker is not None:
            self._jobs.put(None)
            self._worker.join(timeout=120)
            while not self._ready.empty():
                leftover = self._ready.get()
                if isinstance(leftover, str):
                    self._drop(leftover)
        if self._template is not None:
            self._drop(self._template)


class PostgresCluster(PostgresServer):
    """``initdb`` + ``pg_ctl start`` in a temporary folder; ``stop`` removes everything."""

    def __init__(self, bindir: Path) -> None:
        super().__init__()
        self.bindir = bindir
        self.as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        self.base = Path(tempfile.mkdtemp(prefix="passerelle-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = 0
        if self.as_root:
            shutil.chown(self.base, user="postgres", group="postgres")

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
        )

    def start(self) -> PostgresCluster:
        res = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if res.returncode != 0:
            shutil.rmtree(self.base, ignore_errors=True)
            raise RuntimeError(f"initdb failed:\n{res.stdout}\n{res.stderr}")
        for _attempt in range(5):  # a free port can be taken between the probe and the bind
            self.port = free_port()
            options = (
                f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c full_page_writes=off -c synchronous_commit=off "
                "-c max_connections=300"
            )
            res = self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            )
            if res.returncode == 0:
                return self
        log = self.log.read_text() if self.log.exists() else ""
        shutil.rmtree(self.base, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed:\n{res.stdout}\n{res.stderr}\n{log}")

    def stop(self) -> None:
        self._jobs.put(None)
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self):
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        )


class ExternalPostgres(PostgresServer):
    """An existing server, given by URL: each test gets its own uniquely named database."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        super().__init__(prefix=f"passerelle_test_{uuid.uuid4().hex[:8]}_")
        self._url = make_url(url).set(drivername="postgresql+psycopg")

    def url(self, database: str) -> str:
        return self._url.set(database=database).render_as_string(hide_password=False)

    def _admin(self):
        import psycopg

        return psycopg.connect(
            self._url.set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
        )
