"""The tracking SDK, embedded and against a live server."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

import passerelle as psl
from passerelle.core.errors import Conflict, InvalidInput, NotFound, PasserelleError
from passerelle.sdk.client import Client


def test_readme_example_round_trip(sdk_client: Client, workdir: Path) -> None:
    train = pd.DataFrame({"age": [31, 45, 27], "plan": ["pro", "free", "pro"]})
    Path("confusion.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    losses = [0.9, 0.6, 0.4, 0.35]
    with psl.start_run(experiment="churn", run_name="logreg-C1", client=sdk_client) as run:
        run.log_params({"C": 1.0, "penalty": "l2"})
        ds = run.log_dataset(train, name="train", context="training")
        for step, loss in enumerate(losses):
            run.log_metric("loss", loss, step=step)
        run.log_metrics({"f1": 0.81, "accuracy": 0.86})
        run.log_artifact("confusion.png")

    r = psl.get_run(run.id, client=sdk_client)
    assert r.status == "FINISHED" and r.end_time is not None
    assert r.params == {"C": "1.0", "penalty": "l2"}
    assert r.metrics == {"loss": 0.35, "f1": 0.81, "accuracy": 0.86}
    assert [v for _, v, _ in r.metric_history("loss")] == losses
    assert [s for s, _, _ in r.metric_history("loss")] == [0, 1, 2, 3]
    assert set(r.lineage) == {"code", "environment", "data"}
    assert r.lineage["data"][0]["digest"] == ds["digest"]
    assert r.lineage["data"][0]["num_rows"] == 3
    assert r.lineage["environment"]["python_version"]
    assert [a["path"] for a in r.artifacts()] == ["confusion.png"]
    out = r.download_artifact("confusion.png", workdir / "back.png")
    assert out.read_bytes() == b"\x89PNG\r\n\x1a\nfake"

    df = psl.search_runs(
        experiment="churn",
        filter="metrics.f1 > 0.8 and params.penalty = 'l2'",
        order_by=["metrics.f1 DESC"],
        client=sdk_client,
    )
    assert list(df["run_id"]) == [run.id]
    assert df.loc[0, "metrics.f1"] == 0.81 and df.loc[0, "params.C"] == "1.0"


def test_exception_marks_failed_and_is_reraised(sdk_client: Client, workdir: Path) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom, match="exactly this"):
        with psl.start_run(experiment="e", client=sdk_client) as run:
            run.log_metric("m", 1.0)
            raise Boom("exactly this")
    r = psl.get_run(run.id, client=sdk_client)
    assert r.status == "FAILED"
    assert r.metrics == {"m": 1.0}  # values logged before the failure are kept


def test_keyboard_interrupt_marks_killed(embedded_client: Client, workdir: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with psl.start_run(experiment="e", client=embedded_client) as run:
            raise KeyboardInterrupt
    assert psl.get_run(run.id, client=embedded_client).status == "KILLED"


def test_no_value_lost_when_run_ends(sdk_client: Client, workdir: Path) -> None:
    n = 5000
    with psl.start_run(experiment="volume", client=sdk_client) as run:
        for i in range(n):
            run.log_metric("x", float(i))
    history = psl.get_run(run.id, client=sdk_client).metric_history("x")
    assert len(history) == n
    assert [v for _, v, _ in history] == [float(i) for i in range(n)]


def test_steps_count_per_key_without_explicit_step(embedded_client: Client, workdir) -> None:
    with psl.start_run(experiment="e", client=embedded_client) as run:
        for v in (3.0, 2.0, 1.0):
            run.log_metric("a", v)
        run.log_metric("b", 9.0)
    r = psl.get_run(run.id, client=embedded_client)
    assert [s for s, _, _ in r.metric_history("a")] == [0, 1, 2]
    assert r.metrics["a"] == 1.0 and r.metric_history("b")[0][0] == 0


def test_special_float_values(embedded_client: Client, workdir: Path) -> None:
    with psl.start_run(experiment="e", client=embedded_client) as run:
        run.log_metric("nan", math.nan)
        run.log_metric("inf", math.inf)
    r = psl.get_run(run.id, client=embedded_client)
    assert math.isnan(r.metrics["nan"]) and r.metrics["inf"] == math.inf
    assert math.isnan(r.metric_history("nan")[0][1])
    assert r.metric_history("inf")[0][1] == math.inf
    df = psl.search_runs(experiment="e", filter="metrics.nan > -1", client=embedded_client)
    assert df.empty  # NaN compares false with everything, as in numpy


def test_non_number_metric_raises_at_call_site(embedded_client: Client, workdir) -> None:
    with psl.start_run(experiment="e", client=embedded_client) as run:
        with pytest.raises(TypeError, match="must be a number"):
            run.log_metric("acc", "high")
        with pytest.raises(TypeError):
            run.log_metric("flag", True)


def test_param_conflict_raises_and_keeps_first_value(sdk_client: Client, workdir) -> None:
    with psl.start_run(experiment="e", client=sdk_client) as run:
        run.log_param("C", 1.0)
        run.log_param("C", 1.0)  # same value again is fine
        with pytest.raises(Conflict, match="immutable") as exc:
            run.log_param("C", 2.0)
        assert exc.value.field == "params.C"
    assert psl.get_run(run.id, client=sdk_client).params == {"C": "1.0"}


def test_nested_runs(embedded_client: Client, workdir: Path) -> None:
    with psl.start_run(experiment="cv", client=embedded_client) as parent:
        for fold in range(3):
            with psl.start_run(nested=True, run_name=f"fold-{fold}", client=embedded_client) as c:
                c.log_metric("acc", 0.8 + fold / 100)
        assert psl.active_run() is parent
    children = psl.get_run(parent.id, client=embedded_client).children()
    assert sorted(c.name for c in children) == ["fold-0", "fold-1", "fold-2"]
    assert all(c.parent_run_id == parent.id for c in children)
    assert psl.active_run() is None


def test_module_level_functions_use_active_run(embedded_client: Client, workdir) -> None:
    with psl.start_run(experiment="e", client=embedded_client) as run:
        psl.log_params({"a": 1})
        psl.log_metric("m", 0.5)
        psl.set_tag("team", "risk")
    r = psl.get_run(run.id, client=embedded_client)
    assert r.params == {"a": "1"} and r.metrics == {"m": 0.5} and r.tags == {"team": "risk"}
    with pytest.raises(RuntimeError, match="no active run"):
        psl.log_metric("m", 1.0)


def test_artifact_folder_upload(sdk_client: Client, workdir: Path) -> None:
    folder = workdir / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("A")
    (folder / "sub" / "b.txt").write_text("B")
    big = workdir / "big.bin"
    big.write_bytes(bytes(range(256)) * 20000)  # 5 MB, sent in chunks
    with psl.start_run(experiment="e", client=sdk_client) as run:
        run.log_artifact(folder)
        run.log_artifacts(folder, artifact_path="flat")
        run.log_artifact(big, artifact_path="blobs")
    paths = [a["path"] for a in psl.get_run(run.id, client=sdk_client).artifacts()]
    assert paths == [
        "blobs/big.bin",
        "flat/a.txt",
        "flat/sub/b.txt",
        "plots/a.txt",
        "plots/sub/b.txt",
    ]
    back = sdk_client.download_artifact(run.id, "blobs/big.bin", workdir / "big-back.bin")
    assert back.read_bytes() == big.read_bytes()


def test_unknown_run_and_bad_filter(sdk_client: Client) -> None:
    with pytest.raises(NotFound, match="not found"):
        psl.get_run("0" * 32, client=sdk_client)
    with pytest.raises(InvalidInput, match="malformed filter") as exc:
        psl.search_runs(filter="metrics.f1 >", client=sdk_client)
    assert exc.value.field == "filter"


def test_server_rejection_during_flush_is_raised_at_end(embedded_client: Client, workdir) -> None:
    run = psl.start_run(experiment="e", client=embedded_client)
    embedded_client.delete_run(run.id)  # the server now refuses this run's values
    run.log_metric("m", 1.0)
    with pytest.raises(PasserelleError):
        run.end()


def test_search_runs_paginates_into_one_frame(embedded_client: Client, workdir) -> None:
    for i in range(25):
        embedded_client.create_run(experiment="many", name=f"r{i}")
    df = psl.search_runs(experiment="many", order_by=["name ASC"], client=embedded_client)
    assert len(df) == 25 and df["run_name"].tolist()[:3] == ["r0", "r1", "r10"]
    df = psl.search_runs(experiment="many", max_results=7, client=embedded_client)
    assert len(df) == 7


def test_embedded_client_ignores_server_listening_settings(tmp_path, monkeypatch) -> None:
    """A job run with the server's environment (0.0.0.0, auth on) still logs embedded."""
    monkeypatch.setenv("PASSERELLE_HOST", "0.0.0.0")
    monkeypatch.setenv("PASSERELLE_AUTH", "on")
    client = Client(home=tmp_path / "home")
    try:
        run = client.create_run(experiment="job")
        assert client.get_run(run["id"])["experiment"] == "job"
    finally:
        client.close()


def test_embedded_server_failure_is_an_error_not_a_raw_exception(embedded_client, app) -> None:
    """An unexpected failure inside the in-process app surfaces as the remote 500 would."""
    app.state.engine.dispose()
    app.state.sessions.kw["bind"] = None  # break the database for this app
    with pytest.raises(PasserelleError) as exc:
        embedded_client.list_experiments()
    assert getattr(exc.value, "status", None) == 500
