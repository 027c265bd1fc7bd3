"""Code shared by the benchmark scripts (standard library only at import time).

The benchmark files are also run by other interpreters (the throwaway MLflow virtual
environment runs ``bench/tracking.py`` as its client), so nothing here imports passerelle or any
third-party package at module level.

- ``make_app``: the uvicorn ``--factory`` target, ``create_app(Settings(home=$PASSERELLE_HOME))``.
- ``Window`` / ``wait_quiet``: CPU accounting on a small, possibly shared machine. Each timed
  window records the CPU of the measured server (its whole process group), of the measuring
  process, and ``foreign_cores``: how many cores *other* processes used meanwhile.
- processes: free loopback ports, waiting for HTTP, stopping a process group.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

CLK = os.sysconf("SC_CLK_TCK")


# -- the server under test ----------------------------------------------------------------------
def make_app() -> Any:
    """uvicorn factory: the passerelle app on the embedded store under ``$PASSERELLE_HOME``."""
    from pathlib import Path

    from passerelle.app import create_app
    from passerelle.core.settings import Settings

    return create_app(Settings(home=Path(os.environ["PASSERELLE_HOME"])))


# -- CPU accounting -----------------------------------------------------------------------------
def group_processes(pgids: set[int]) -> Iterator[tuple[int, list[str]]]:
    """``(pid, fields)`` of every live process in the given process groups, ``fields`` being
    /proc/<pid>/stat after the command name: [2] the group, [11] utime, [12] stime (ticks)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2 :].split()
        if int(rest[2]) in pgids:
            yield int(entry), rest


def pgid_cpu_s(pgids: list[int]) -> float:
    """User + system CPU seconds of every live process in the given process groups."""
    ticks = sum(int(r[11]) + int(r[12]) for _, r in group_processes(set(pgids)))
    return ticks / CLK


def system_busy_s() -> float:
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / CLK


def self_cpu_s(children: bool = False) -> float:
    """CPU of this process; with ``children``, plus its reaped children (a load generator)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    total = r.ru_utime + r.ru_stime
    if children:
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        total += c.ru_utime + c.ru_stime
    return total


def pid_cpu_s(pgid: int) -> dict[int, float]:
    """CPU seconds of each live process in one process group (how work spreads over workers)."""
    return {pid: (int(r[11]) + int(r[12])) / CLK for pid, r in group_processes({pgid})}


class Window:
    """Wall time and CPU split of one timed window.

    ``server``: process groups of the server being measured; ``ours``: process groups that are
    part of the benchmark but not measured in this window (the other server), kept out of
    ``foreign_cores``; ``children``: count the CPU of this process's children reaped during the
    window (a load generator run with ``subprocess.run``) as the client's.
    """

    def __init__(
        self, server: list[int], ours: list[int] | None = None, *, children: bool = False
    ) -> None:
        self.server = list(server)
        self.ours = list(ours or [])
        self.children = children

    def __enter__(self) -> Window:
        self.b0 = system_busy_s()
        self.s0 = pgid_cpu_s(self.server)
        self.o0 = pgid_cpu_s(self.ours)
        self.c0 = self_cpu_s(self.children)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self.t0
        self.client_cpu_s = self_cpu_s(self.children) - self.c0
        self.server_cpu_s = pgid_cpu_s(self.server) - self.s0
        other = pgid_cpu_s(self.ours) - self.o0
        busy = system_busy_s() - self.b0
        foreign = max(0.0, busy - self.server_cpu_s - self.client_cpu_s - other)
        self.foreign_cores = foreign / self.wall_s if self.wall_s else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "wall_s": self.wall_s,
            "server_cpu_s": self.server_cpu_s,
            "client_cpu_s": self.client_cpu_s,
            "foreign_cores": self.foreign_cores,
        }


def wait_quiet(
    server: list[int],
    ours: list[int] | None = None,
    threshold_cores: float = 0.25,
    sample_s: float = 1.0,
    max_wait_s: float = 30.0,
) -> dict[str, float]:
    """Sample the CPU other processes use until it is under ``threshold_cores`` (or time out)."""
    t0 = time.perf_counter()
    while True:
        with Window(server, ours) as w:
            time.sleep(sample_s)
        waited = time.perf_counter() - t0
        if w.foreign_cores <= threshold_cores or waited >= max_wait_s:
            return {"foreign_cores_before": w.foreign_cores, "waited_s": waited}


# -- processes ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen[Any], timeout: float = 180.0) -> float:
    """Seconds until ``url`` answers 200; fails early when the server process died."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_group(proc: subprocess.Popen[Any], grace: float = 20.0) -> None:
    """SIGTERM the process group started with ``start_new_session=True``, SIGKILL if needed."""
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.time() + grace
    while time.time() < deadline:
        proc.poll()
        if not group_alive(pgid):
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    proc.wait()


# -- the throwaway MLflow environment -----------------------------------------------------------
def clean_env(**extra: str) -> dict[str, str]:
    """This environment without Python path overrides, MLflow or passerelle settings."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in dropped and not k.startswith(("MLFLOW_", "PASSERELLE_"))
    }
    env.update(extra)
    return env


def venv_version(venv: Any, package: str) -> str | None:
    """The version of ``package`` in the virtual environment ``venv``, if it holds it."""
    from pathlib import Path

    python = Path(venv) / "bin" / "python"
    if not python.exists():
        return None
    probe = f"import importlib.metadata as m; print(m.version({package!r}))"
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_venv(venv: Any, package: str, version: str, say: Any = print) -> Any:
    """The Python of a virtual environment holding ``package==version``, created if needed."""
    import shutil
    import sys
    from pathlib import Path

    venv = Path(venv)
    if venv_version(venv, package) == version:
        say(f"reusing {venv} ({package} {version})")
        return venv / "bin" / "python"
    if venv.exists():
        say(f"{venv} does not hold {package} {version}: recreating it")
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    python3 = shutil.which("python3") or sys.executable
    say(f"creating {venv} ({python3} -m venv)")
    subprocess.run([python3, "-m", "venv", str(venv)], check=True)
    pip_log = venv.parent / "pip-install.log"
    say(f"installing {package}=={version} with pip (1-3 min; log: {pip_log})")
    with open(pip_log, "w") as fh:
        done = subprocess.run(
            [venv / "bin" / "pip", "install", f"{package}=={version}"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0 or venv_version(venv, package) != version:
        tail = pip_log.read_text()[-2000:]
        raise SystemExit(f"could not install {package}=={version}:\n{tail}")
    say(f"{package} {version} installed")
    return venv / "bin" / "python"
