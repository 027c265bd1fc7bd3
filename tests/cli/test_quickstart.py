"""The README's example runs as written and leaves the runs the UI is supposed to show."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from passerelle.sdk.client import Client
from passerelle.sdk.views import get_run, search_runs
from tests.cli._helpers import clean_env

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "quickstart.py"


def test_quickstart_logs_three_complete_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=REPO,
        env=clean_env(PASSERELLE_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "http://127.0.0.1:5050/" in proc.stdout
    assert not (REPO / "confusion.csv").exists() and not (REPO / "confusion.png").exists()

    client = Client(home=home)
    try:
        table = search_runs(experiment="churn", order_by=["params.C"], client=client)
        assert list(table["run_name"]) == ["logreg-C0.01", "logreg-C1", "logreg-C10"]
        assert set(table["status"]) == {"FINISHED"}
        assert (table["metrics.f1"] > 0.5).all()

        train_digests = set()
        for run_id in table["run_id"]:
            run = get_run(run_id, client=client)
            assert run.params["penalty"] == "l2" and run.params["solver"] == "lbfgs"
            assert {"f1", "accuracy", "test_loss", "loss"} <= set(run.metrics)
            history = run.metric_history("loss")
            assert [step for step, _, _ in history] == list(range(25))
            assert history[-1][1] < history[0][1]  # the loss went down
            assert [a["path"] for a in run.artifacts()] in (["confusion.png"], ["confusion.csv"])

            code = run.lineage["code"]
            assert code["git"] is True and re.fullmatch(r"[0-9a-f]{40}", code["commit"])
            assert run.lineage["environment"]["uv_lock_sha256"]
            data = {d["name"]: d for d in run.lineage["data"]}
            assert (data["train"]["num_rows"], data["test"]["num_rows"]) == (900, 300)
            assert data["train"]["snapshot_sha256"]
            train_digests.add(data["train"]["digest"])
        assert len(train_digests) == 1  # the same table gives the same fingerprint
    finally:
        client.close()
