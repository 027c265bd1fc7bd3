"""CLI test helpers: an embedded home filled through the SDK, and a runner pointed at it.

The runner sets ``PASSERELLE_HOME`` only for the invocation, as a user's shell would; the CLI then
works embedded on the same files the SDK wrote, through the same REST handlers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from typer.testing import CliRunner, Result

from passerelle.cli.main import app
from passerelle.sdk.client import Client
from passerelle.sdk.runs import start_run

# name, C, final f1, loss per step (logged without `step`: 0, 1, 2)
RUNS = [
    ("lr-c0.1", 0.1, 0.70, [0.90, 0.62, 0.55]),
    ("lr-c1", 1.0, 0.81, [0.90, 0.50, 0.30]),
    ("lr-c10", 10.0, 0.79, [0.90, 0.41, 0.35]),
]
TRAIN = pd.DataFrame({"tenure": [1, 5, 12, 30], "churned": [True, False, False, True]})


@dataclass
class Seeded:
    home: Path
    ids: dict[str, str] = field(default_factory=dict)  # run name -> run id
    child_id: str = ""
    dataset_digest: str = ""


Invoke = Callable[..., Result]


def seed(home: Path) -> Seeded:
    """Three finished runs in experiment ``churn``; ``lr-c1`` has lineage, a dataset, an
    artifact and a nested child run."""
    seeded = Seeded(home=home)
    client = Client(home=home)
    try:
        for name, c, f1, losses in RUNS:
            rich = name == "lr-c1"
            with start_run(
                experiment="churn", run_name=name, client=client, capture_lineage=rich
            ) as run:
                run.log_params({"C": c, "penalty": "l2"})
                for loss in losses:
                    run.log_metric("loss", loss)
                run.log_metrics({"f1": f1, "accuracy": 0.86})
                run.set_tag("team", "retention")
                if rich:
                    seeded.dataset_digest = run.log_dataset(TRAIN, name="train")["digest"]
                    run.log_text("threshold: 0.42\n", "notes/readme.txt")
                    with start_run(
                        run_name="fold-1", nested=True, client=client, capture_lineage=False
                    ) as child:
                        child.log_metric("f1", 0.8)
                    seeded.child_id = child.id
            seeded.ids[name] = run.id
    finally:
        client.close()
    return seeded


def make_invoke(home: Path) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        full_env = {"PASSERELLE_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
        full_env.update(env or {})
        return runner.invoke(app, list(args), env=full_env)

    return invoke


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def clean_env(**extra: str) -> dict[str, str]:
    """For subprocesses: this environment without any ``PASSERELLE_*`` setting of the developer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSERELLE_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", **extra})
    return env
