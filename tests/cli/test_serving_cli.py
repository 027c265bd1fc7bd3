"""``passerelle deploy|rollback|deployments|predict``: embedded on a home the SDK filled, and on
a server."""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

import passerelle as psl
from passerelle.sdk.client import Client
from tests.cli._helpers import Invoke, as_json, make_invoke
from tests.conftest import LiveServer

PREDICTION_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Models:
    """Model ``churn`` with versions 1 and 2, and the estimators behind them."""

    X: pd.DataFrame
    fitted: dict[int, LogisticRegression]


def seed_models(client: Client) -> Models:
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"age": rng.integers(18, 80, 200), "income": rng.normal(50, 10, 200)})
    y = (X["income"] > 50).astype(int)
    fitted = {}
    for version, c in ((1, 1.0), (2, 0.001)):
        with psl.start_run(experiment="churn", client=client, capture_lineage=False) as run:
            fitted[version] = LogisticRegression(C=c).fit(X, y)
            uri = psl.log_model(fitted[version], "model", input_example=X.head(10), run=run)
        psl.register_model(uri, name="churn", client=client)
    return Models(X, fitted)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Models]:
    """A home with the two versions registered, copied by each test (seeding takes seconds)."""
    home = tmp_path_factory.mktemp("serving") / "home"
    client = Client(home=home)
    try:
        return home, seed_models(client)
    finally:
        client.close()


@pytest.fixture
def home(template: tuple[Path, Models], tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(template[0], copy)
    return copy


FAST_COMPACTION = {"PASSERELLE_LOG_COMPACT_INTERVAL": "0.2"}


@pytest.fixture
def cli(home: Path) -> Invoke:
    invoke = make_invoke(home)
    return lambda *args: invoke(*args, env=FAST_COMPACTION)


def line_with(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


def test_deploy_canary_weight_promote_rollback_and_history(cli: Invoke) -> None:
    first = cli("deploy", "churn", "--version", "1", "--reason", "first release")
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "deploy churn: nothing deployed → v1"
    canary = cli("deploy", "churn", "--canary", "2", "--weight", "25")
    assert canary.exit_code == 0, canary.output
    assert canary.stdout.strip() == "canary churn: v1 → v1 75% + canary v2 25%"
    weight = cli("deploy", "churn", "--weight", "40", "-r", "looks fine")
    assert weight.stdout.strip() == "weight churn: v1 75% + canary v2 25% → v1 60% + canary v2 40%"
    [endpoint] = as_json(cli("deployments", "list", "--json"))
    assert (endpoint["primary_version"], endpoint["canary_version"]) == (1, 2)
    assert endpoint["canary_weight"] == 40

    promoted = cli("deploy", "churn", "--promote", "--json")
    assert as_json(promoted)["primary_version"] == 2
    back = cli("rollback", "churn", "--reason", "v2 misses churners")
    assert back.exit_code == 0, back.output
    assert back.stdout.strip() == "rollback churn: v2 → v1"

    history = cli("deployments", "history", "churn")
    assert history.exit_code == 0, history.output
    out = history.stdout
    for header in ("When", "Who", "Action", "Before → after", "Reason"):
        assert header in out
    rolled = line_with(out, "rollback")
    assert "anonymous" in rolled and "v2 → v1" in rolled and "v2 misses churners" in rolled
    assert "first release" in line_with(out, "nothing deployed → v1")
    assert "5 change(s)" in out
    events = as_json(cli("deployments", "history", "churn", "--json"))
    assert [e["action"] for e in events] == ["rollback", "promote", "weight", "canary", "deploy"]
    assert events[2]["reason"] == "looks fine"
    assert events[2]["detail"]["before"]["canary_weight"] == 25
    short = cli("deployments", "history", "churn", "-n", "2")
    assert "5 change(s), 2 shown" in short.stdout and "first release" not in short.stdout


def test_shadows_and_the_endpoints_table(cli: Invoke) -> None:
    assert cli("deploy", "churn", "-v", "1").exit_code == 0
    shadow = cli("deploy", "churn", "--shadow", "2")
    assert shadow.stdout.strip() == "shadow churn: v1 → v1 + shadow v2"
    assert cli("deploy", "fraud", "--version", "2", "--model", "churn").exit_code == 0
    listed = cli("deployments", "list")
    assert listed.exit_code == 0, listed.output
    churn = line_with(listed.stdout, "churn  ")
    assert re.search(r"churn\s+churn\s+v1\s+-\s+v2\s+serving\s+2", churn), churn
    fraud = line_with(listed.stdout, "fraud")
    assert re.search(r"fraud\s+churn\s+v2\s+-\s+-\s+serving\s+1", fraud), fraud
    assert "2 endpoint(s)" in listed.stdout


def test_usage_and_refused_changes_print_one_clean_line(cli: Invoke) -> None:
    nothing = cli("deploy", "churn")
    assert nothing.exit_code == 2 and "say what to deploy" in nothing.stderr
    both = cli("deploy", "churn", "--version", "1", "--canary", "2")
    assert both.exit_code == 2 and "choose one of --version, --canary" in both.stderr
    mixed = cli("deploy", "churn", "--version", "1", "--weight", "5")
    assert mixed.exit_code == 2 and "--weight goes with --canary" in mixed.stderr
    assert cli("deploy", "churn", "--canary", "2", "--weight", "150").exit_code == 2
    early = cli("deploy", "churn", "--canary", "2")
    assert early.exit_code == 1
    assert "error: endpoint 'churn' not found" in early.stderr
    assert cli("deploy", "churn", "--version", "1").exit_code == 0
    missing = cli("deploy", "churn", "--version", "7")
    assert missing.exit_code == 1 and "has no version 7" in missing.stderr
    nothing_back = cli("rollback", "churn")
    assert nothing_back.exit_code == 1
    assert "no previous version to roll back to" in nothing_back.stderr
    unknown = cli("deployments", "history", "nope")
    assert unknown.exit_code == 1 and "error: endpoint 'nope' not found" in unknown.stderr
    for result in (early, missing, nothing_back, unknown):
        assert "Traceback" not in result.output
    assert len(as_json(cli("deployments", "history", "churn", "--json"))) == 1


def read_log(home: Path, ids: list[str]) -> pd.DataFrame:
    """The endpoint's log once it holds ``ids``.

    The command's embedded app is still alive in this process (a real command exits, and the
    next start recovers its spool), so its rows arrive with its next compaction.
    """
    client = Client(home=home)
    try:
        deadline = time.monotonic() + 10
        while True:
            log = psl.inference_log("churn", client=client)
            if set(ids) <= set(log["prediction_id"]) or time.monotonic() > deadline:
                return log
            time.sleep(0.1)
    finally:
        client.close()


def write_input(path: Path, frame: pd.DataFrame, **extra: list) -> Path:
    table = pa.Table.from_pandas(frame.assign(**extra), preserve_index=False)
    pq.write_table(table, path)
    return path


def test_predict_scores_a_parquet_file_in_chunks_and_logs_every_row(
    cli: Invoke, home: Path, template: tuple[Path, Models], tmp_path: Path
) -> None:
    models = template[1]
    frame = pd.concat([models.X] * 12, ignore_index=True).head(2_345)
    source = write_input(tmp_path / "input.parquet", frame, customer=[f"c{i}" for i in range(2345)])
    assert cli("deploy", "churn", "--version", "1").exit_code == 0
    out = tmp_path / "out" / "scored.parquet"
    args = ["predict", "churn", str(source), "-o", str(out), "--batch-size", "1000"]
    strict = cli(*args)
    assert strict.exit_code == 1  # the signature refuses what the model does not take
    assert "customer: unexpected column" in strict.stderr and not out.exists()
    result = cli(*args, "--passthrough", "customer")
    assert result.exit_code == 0, result.output
    assert f"scored 2,345 rows in 3 request(s) on churn → {out}" in result.stdout
    assert "answered by v1 2,345 rows" in result.stdout

    scored = pq.read_table(out)
    assert scored.column_names == ["age", "income", "customer", "prediction", "prediction_id"]
    assert scored["customer"].to_pylist() == [f"c{i}" for i in range(2345)]
    expected = models.fitted[1].predict(frame)
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), expected)
    ids = scored["prediction_id"].to_pylist()
    assert len(set(ids)) == 2345 and all(PREDICTION_ID.match(i) for i in ids)
    assert not list(out.parent.glob("*.part"))

    log = read_log(home, ids)
    assert set(ids) <= set(log["prediction_id"])  # the same path as online predictions
    logged = log.set_index("prediction_id").loc[ids[:3]]
    assert logged["input.age"].tolist() == frame["age"].head(3).tolist()
    assert logged["input.customer"].isna().all()  # passed through, never sent
    assert set(logged["route"]) == {"primary"}
    batch = re.search(r"batch id ([0-9a-f]{32})", result.stdout).group(1)
    assert set(log.set_index("prediction_id").loc[ids, "batch_id"]) == {batch}
    refused = log[log["status"] == "error"]  # the strict run's first chunk, refused
    assert len(refused) == 1000 and refused["batch_id"].nunique() == 1
    assert refused["batch_id"].iloc[0] != batch
    assert refused["error"].str.contains("customer: unexpected column").all()
    assert refused["output"].isna().all()


def test_predict_with_a_canary_reports_the_split(
    cli: Invoke, template: tuple[Path, Models], tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.parquet", template[1].X)
    cli("deploy", "churn", "--version", "1")
    cli("deploy", "churn", "--canary", "2", "--weight", "100")
    summary = as_json(
        cli(
            "predict", "churn", str(source), "-o", str(tmp_path / "o.parquet"), "-b", "64", "--json"
        )
    )
    assert re.fullmatch(r"[0-9a-f]{32}", summary.pop("batch_id"))
    assert summary == {
        "endpoint": "churn",
        "rows": 200,
        "chunks": 4,
        "output": str(tmp_path / "o.parquet"),
        "versions": {"2": 200},
    }


def test_predict_errors_are_clean_and_leave_no_file(
    cli: Invoke, template: tuple[Path, Models], tmp_path: Path
) -> None:
    X = template[1].X
    out = tmp_path / "scored.parquet"
    good = write_input(tmp_path / "good.parquet", X)
    no_endpoint = cli("predict", "churn", str(good), "-o", str(out))
    assert no_endpoint.exit_code == 1 and "error: endpoint 'churn' not found" in no_endpoint.stderr
    cli("deploy", "churn", "--version", "1")

    missing = cli("predict", "churn", str(tmp_path / "nope.parquet"), "-o", str(out))
    assert missing.exit_code == 1 and "nope.parquet: no such file" in missing.stderr
    text = tmp_path / "text.parquet"
    text.write_text("age,income\n1,2\n")
    unreadable = cli("predict", "churn", str(text), "-o", str(out))
    assert unreadable.exit_code == 1 and "is not a readable Parquet file" in unreadable.stderr
    clash = write_input(tmp_path / "clash.parquet", X, prediction=[0] * len(X))
    taken = cli("predict", "churn", str(clash), "-o", str(out))
    assert taken.exit_code == 1 and "already has a column named 'prediction'" in taken.stderr
    same = cli("predict", "churn", str(good), "-o", str(good))
    assert same.exit_code == 2 and "must not overwrite the input" in same.stderr

    # the second chunk breaks the signature: nothing is written, not even the first chunk
    bad = X.astype({"age": object})
    bad.loc[150, "age"] = "forty"
    broken = write_input(tmp_path / "broken.parquet", bad.astype({"age": str}))
    refused = cli("predict", "churn", str(broken), "-o", str(out), "-b", "100")
    assert refused.exit_code == 1
    assert "error:" in refused.stderr and "age" in refused.stderr
    for result in (no_endpoint, missing, unreadable, taken, refused):
        assert "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_an_empty_file_gives_an_empty_scored_file(
    cli: Invoke, template: tuple[Path, Models], tmp_path: Path
) -> None:
    cli("deploy", "churn", "--version", "1")
    source = write_input(tmp_path / "empty.parquet", template[1].X.head(0))
    out = tmp_path / "scored.parquet"
    result = cli("predict", "churn", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "scored 0 rows in 0 request(s)" in result.stdout
    table = pq.read_table(out)
    assert table.num_rows == 0
    assert table.column_names == ["age", "income", "prediction", "prediction_id"]


def test_serving_commands_against_a_server(app, settings, tmp_path: Path) -> None:
    server = LiveServer(app).start()
    try:
        client = Client(url=server.url)
        try:
            models = seed_models(client)
        finally:
            client.close()
        cli = make_invoke(settings.home / "unused")
        url = ["--url", server.url]
        assert cli(*url, "deploy", "churn", "--version", "2").exit_code == 0
        source = write_input(tmp_path / "in.parquet", models.X)
        out = tmp_path / "out.parquet"
        result = cli(*url, "predict", "churn", str(source), "-o", str(out), "-b", "50")
        assert result.exit_code == 0, result.output
        np.testing.assert_array_equal(
            pq.read_table(out)["prediction"].to_numpy(), models.fitted[2].predict(models.X)
        )
        back = cli(*url, "deploy", "churn", "--version", "1")
        assert back.stdout.strip() == "deploy churn: v2 → v1"
        events = as_json(cli(*url, "deployments", "history", "churn", "--json"))
        assert [e["action"] for e in events] == ["deploy", "deploy"]
        assert not (settings.home / "unused").exists()  # nothing embedded was opened
    finally:
        server.stop()
