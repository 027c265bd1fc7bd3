"""``passerelle experiments`` and ``passerelle runs``, embedded on a home the SDK filled."""

from __future__ import annotations

from tests.cli._helpers import Invoke, Seeded, as_json


def _row(output: str, needle: str) -> str:
    """The printed line containing ``needle`` (a table row)."""
    lines = [line for line in output.splitlines() if needle in line]
    assert lines, f"{needle!r} not in:\n{output}"
    return lines[0]


# -- experiments -------------------------------------------------------------------------------
def test_experiments_list_shows_the_experiment_and_its_run_count(cli: Invoke) -> None:
    result = cli("experiments", "list")
    assert result.exit_code == 0, result.output
    row = _row(result.stdout, "churn")
    assert "default" in row
    assert " 4 " in row  # three runs and one nested child
    data = as_json(cli("experiments", "list", "--json"))
    assert [(e["name"], e["run_count"]) for e in data] == [("churn", 4)]


def test_experiments_list_filters_by_project(cli: Invoke) -> None:
    assert as_json(cli("experiments", "list", "--project", "default", "--json"))
    result = cli("experiments", "list", "--project", "elsewhere", "--json")
    assert as_json(result) == []


# -- runs list ---------------------------------------------------------------------------------
def test_runs_list_shows_short_ids_names_status_and_key_columns(
    cli: Invoke, seeded: Seeded
) -> None:
    result = cli("runs", "list", "churn")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for header in ("Run", "Name", "Status", "Start", "Duration"):
        assert header in out
    for key in ("accuracy", "f1", "loss", "C", "penalty"):
        assert key in out
    row = _row(out, seeded.ids["lr-c1"][:8])
    assert "lr-c1" in row and "FINISHED" in row and "0.81" in row and "0.3" in row
    assert seeded.ids["lr-c1"] not in out  # short ids only
    assert "↳ fold-1" in _row(out, seeded.child_id[:8])
    assert "4 run(s)" in out


def test_runs_list_json_has_every_run_with_full_ids(cli: Invoke, seeded: Seeded) -> None:
    runs = as_json(cli("runs", "list", "churn", "--json"))
    assert {r["id"] for r in runs} == {*seeded.ids.values(), seeded.child_id}
    by_name = {r["name"]: r for r in runs}
    assert by_name["lr-c10"]["params"] == {"C": "10.0", "penalty": "l2"}
    assert by_name["lr-c0.1"]["metrics"]["loss"] == 0.55  # latest value


def test_runs_list_filter_and_order_by(cli: Invoke) -> None:
    runs = as_json(
        cli(
            "runs",
            "list",
            "churn",
            "--filter",
            "metrics.f1 > 0.75 and params.penalty = 'l2'",
            "--order-by",
            "metrics.f1 DESC",
            "--json",
        )
    )
    assert [r["name"] for r in runs] == ["lr-c1", "lr-c10"]


def test_runs_list_order_by_is_repeatable(cli: Invoke) -> None:
    args = ["runs", "list", "churn", "--filter", "params.penalty = 'l2'"]
    runs = as_json(cli(*args, "-o", "metrics.accuracy DESC", "-o", "metrics.loss", "--json"))
    assert [r["name"] for r in runs] == ["lr-c1", "lr-c10", "lr-c0.1"]


def test_runs_list_max_results_says_more_runs_match(cli: Invoke) -> None:
    result = cli("runs", "list", "churn", "--max-results", "2")
    assert result.exit_code == 0, result.output
    assert "2 run(s); more match" in result.stdout
    assert len(as_json(cli("runs", "list", "churn", "-n", "2", "--json"))) == 2


def test_runs_list_drops_columns_on_a_narrow_terminal_and_says_so(cli: Invoke) -> None:
    result = cli("runs", "list", "churn", env={"COLUMNS": "70"})
    assert result.exit_code == 0, result.output
    assert "showing 0 of 3 metrics" in result.stdout or "showing 1 of 3 metrics" in result.stdout
    assert "Start" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 70


def test_runs_list_limits_key_columns_to_eight_of_each(empty_cli: Invoke, tmp_path) -> None:
    from passerelle.sdk.client import Client
    from passerelle.sdk.runs import start_run

    client = Client(home=tmp_path / "home")
    try:
        with start_run(experiment="wide", client=client, capture_lineage=False) as run:
            run.log_params({f"p{i:02d}": i for i in range(11)})
            run.log_metrics({f"m{i:02d}": i / 10 for i in range(10)})
    finally:
        client.close()
    result = empty_cli("runs", "list", "wide", env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "showing 8 of 10 metrics and 8 of 11 params" in result.stdout
    assert "m07" in result.stdout and "m08" not in result.stdout
    assert "p07" in result.stdout and "p10" not in result.stdout


def test_runs_list_unknown_experiment_is_a_clear_error(cli: Invoke) -> None:
    result = cli("runs", "list", "no-such-experiment")
    assert result.exit_code == 1
    assert "error: experiment 'no-such-experiment' not found" in result.stderr
    assert "Traceback" not in result.output


def test_runs_list_malformed_filter_names_the_field(cli: Invoke) -> None:
    result = cli("runs", "list", "churn", "--filter", "metrics.f1 >> 3")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: malformed filter")
    assert "(field: filter)" in result.stderr
    assert result.stdout == ""


# -- runs show ---------------------------------------------------------------------------------
def test_runs_show_prints_every_section(cli: Invoke, seeded: Seeded) -> None:
    run_id = seeded.ids["lr-c1"]
    result = cli("runs", "show", run_id)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for section in ("Params", "Metrics", "Tags", "Artifacts", "Datasets", "Lineage"):
        assert section in out
    for part in ("code", "environment", "data"):
        assert f"\n{part}" in out
    assert run_id in out
    assert "churn" in out and "FINISHED" in out
    assert "penalty" in _row(out, "penalty") and "l2" in _row(out, "penalty")
    assert "0.81" in _row(out, " f1 ")
    assert "retention" in _row(out, "team")
    assert "notes/readme.txt" in out
    assert "train" in _row(out, "input, training")
    assert seeded.dataset_digest in out  # full fingerprint in the data lineage
    assert "fold-1" in _row(out, "Child runs")
    # lineage captured by the SDK inside this git checkout
    assert "git checkout" in out and "commit" in out
    assert "python" in out and "packages sha256" in out


def test_runs_show_accepts_the_short_id(cli: Invoke, seeded: Seeded) -> None:
    full = as_json(cli("runs", "show", seeded.ids["lr-c10"], "--json"))
    short = as_json(cli("runs", "show", seeded.ids["lr-c10"][:8], "--json"))
    assert short["id"] == full["id"] == seeded.ids["lr-c10"]


def test_runs_show_json_has_lineage_artifacts_and_children(cli: Invoke, seeded: Seeded) -> None:
    data = as_json(cli("runs", "show", seeded.ids["lr-c1"], "--json"))
    assert set(data["lineage"]) == {"code", "environment", "data"}
    assert data["lineage"]["code"]["git"] is True
    assert len(data["lineage"]["code"]["commit"]) == 40
    assert data["lineage"]["data"][0]["digest"] == seeded.dataset_digest
    assert [a["path"] for a in data["artifacts"]] == ["notes/readme.txt"]
    assert [c["id"] for c in data["children"]] == [seeded.child_id]
    assert data["params"] == {"C": "1.0", "penalty": "l2"}


def test_runs_show_unknown_run_exits_1_with_the_message(cli: Invoke) -> None:
    for unknown in ("0" * 32, "deadbeef", "not-a-run"):
        result = cli("runs", "show", unknown)
        assert result.exit_code == 1, unknown
        assert f"error: run '{unknown}' not found" in result.stderr
        assert "Traceback" not in result.output


# -- runs compare ------------------------------------------------------------------------------
def test_runs_compare_marks_differences_and_the_best_values(cli: Invoke, seeded: Seeded) -> None:
    ids = [seeded.ids[n] for n in ("lr-c0.1", "lr-c1", "lr-c10")]
    result = cli("runs", "compare", *[i[:8] for i in ids])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for name in ("lr-c0.1", "lr-c1", "lr-c10"):
        assert name in out
    # row labels start their line (ids are random hex, so a bare "f1" could match inside one)
    labels = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert labels.index("params") < labels.index("penalty") < labels.index("metrics")
    assert labels.index("metrics") < labels.index("f1")
    assert "0.81 ★" in _row(out, "  f1 ")  # highest f1
    assert "0.3 ★" in _row(out, "  loss ")  # lowest loss
    assert "★" not in _row(out, "  accuracy ")  # equal everywhere: nothing to pick


def test_runs_compare_json(cli: Invoke, seeded: Seeded) -> None:
    a, b = seeded.ids["lr-c0.1"], seeded.ids["lr-c1"]
    data = as_json(cli("runs", "compare", a, b, "--json"))
    assert [r["id"] for r in data["runs"]] == [a, b]
    params = {p["key"]: p for p in data["params"]}
    assert params["C"]["differs"] is True and params["penalty"]["differs"] is False
    assert params["C"]["values"] == {a: "0.1", b: "1.0"}
    metrics = {m["key"]: m for m in data["metrics"]}
    assert (metrics["f1"]["goal"], metrics["f1"]["best"]) == ("max", [b])
    assert (metrics["loss"]["goal"], metrics["loss"]["best"]) == ("min", [b])
    assert metrics["accuracy"]["best"] == []


def test_runs_compare_direction_can_be_chosen(cli: Invoke, seeded: Seeded) -> None:
    a, b = seeded.ids["lr-c0.1"], seeded.ids["lr-c1"]
    data = as_json(cli("runs", "compare", a, b, "--minimize", "f1", "--maximize", "loss", "--json"))
    metrics = {m["key"]: m for m in data["metrics"]}
    assert metrics["f1"]["best"] == [a]
    assert metrics["loss"]["best"] == [a]


def test_runs_compare_needs_two_different_runs(cli: Invoke, seeded: Seeded) -> None:
    run_id = seeded.ids["lr-c1"]
    result = cli("runs", "compare", run_id, run_id[:8])
    assert result.exit_code == 1
    assert "error: compare needs at least two different runs" in result.stderr


def test_runs_compare_unknown_run(cli: Invoke, seeded: Seeded) -> None:
    result = cli("runs", "compare", seeded.ids["lr-c1"], "f" * 32)
    assert result.exit_code == 1
    assert f"run '{'f' * 32}' not found" in result.stderr


def test_an_ambiguous_short_id_is_refused(empty_cli: Invoke, tmp_path) -> None:
    """Two runs whose ids share their first four characters: the prefix must not pick one."""
    from passerelle.sdk.client import Client

    client = Client(home=tmp_path / "home")
    seen: dict[str, str] = {}
    try:
        for _ in range(5000):  # about 300 runs give two ids with the same 4-character prefix
            run_id = client.create_run(experiment="many")["id"]
            if run_id[:4] in seen:
                break
            seen[run_id[:4]] = run_id
        else:
            raise AssertionError("no two run ids shared a prefix")
    finally:
        client.close()
    prefix = run_id[:4]
    result = empty_cli("runs", "show", prefix)
    assert result.exit_code == 1
    assert f"error: run id prefix '{prefix}' matches several runs" in result.stderr
    longer = as_json(empty_cli("runs", "show", run_id[:12], "--json"))
    assert longer["id"] == run_id


def test_version_and_help(cli: Invoke) -> None:
    from passerelle import __version__

    version = cli("--version")
    assert version.exit_code == 0 and version.stdout.strip() == f"passerelle {__version__}"
    helped = cli("--help")
    assert helped.exit_code == 0
    for command in ("server", "experiments", "runs", "keys", "projects"):
        assert command in helped.stdout
