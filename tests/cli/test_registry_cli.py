"""``passerelle models list|show|alias``: embedded on a home the SDK filled, and on a server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import passerelle as psl
from passerelle.sdk.client import Client
from tests.cli._helpers import Invoke, as_json, make_invoke
from tests.conftest import LiveServer


def _data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"tenure": rng.integers(1, 60, 80), "plan": rng.choice(["free", "pro"], 80)})
    return X, (X["tenure"] > 30).astype(int)


def seed_models(client: Client) -> list[str]:
    """Model ``churn`` with versions 1 and 2 (f1 0.7 then 0.8); ``champion`` moved 1 -> 2."""
    X, y = _data()
    run_ids = []
    for f1 in (0.7, 0.8):
        model = make_pipeline(
            make_column_transformer((OneHotEncoder(), ["plan"]), remainder="passthrough"),
            LogisticRegression(),
        ).fit(X, y)
        with psl.start_run(experiment="churn", client=client, capture_lineage=False) as run:
            run.log_metric("f1", f1)
            uri = psl.log_model(model, "model", input_example=X.head(10), run=run)
        psl.register_model(uri, name="churn", client=client)
        run_ids.append(run.id)
    psl.set_alias("churn", "champion", 1, reason="first model", client=client)
    psl.set_alias("churn", "champion", 2, reason="better f1", client=client)
    return run_ids


@pytest.fixture(scope="module")
def models_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    home = tmp_path_factory.mktemp("models") / "home"
    client = Client(home=home)
    try:
        return home, seed_models(client)
    finally:
        client.close()


@pytest.fixture(scope="module")
def models_cli(models_home) -> Invoke:
    return make_invoke(models_home[0])


def test_models_list_shows_latest_version_and_aliases(models_cli: Invoke) -> None:
    result = models_cli("models", "list")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "churn" in line)
    assert "default" in row and "v2" in row and "champion→v2" in row
    assert "1 model(s)" in result.stdout
    [model] = as_json(models_cli("models", "list", "--json"))
    assert (model["name"], model["latest_version"], model["aliases"]) == (
        "churn",
        2,
        {"champion": 2},
    )
    assert as_json(models_cli("models", "list", "--project", "elsewhere", "--json")) == []


def test_models_show_versions_history_and_signature(models_cli: Invoke, models_home) -> None:
    _, run_ids = models_home
    result = models_cli("models", "show", "churn")
    assert result.exit_code == 0, result.output
    out = result.stdout
    lines = out.splitlines()
    v2 = next(line for line in lines if line.strip().startswith("v2"))
    v1 = next(line for line in lines if line.strip().startswith("v1"))
    assert "READY" in v2 and "champion" in v2 and run_ids[1][:8] in v2 and "0.8" in v2
    assert "READY" in v1 and "champion" not in v1 and run_ids[0][:8] in v1 and "0.7" in v1
    assert "anonymous" in v2  # who registered it: the embedded store's caller
    assert "Alias history" in out
    moved = next(line for line in lines if "better f1" in line)
    assert "champion" in moved and "v1" in moved and "v2" in moved
    assert "Signature of v2" in out
    plan = next(line for line in lines if line.strip().startswith("plan"))
    assert "string" in plan and "free, pro" in plan
    assert "integer" in next(line for line in lines if line.strip().startswith("tenure"))

    data = as_json(models_cli("models", "show", "churn", "--json"))
    assert [v["version"] for v in data["versions"]] == [2, 1]
    assert [h["reason"] for h in data["alias_history"]] == ["better f1", "first model"]


def test_models_show_a_chosen_version_and_errors(models_cli: Invoke) -> None:
    result = models_cli("models", "show", "churn", "--version", "1")
    assert result.exit_code == 0, result.output
    assert "Signature of v1" in result.stdout
    missing = models_cli("models", "show", "churn", "--version", "9")
    assert missing.exit_code == 1 and "model 'churn' has no version 9" in missing.stderr
    unknown = models_cli("models", "show", "nope")
    assert unknown.exit_code == 1
    assert "error: model 'nope' not found" in unknown.stderr
    assert "Traceback" not in unknown.output


def test_models_alias_moves_and_records_the_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    client = Client(home=home)
    try:
        seed_models(client)
    finally:
        client.close()
    cli = make_invoke(home)
    result = cli("models", "alias", "churn", "champion", "1", "--reason", "rollback: v2 drifted")
    assert result.exit_code == 0, result.output
    assert "churn@champion → v1 (was v2)" in result.stdout
    new = cli("models", "alias", "churn", "challenger", "2")
    assert new.exit_code == 0 and "churn@challenger → v2" in new.stdout
    data = as_json(cli("models", "show", "churn", "--json"))
    assert data["aliases"] == {"challenger": 2, "champion": 1}
    assert data["alias_history"][1]["reason"] == "rollback: v2 drifted"
    assert (data["alias_history"][1]["from_version"], data["alias_history"][1]["to_version"]) == (
        2,
        1,
    )

    missing = cli("models", "alias", "churn", "champion", "7")
    assert missing.exit_code == 1 and "has no version 7" in missing.stderr
    bad = cli("models", "alias", "churn", "latest", "1")
    assert bad.exit_code == 1 and "cannot be an alias" in bad.stderr
    assert cli("models", "alias", "churn", "champion", "0").exit_code == 2  # usage: VERSION >= 1
    assert as_json(cli("models", "show", "churn", "--json"))["aliases"]["champion"] == 1


def test_models_commands_against_a_server(app, settings) -> None:
    server = LiveServer(app).start()
    try:
        client = Client(url=server.url)
        try:
            seed_models(client)
        finally:
            client.close()
        cli = make_invoke(settings.home / "unused")
        listed = as_json(cli("--url", server.url, "models", "list", "--json"))
        assert [m["name"] for m in listed] == ["churn"]
        moved = cli("--url", server.url, "models", "alias", "churn", "champion", "1")
        assert moved.exit_code == 0 and "(was v2)" in moved.stdout
        shown = as_json(cli("--url", server.url, "models", "show", "churn", "--json"))
        assert shown["aliases"] == {"champion": 1}
    finally:
        server.stop()
