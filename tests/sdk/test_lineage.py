"""Code and environment lineage, captured without the user asking."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from passerelle.sdk.lineage import _strip_credentials, capture_code, find_lock_file

SCRIPT = """
import passerelle as psl
with psl.start_run(experiment="lineage") as run:
    run.log_metric("m", 1.0)
print(run.id)
"""


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "remote", "add", "origin", "https://user:s3cret@example.org/team/churn.git")
    (root / "train.py").write_text(SCRIPT)
    (root / "uv.lock").write_text("version = 1\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def run_script(repo: Path, home: Path) -> dict:
    env = {**os.environ, "PASSERELLE_HOME": str(home), "PASSERELLE_CONTAINER_IMAGE": "img:1.2"}
    env.pop("PASSERELLE_URL", None)
    out = subprocess.run(
        [sys.executable, "train.py"],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    run_id = out.stdout.strip().splitlines()[-1]
    code = (
        "import json, sys, passerelle as psl; "
        f"r = psl.get_run({run_id!r}); print(json.dumps(r.lineage))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_clean_then_dirty_checkout(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    head = git(repo, "rev-parse", "HEAD")
    clean = run_script(repo, home)
    code = clean["code"]
    assert code["commit"] == head and code["branch"] == "main"
    assert code["dirty"] is False and code["diff_sha256"] is None
    assert code["remote"] == "https://example.org/team/churn.git"  # no credentials stored
    env = clean["environment"]
    assert env["uv_lock_sha256"] == hashlib.sha256(b"version = 1\n").hexdigest()
    assert env["container_image"] == "img:1.2"
    assert env["command"][-1] == "train.py"
    assert env["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert len(env["packages_sha256"]) == 64

    with open(repo / "train.py", "a") as fh:
        fh.write("# tweak\n")
    dirty = run_script(repo, home)["code"]
    assert dirty["commit"] == head and dirty["dirty"] is True
    diff = subprocess.run(
        ["git", "diff", "HEAD", "--binary"], cwd=repo, capture_output=True, check=True
    ).stdout
    assert dirty["diff_sha256"] == hashlib.sha256(diff).hexdigest()
    assert dirty["diff_blob"] == dirty["diff_sha256"]  # the diff itself is kept by content


def test_outside_git_records_no_commit(tmp_path: Path) -> None:
    code, diff = capture_code(tmp_path)
    assert code["git"] is False and diff is None


def test_credentials_stripped_from_remote() -> None:
    assert _strip_credentials("https://tok@github.com/a/b") == "https://github.com/a/b"
    assert _strip_credentials("git@github.com:a/b.git") == "git@github.com:a/b.git"


def test_lock_file_search_stops_at_root(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text("x")
    inner = tmp_path / "repo" / "src"
    inner.mkdir(parents=True)
    assert find_lock_file(inner, stop=tmp_path / "repo") is None
    assert find_lock_file(inner) == tmp_path / "uv.lock"
