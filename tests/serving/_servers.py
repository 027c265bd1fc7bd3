"""Real ``passerelle server`` processes for the serving operations tests.

A home is prepared through the SDK (embedded, on the same files) with a scikit-learn model in
one or two versions and endpoint ``churn`` serving version 1; servers then run as subprocesses
on free ports (``--port 0``: the URL they print says which), their output in files so that a
busy server never blocks on a full pipe.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

STARTUP_TIMEOUT = 180  # upper bounds, generous: a busy two-core machine starts slowly
UI_LINE = re.compile(r"UI\s+(http://\S+?)/?\s")
ROW = {"age": 41, "income": 61.5}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any ``PASSERELLE_*`` setting of the developer, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PASSERELLE_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update({"COLUMNS": "200", "NO_COLOR": "1", **extra})
    return env


@dataclass
class Prepared:
    home: Path
    X: pd.DataFrame


def prepare_home(
    home: Path,
    *,
    versions: int = 1,
    database_url: str | None = None,
    artifact_root: str | None = None,
    changes: tuple[dict[str, object], ...] = (),
) -> Prepared:
    """Register ``versions`` versions of model ``churn`` (version 2 predicts differently) and
    deploy version 1 on endpoint ``churn`` (then apply ``changes``), through the SDK on the
    files of ``home``."""
    import passerelle as psl
    from passerelle.app import create_app
    from passerelle.core.settings import Settings
    from passerelle.sdk.client import Client
    from passerelle.sdk.transport import InProcessTransport

    settings = Settings(
        home=home, database_url=database_url, artifact_root=artifact_root, _env_file=None
    )
    app = create_app(settings)
    client = Client(home=home, transport=InProcessTransport(app))
    rng = np.random.default_rng(7)
    X = pd.DataFrame({"age": rng.integers(18, 80, 200), "income": rng.normal(50, 10, 200)})
    y = (X["income"] > 50).astype(int)
    cwd = Path.cwd()
    os.chdir(home.parent)
    try:
        for version in range(1, versions + 1):
            with psl.start_run(experiment="churn", client=client, capture_lineage=False):
                model = LogisticRegression(C=1.0 if version == 1 else 0.001).fit(X, y)
                uri = psl.log_model(model, "model", input_example=X.head(5))
            assert psl.register_model(uri, name="churn", client=client).version == version
        for change in ({"action": "deploy", "version": 1}, *changes):
            client.request("POST", "/api/v1/endpoints/churn/deployments", json=change)
    finally:
        os.chdir(cwd)
        client.close()
        app.state.stop_background.set()
        app.state.engine.dispose()
    return Prepared(home, X)


class Server:
    """``python -m passerelle.cli.main server --port 0 ...`` in its own session."""

    def __init__(self, *args: str, env: dict[str, str], logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        n = len(list(logs.glob("*.out")))
        self.out_path, self.err_path = logs / f"{n}.out", logs / f"{n}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "passerelle.cli.main", "server", "--port", "0", *args],
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,  # signals to the group reach every worker
            )
        self.url = ""

    def output(self) -> str:
        return self.out_path.read_text(errors="replace") + self.err_path.read_text(errors="replace")

    def wait_url(self) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if match := UI_LINE.search(self.out_path.read_text(errors="replace")):
                self.url = match.group(1).rstrip("/")
                return self.url
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"the server printed no URL:\n{self.output()}")

    def wait_ready(self, timeout: float = 180, fresh_connections: int = 1) -> None:
        """Until ``/readyz`` answers 200 on ``fresh_connections`` new connections in a row."""
        deadline = time.monotonic() + timeout
        streak, last = 0, None
        while time.monotonic() < deadline:
            try:
                last = httpx.get(self.url + "/readyz", timeout=5)
            except httpx.HTTPError:
                streak = 0
            else:
                streak = streak + 1 if last.status_code == 200 else 0
                if streak >= fresh_connections:
                    return
            time.sleep(0.05)
        shown = last.text if last is not None else "no answer"
        raise AssertionError(f"not ready after {timeout} s: {shown}\n{self.output()}")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 40) -> int:
        """SIGTERM, then the exit code (killed after ``timeout``)."""
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            raise AssertionError(f"the server did not stop on SIGTERM:\n{self.output()}") from None


def predict(http: httpx.Client, url: str, rows: list[dict] | None = None) -> dict:
    r = http.post(f"{url}/v1/endpoints/churn/predict", json={"inputs": rows or [ROW]})
    assert r.status_code == 200, r.text
    return r.json()
