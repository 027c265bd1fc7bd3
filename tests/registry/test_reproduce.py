"""``passerelle reproduce``: a training script committed in a temporary git repository, run once,
then checked and rerun against the same store.

Everything is real: git repositories and worktrees, the object store on disk, the training script
run as a subprocess, and (in one test) a fresh environment built by uv from the recorded lock.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from passerelle.app import create_app
from passerelle.core.settings import Settings
from passerelle.registry.reproduce_checks import check_data, lock_relpath
from passerelle.registry.reproduce_report import (
    DIFFERS,
    OK,
    SKIPPED,
    WARNING,
    ReproduceReport,
    Target,
    compare_metrics,
    package_diff,
)
from passerelle.sdk.client import Client
from passerelle.sdk.fingerprint import fingerprint
from passerelle.sdk.lineage import installed_packages
from passerelle.sdk.runs import start_run
from tests.cli._helpers import Invoke, clean_env, make_invoke
from tests.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[2]

TRAIN_SCRIPT = """\
import os
import sys
from pathlib import Path

import pandas as pd
from sklearn.linear_model import LogisticRegression

import passerelle as psl

C = 1.0
HERE = Path(__file__).resolve().parent
data_dir = os.environ.get("PASSERELLE_REPRODUCE_DATA_DIR")
df = pd.read_parquet(Path(data_dir) / "train.parquet" if data_dir else HERE / "data/train.parquet")
C = float(os.environ.get("TRAIN_C", C))
X, y = df[["x1", "x2"]], df["y"]
with psl.start_run(experiment="repro") as run:
    run.log_dataset(df, name="train")
    model = LogisticRegression(C=C).fit(X, y)
    run.log_param("C", C)
    run.log_metrics({"accuracy": float(model.score(X, y)), "coef_x1": float(model.coef_[0][0])})
    uri = psl.log_model(model, "model", input_example=X.head(5))
psl.register_model(uri, name=sys.argv[1])
"""

OFFLINE = {"UV_OFFLINE": "1"}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Data Scientist",
    "GIT_AUTHOR_EMAIL": "ds@example.com",
    "GIT_COMMITTER_NAME": "Data Scientist",
    "GIT_COMMITTER_EMAIL": "ds@example.com",
}


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args], cwd=repo, env=clean_env(**GIT_ENV), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def training_data() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    x1, x2 = rng.normal(0, 1, 200), rng.normal(0, 1, 200)
    noise = rng.normal(0, 0.8, 200)
    return pd.DataFrame({"x1": x1, "x2": x2, "y": ((x1 + 0.5 * x2 + noise) > 0).astype(int)})


def make_repo(folder: Path, *, uv_project: bool = False) -> Path:
    """A git repository with the training script and its data committed."""
    repo = folder / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "train.py").write_text(TRAIN_SCRIPT)
    training_data().to_parquet(repo / "data" / "train.parquet", index=False)
    (repo / ".gitignore").write_text(".venv/\n.passerelle/\n")
    if uv_project:
        # Constrained to this environment's versions: the lock resolves to wheels uv already
        # holds, so the runs below install offline. Resolving reads the package index: the
        # cache that `uv sync --frozen` fills holds wheels, not the index pages a resolution needs.
        pins = [p for p in installed_packages() if not p.startswith("passerelle==")]
        (repo / "pyproject.toml").write_text(
            '[project]\nname = "trainer"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
            'dependencies = ["passerelle", "scikit-learn"]\n\n'
            f'[tool.uv.sources]\npasserelle = {{ path = "{ROOT}", editable = true }}\n\n'
            f"[tool.uv]\nconstraint-dependencies = {json.dumps(pins)}\n"
        )
        (repo / ".python-version").write_text(f"{sys.version_info[0]}.{sys.version_info[1]}\n")
        out = subprocess.run(
            ["uv", "lock", "--quiet"],
            cwd=repo,
            env=_uv_env(),
            text=True,
            capture_output=True,
        )
        assert out.returncode == 0, out.stderr
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "train a model")
    return repo


def _uv_env(**extra: str) -> dict[str, str]:
    env = clean_env(**extra)
    for key in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"):
        env.pop(key, None)
    return env


def train(repo: Path, home: Path, name: str, *, uv: bool = False, **env: str) -> None:
    """Run the committed script once, as a user would, logging to the store under ``home``."""
    command = ["uv", "run", "--frozen", "--quiet", "python"] if uv else [sys.executable]
    out = subprocess.run(
        [*command, "train.py", name],
        cwd=repo,
        env=_uv_env(PASSERELLE_HOME=str(home), **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@dataclass
class Trained:
    repo: Path
    home: Path
    cli: Invoke
    run_id: str
    snapshot: str


def trained_project(folder: Path, name: str = "repro", **env: str) -> Trained:
    repo = make_repo(folder)
    home = folder / "home"
    train(repo, home, name, **env)
    client = Client(home=home)
    try:
        version = client.request("GET", f"/api/v1/models/{name}/versions/1")
    finally:
        client.close()
    snapshot = version["lineage"]["data"][0]["snapshot_sha256"]
    return Trained(repo, home, make_invoke(home), version["source_run_id"], snapshot)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """One clean training run, shared by the tests that do not change the store's history."""
    return trained_project(tmp_path_factory.mktemp("reproduce"))


def report_of(result) -> dict:
    return json.loads(result.stdout)


def checks(report: dict, section: str) -> dict[str, dict]:
    return {c["name"]: c for c in report["sections"][section]["checks"]}


# -- without --rerun ---------------------------------------------------------------------------
def test_check_matches_code_data_and_environment(trained: Trained) -> None:
    result = trained.cli("reproduce", "models:/repro/1", "--json")
    assert result.exit_code == 0, result.output
    report = report_of(result)
    assert report["reproduces"] is True and report["run_id"] == trained.run_id
    sections = report["sections"]
    assert {s: sections[s]["status"] for s in sections} == {
        "code": "ok",
        "data": "ok",
        "environment": "warning",  # no uv.lock in this repository
        "metrics": "skipped",
    }
    assert str(trained.repo) in checks(report, "code")["commit"]["detail"]
    assert checks(report, "data")["train"]["status"] == OK
    env = checks(report, "environment")
    assert env["packages"]["status"] == OK  # the script ran with this very interpreter
    assert env["uv.lock"]["detail"] == "no uv.lock was recorded"

    text = trained.cli("reproduce", "models:/repro/1")
    assert text.exit_code == 0, text.output
    for line in ("✓ code", "✓ data", "! environment", "- metrics", "✓ reproduces"):
        assert line in text.stdout


def test_a_run_id_prefix_is_enough(trained: Trained) -> None:
    result = trained.cli("reproduce", trained.run_id[:10], "--json")
    assert result.exit_code == 0, result.output
    assert report_of(result)["target"] == f"run {trained.run_id}"


def test_usage_errors_exit_2_and_unknown_models_exit_1(trained: Trained) -> None:
    bad = trained.cli("reproduce", "churn-v1")
    assert bad.exit_code == 2
    assert "cannot reproduce 'churn-v1'" in bad.stderr
    assert trained.cli("reproduce", "models:/repro/1", "--tolerance", "-1").exit_code == 2
    assert trained.cli("reproduce", "models:/repro/1", "--repo", "/no/such/folder").exit_code == 2
    missing = trained.cli("reproduce", "models:/nope/1")
    assert missing.exit_code == 1
    assert "model 'nope' not found" in missing.stderr


def test_a_commit_missing_from_the_checkout_is_reported(trained: Trained, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "README").write_text("another project\n")
    git(other, "init", "--quiet")
    git(other, "add", ".")
    git(other, "commit", "--quiet", "-m", "unrelated")
    result = trained.cli(
        "reproduce", "models:/repro/1", "--rerun", "--no-env", "--repo", str(other), "--json"
    )
    assert result.exit_code == 1, result.output
    report = report_of(result)
    commit = checks(report, "code")["commit"]
    assert commit["status"] == DIFFERS and f"is not in {other}" in commit["detail"]
    assert "not rerun: the code" in checks(report, "metrics")["rerun"]["detail"]
    assert report["new_run_id"] is None


def test_a_run_without_lineage_cannot_reproduce(trained: Trained) -> None:
    client = Client(home=trained.home)
    try:
        with start_run(experiment="notebook", client=client, capture_lineage=False) as run:
            run.log_metric("f1", 0.5)
    finally:
        client.close()
    result = trained.cli("reproduce", run.id, "--json")
    assert result.exit_code == 1, result.output
    report = report_of(result)
    assert checks(report, "code")["commit"]["detail"] == "no code lineage was recorded for this run"
    assert checks(report, "data")["datasets"]["status"] == WARNING


# -- --rerun -----------------------------------------------------------------------------------
def test_rerun_reproduces_and_tags_the_new_run(trained: Trained) -> None:
    result = trained.cli("reproduce", "models:/repro/1", "--rerun", "--no-env", "--json")
    assert result.exit_code == 0, result.output
    report = report_of(result)
    assert report["reproduces"] is True
    metrics = checks(report, "metrics")
    assert metrics["accuracy"]["status"] == OK and metrics["coef_x1"]["status"] == OK
    assert checks(report, "data")["train"]["status"] == OK
    assert (
        checks(report, "code")["rerun"]["detail"] == "the rerun recorded the same commit and diff"
    )
    client = Client(home=trained.home)
    try:
        new = client.get_run(report["new_run_id"])
    finally:
        client.close()
    assert new["id"] != trained.run_id
    assert new["tags"]["passerelle.reproduces"] == trained.run_id
    assert new["tags"]["passerelle.reproduce.result"] == "reproduced"
    # The rerun read the recorded snapshot, written where the variable pointed.
    assert new["lineage"]["data"][0]["snapshot_sha256"] == trained.snapshot
    # The temporary worktree is gone and git forgot it.
    assert git(trained.repo, "worktree", "list").count("\n") == 0


def test_a_corrupted_snapshot_is_a_data_change(tmp_path: Path) -> None:
    project = trained_project(tmp_path)
    blob = next((project.home / "artifacts" / "blobs").rglob(project.snapshot))
    raw = bytearray(blob.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    blob.write_bytes(bytes(raw))

    result = project.cli("reproduce", "models:/repro/1", "--rerun", "--no-env", "--json")
    assert result.exit_code == 1, result.output
    report = report_of(result)
    assert report["reproduces"] is False
    data = checks(report, "data")["train"]
    assert data["status"] == DIFFERS
    assert "corrupted in the store" in data["detail"] and project.snapshot[:8] in data["detail"]
    assert checks(report, "metrics")["rerun"]["status"] == DIFFERS  # not rerun on bad data
    assert report["new_run_id"] is None

    text = project.cli("reproduce", "models:/repro/1")
    assert text.exit_code == 1
    assert "✗ data" in text.stdout and "✗ does not reproduce" in text.stdout


def test_metrics_beyond_the_tolerance_do_not_reproduce(tmp_path: Path) -> None:
    # The original run had a hyperparameter from an environment variable the lineage cannot
    # see; the rerun trains with the default and its coefficient moves.
    project = trained_project(tmp_path, TRAIN_C="0.01")
    result = project.cli("reproduce", "models:/repro/1", "--rerun", "--no-env")
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "✓ code" in out and "✓ data" in out and "✗ metrics" in out
    assert re.search(r"✗ coef_x1 [-\d.e]+ → [-\d.e]+ \(Δ [-+][\d.e-]+ > tolerance 1e-06\)", out), (
        out
    )
    assert "✗ does not reproduce" in out
    assert "rerun logged as run" in out


def test_a_dirty_run_is_rerun_with_its_recorded_diff(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    home = tmp_path / "home"
    script = repo / "train.py"
    script.write_text(script.read_text().replace("C = 1.0", "C = 0.02"))  # not committed
    train(repo, home, "dirty")
    git(repo, "checkout", "--", "train.py")  # the change is gone from the checkout
    cli = make_invoke(home)
    result = cli("reproduce", "models:/dirty/1", "--rerun", "--no-env", "--json")
    assert result.exit_code == 0, result.output
    report = report_of(result)
    code = checks(report, "code")
    assert code["diff"]["status"] == OK
    assert code["worktree"]["detail"] == "worktree at the commit, recorded diff applied"
    client = Client(home=home)
    try:
        new = client.get_run(report["new_run_id"])
    finally:
        client.close()
    assert new["params"]["C"] == "0.02"  # the uncommitted change was in force
    assert new["lineage"]["code"]["dirty"] is True


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not installed")
def test_rerun_rebuilds_the_environment_from_the_recorded_lock_with_uv(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, uv_project=True)
    home = tmp_path / "home"
    # The project's own environment, synced from uv.lock, as `uv run` does.
    train(repo, home, "locked", uv=True, **OFFLINE)
    cli = make_invoke(home)
    result = cli("reproduce", "models:/locked/1", "--rerun", "--json", env=OFFLINE)
    assert result.exit_code == 0, result.output
    report = report_of(result)
    env = checks(report, "environment")
    assert env["rebuild"]["detail"] == "rebuilt from the recorded uv.lock with uv sync --frozen"
    assert env["uv.lock"]["detail"] == "the rerun saw the recorded uv.lock"
    # Same lock, same packages: the rebuilt environment is the one the run had.
    assert env["packages"]["status"] == OK, env["packages"]["detail"]
    assert report["sections"]["metrics"]["status"] == "ok"
    assert not any(p.name.startswith("venv") for p in repo.iterdir())  # nothing left in the repo


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not installed")
def test_without_a_project_the_rerun_installs_the_recorded_package_list(trained: Trained) -> None:
    # The repository has no pyproject.toml: the environment comes from the package list the run
    # recorded (this test suite's own environment), installed into a fresh one by uv. Online:
    # resolving a package list needs the index's metadata, which uv only caches once it has
    # resolved those packages itself (a `uv sync --frozen` on a new machine never does).
    result = trained.cli("reproduce", "models:/repro/1", "--rerun", "--json")
    assert result.exit_code == 0, result.output
    env = checks(report_of(result), "environment")
    assert env["rebuild"]["detail"] == "rebuilt from the recorded package list with uv pip install"
    assert env["packages"]["status"] == OK, env["packages"]["detail"]


def test_rerun_against_a_server(tmp_path: Path) -> None:
    """The original run, the rerun and the check all go through one server.

    SQLite only: what differs from embedded mode is how the rerun reaches the store, not the
    database behind the server, and each variant costs two training runs.
    """
    app = create_app(Settings(home=tmp_path / "server", _env_file=None))
    server = LiveServer(app).start()
    try:
        repo = make_repo(tmp_path)
        train(repo, tmp_path / "unused", "served", PASSERELLE_URL=server.url)
        cli = make_invoke(tmp_path / "unused")
        result = cli(
            "--url", server.url, "reproduce", "models:/served/1", "--rerun", "--no-env", "--json"
        )
        assert result.exit_code == 0, result.output
        report = report_of(result)
        client = Client(url=server.url)
        try:
            new = client.get_run(report["new_run_id"])
        finally:
            client.close()
        assert new["tags"]["passerelle.reproduces"] == report["run_id"]
        assert not (tmp_path / "unused").exists()  # nothing was written to an embedded store
    finally:
        server.stop()
        app.state.engine.dispose()


def test_blobs_are_read_back_by_digest_and_verified(client, settings) -> None:
    data = b"numpy==2.0.1\npandas==2.2.0\n"
    digest = client.put("/api/v1/blobs", content=data).json()["sha256"]
    got = client.get(f"/api/v1/blobs/{digest}")
    assert got.status_code == 200 and got.content == data
    assert got.headers["etag"] == f'"{digest}"'
    missing = client.get(f"/api/v1/blobs/{'0' * 64}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/blobs/not-a-digest").status_code == 422
    blob = next((settings.home / "artifacts" / "blobs").rglob(digest))
    blob.write_bytes(data.replace(b"2.0.1", b"2.0.2"))
    corrupted = client.get(f"/api/v1/blobs/{digest}")
    assert corrupted.status_code == 500 and corrupted.json()["error"]["code"] == "integrity"


# -- the comparisons themselves ----------------------------------------------------------------
def test_a_snapshot_that_no_longer_matches_its_fingerprint(embedded_client, tmp_path) -> None:
    recorded = training_data()
    other = recorded.assign(x1=recorded["x1"] + 1.0)
    other.to_parquet(tmp_path / "other.parquet", index=False)
    with open(tmp_path / "other.parquet", "rb") as fh:
        snap = embedded_client.upload_blob(fh)["sha256"]
    digest = fingerprint(recorded)[0].digest
    report = ReproduceReport(Target("test", None, {}, {}), rerun=False, tolerance=0)
    usable = check_data(
        report,
        embedded_client,
        [{"name": "train", "digest": digest, "snapshot_sha256": snap, "direction": "input"}],
        tmp_path / "data",
    )
    assert usable is False
    [check] = report.section("data")
    now = fingerprint(other)[0].digest
    assert check.status == DIFFERS
    assert (
        check.detail
        == f"train fingerprint {digest[:8]}… recorded, snapshot now hashes to {now[:8]}…"
    )


def test_compare_metrics_rules() -> None:
    recorded = {"f1": 0.81, "loss": "NaN", "auc": 0.9, "time": 3.0, "gone": 1.0}
    new = {"f1": 0.79, "loss": "NaN", "auc": 0.9 + 1e-9, "time": 9.0, "extra": 2.0}
    got = {c.name: c for c in compare_metrics(recorded, new, 1e-6, ignore=("time",))}
    assert got["f1"].status == DIFFERS
    assert got["f1"].detail == "f1 0.81 → 0.79 (Δ -0.02 > tolerance 1e-06)"
    assert got["loss"].status == OK  # NaN then NaN is the same result
    assert got["auc"].status == OK
    assert got["time"].status == SKIPPED
    assert got["gone"].status == DIFFERS and "not logged by the rerun" in got["gone"].detail
    assert got["extra"].status == WARNING


def test_package_diff_names_what_changed() -> None:
    old = b"numpy==1.26.4\npandas==2.2.0\ntorch==2.3.0\n"
    new = b"numpy==2.0.1\npandas==2.2.0\npolars==1.0.0\n"
    assert package_diff(old, new) == "numpy 1.26.4 → 2.0.1, +polars 1.0.0, -torch 2.3.0"


def test_a_recorded_lock_path_cannot_climb_out_of_the_repository() -> None:
    root = "/work/churn"
    assert lock_relpath({"uv_lock_path": "/work/churn/uv.lock"}, root) == "uv.lock"
    assert lock_relpath({"uv_lock_path": "/work/churn/svc/uv.lock"}, root) == "svc/uv.lock"
    assert lock_relpath({"uv_lock_path": "/work/churn/../../etc/uv.lock"}, root) is None
    assert lock_relpath({"uv_lock_path": "/elsewhere/uv.lock"}, root) is None
