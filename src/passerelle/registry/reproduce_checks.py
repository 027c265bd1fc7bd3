"""The checks of ``passerelle reproduce``: recorded lineage against what the store and git hold.

Each check downloads what it needs through the REST API (blobs are verified on the way), adds its
findings to the report and returns what a rerun needs: the checkout and diff, the data folder,
the recorded lock and package list.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from passerelle.core.errors import IntegrityFailure, NotFound, PasserelleError
from passerelle.registry import reproduce_rerun as rr
from passerelle.registry.reproduce_report import (
    DIFFERS,
    OK,
    WARNING,
    ReproduceReport,
    package_diff,
    short,
)

if TYPE_CHECKING:
    from passerelle.sdk.client import Client


# -- blobs -------------------------------------------------------------------------------------
def fetch_blob(client: Client, sha256: str, dest: Path) -> Path:
    """Download a blob by digest, verified by the server as it streams and by us against it.

    A transfer cut short is how the server reports a large object that failed verification
    midway, so it becomes an ``IntegrityFailure`` like a small one.
    """
    import httpx

    try:
        client.download(f"/api/v1/blobs/{sha256}", {}, dest)
    except httpx.RemoteProtocolError as exc:
        raise IntegrityFailure(f"blob {sha256} could not be read intact: {exc}") from exc
    return dest


def read_blob(client: Client, sha256: str, scratch: Path) -> bytes:
    return fetch_blob(client, sha256, scratch / f"blob-{sha256}").read_bytes()


def _blob_problem(exc: PasserelleError, what: str, sha256: str) -> str:
    if isinstance(exc, NotFound):
        return f"{what} {short(sha256)} is missing from the store"
    if isinstance(exc, IntegrityFailure):
        return f"{what} {short(sha256)} is corrupted in the store (its bytes no longer hash to it)"
    return f"{what} {short(sha256)} could not be read: {exc.message}"


# -- code --------------------------------------------------------------------------------------
@dataclass
class CodeSource:
    repo: Path
    commit: str
    root: str
    diff: bytes | None


def candidate_repos(code: dict[str, Any], repo: Path | None, cwd: Path) -> list[Path]:
    """Where to look for the commit: ``--repo``, else this checkout, then the recorded root."""
    if repo is not None:
        found = rr.checkout_root(repo)
        return [found] if found else []
    out: list[Path] = []
    for path in (cwd, Path(code["root"]) if code.get("root") else None):
        found = rr.checkout_root(path) if path is not None else None
        if found is not None and found not in out:
            out.append(found)
    return out


def check_code(
    report: ReproduceReport, client: Client, code: dict[str, Any], repos: list[Path], scratch: Path
) -> CodeSource | None:
    """Is the commit reachable, and is the diff of a dirty run stored intact?"""
    if not code:
        report.add("code", "commit", DIFFERS, "no code lineage was recorded for this run")
        return None
    if not code.get("git") or not code.get("commit"):
        report.add("code", "commit", DIFFERS, "the run was not in a git checkout: no commit")
        return None
    commit = code["commit"]
    where = next((r for r in repos if rr.commit_reachable(r, commit)), None)
    if where is None:
        hint = f" (it was on {code['remote']}: git fetch?)" if code.get("remote") else ""
        if repos:
            where_not = "is not in " + ", ".join(str(r) for r in repos)
        else:
            where_not = "cannot be looked for: no git checkout here (use --repo)"
        report.add("code", "commit", DIFFERS, f"commit {short(commit, 12)} {where_not}{hint}")
        return None
    report.add("code", "commit", OK, f"commit {short(commit, 12)} is reachable in {where}")
    diff = None
    if code.get("dirty"):
        blob = code.get("diff_blob")
        if not blob:
            report.add(
                "code",
                "diff",
                DIFFERS,
                "the run had uncommitted changes that were not stored (diff over 20 MiB)",
            )
            return None
        try:
            diff = read_blob(client, blob, scratch)
        except PasserelleError as exc:
            report.add("code", "diff", DIFFERS, _blob_problem(exc, "the recorded diff", blob))
            return None
        if code.get("diff_sha256") and hashlib.sha256(diff).hexdigest() != code["diff_sha256"]:
            report.add("code", "diff", DIFFERS, "the stored diff does not hash to diff_sha256")
            return None
        report.add(
            "code",
            "diff",
            OK,
            f"uncommitted changes stored ({len(diff)} bytes, sha256 {short(code['diff_sha256'])})",
        )
    if code.get("untracked_files"):
        report.add(
            "code",
            "untracked",
            WARNING,
            f"{code['untracked_files']} untracked file(s) at run time were not recorded",
        )
    return CodeSource(where, commit, str(code.get("root") or where), diff)


# -- data --------------------------------------------------------------------------------------
def _file_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"
    candidate, n = f"{base}.parquet", 2
    while candidate in taken:
        candidate, n = f"{base}-{n}.parquet", n + 1
    taken.add(candidate)
    return candidate


def check_data(
    report: ReproduceReport, client: Client, datasets: list[dict[str, Any]], data_dir: Path
) -> bool:
    """Download every snapshot into ``data_dir`` and check it still has its fingerprint.

    Returns whether every input dataset is available as recorded (the rerun needs them).
    """
    from passerelle.sdk.fingerprint import fingerprint

    if not datasets:
        report.add("data", "datasets", WARNING, "the run logged no dataset")
        return True
    data_dir.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    index: list[dict[str, Any]] = []
    usable = True
    for ds in datasets:
        name, recorded, snap = ds["name"], ds["digest"], ds.get("snapshot_sha256")
        is_input = ds.get("direction", "input") == "input"
        if not snap:
            report.add("data", name, WARNING, f"{name}: no snapshot stored, only its fingerprint")
            continue
        path = data_dir / _file_name(name, taken) if is_input else data_dir / f".out-{snap}"
        try:
            fetch_blob(client, snap, path)
            now = fingerprint(path)[0].digest
        except PasserelleError as exc:
            report.add("data", name, DIFFERS, f"{name}: " + _blob_problem(exc, "snapshot", snap))
            usable = usable and not is_input
            continue
        except Exception as exc:  # a snapshot that is no longer Parquet
            report.add("data", name, DIFFERS, f"{name}: snapshot unreadable: {exc}")
            usable = usable and not is_input
            continue
        if not is_input:
            path.unlink(missing_ok=True)
        if now != recorded:
            report.add(
                "data",
                name,
                DIFFERS,
                f"{name} fingerprint {short(recorded)} recorded, snapshot now hashes to "
                f"{short(now)}",
            )
            usable = usable and not is_input
        else:
            report.add(
                "data",
                name,
                OK,
                f"{name}: snapshot matches its fingerprint {short(recorded)} "
                f"({ds.get('num_rows')} rows)",
            )
            if is_input:
                index.append(
                    {
                        "name": name,
                        "file": path.name,
                        "digest": recorded,
                        "context": ds.get("context"),
                    }
                )
    # The rerun finds each dataset as <name>.parquet; the index maps names that had to be
    # made safe for a file system back to the recorded ones.
    (data_dir / "datasets.json").write_text(json.dumps(index, indent=2))
    return usable


# -- environment -------------------------------------------------------------------------------
def package_list_text() -> bytes:
    """This interpreter's package list, encoded exactly as run lineage records it."""
    from passerelle.sdk.lineage import installed_packages

    return "\n".join(installed_packages()).encode() + b"\n"


def lock_relpath(env: dict[str, Any], root: str | None) -> str | None:
    """Where the recorded ``uv.lock`` sat, relative to the repository root."""
    path = env.get("uv_lock_path")
    if not path or not root:
        return None
    # Lexical and normalised: lineage is data a client sent, and the rerun writes the lock at
    # this path inside the worktree, so nothing may climb out of it.
    rel = os.path.relpath(os.path.normpath(path), os.path.normpath(root))
    if rel == "." or rel.startswith("..") or os.path.isabs(rel):
        return None
    return Path(rel).as_posix()


@dataclass
class EnvSource:
    lock: bytes | None
    lock_rel: str | None
    packages: bytes | None


def check_environment(
    report: ReproduceReport,
    client: Client,
    env: dict[str, Any],
    checkout: Path | None,
    root: str | None,
    scratch: Path,
    *,
    compare_current: bool,
) -> EnvSource:
    """The recorded lock and package list, fetched and verified; with ``compare_current``, the
    current interpreter and the checkout's ``uv.lock`` compared with them."""
    import platform

    lock = packages = None
    lock_rel = lock_relpath(env, root)
    for key, what in (("uv_lock_blob", "uv.lock"), ("packages_blob", "package list")):
        blob = env.get(key)
        if not blob:
            continue
        try:
            data = read_blob(client, blob, scratch)
        except PasserelleError as exc:
            report.add(
                "environment", what, DIFFERS, _blob_problem(exc, f"the recorded {what}", blob)
            )
            continue
        if key == "uv_lock_blob":
            lock = data
        else:
            packages = data
    rebuildable = lock is not None or packages is not None
    if not compare_current:
        return EnvSource(lock, lock_rel, packages)

    recorded_py, here_py = env.get("python_version"), platform.python_version()
    if recorded_py == here_py:
        report.add("environment", "python", OK, f"Python {here_py}")
    elif recorded_py:
        report.add(
            "environment", "python", WARNING, f"Python {recorded_py} recorded, {here_py} here"
        )
    current = package_list_text()
    digest = hashlib.sha256(current).hexdigest()
    recorded = env.get("packages_sha256")
    if recorded == digest:
        report.add("environment", "packages", OK, f"installed packages match ({short(digest)})")
    elif recorded:
        what = package_diff(packages, current) if packages is not None else ""
        detail = f"packages {short(recorded)} recorded, {short(digest)} here" + (
            f": {what}" if what else ""
        )
        if rebuildable:
            report.add("environment", "packages", WARNING, detail + "; --rerun rebuilds them")
        else:
            report.add("environment", "packages", DIFFERS, detail + "; nothing stored to rebuild")
    recorded_lock = env.get("uv_lock_sha256")
    if not recorded_lock:
        report.add("environment", "uv.lock", WARNING, "no uv.lock was recorded")
    else:
        here = checkout / lock_rel if checkout is not None and lock_rel else None
        here_sha = (
            hashlib.sha256(here.read_bytes()).hexdigest() if here and here.is_file() else None
        )
        if here_sha == recorded_lock:
            report.add("environment", "uv.lock", OK, f"uv.lock matches ({short(recorded_lock)})")
        else:
            now = f"the checkout's is {short(here_sha)}" if here_sha else "none in the checkout"
            status = WARNING if lock is not None else DIFFERS
            stored = "stored" if lock is not None else "not stored"
            report.add(
                "environment",
                "uv.lock",
                status,
                f"uv.lock {short(recorded_lock)} recorded, {now}; the recorded one is {stored}",
            )
    return EnvSource(lock, lock_rel, packages)


def compare_rerun(
    report: ReproduceReport,
    client: Client,
    lineage: dict[str, Any],
    new_run: dict[str, Any],
    scratch: Path,
) -> None:
    """What the rerun itself recorded: its commit and diff, its data, its environment."""
    new = new_run.get("lineage") or {}
    code, new_code = lineage.get("code") or {}, new.get("code") or {}
    if new_code.get("commit") == code.get("commit") and new_code.get("diff_sha256") == code.get(
        "diff_sha256"
    ):
        report.add("code", "rerun", OK, "the rerun recorded the same commit and diff")
    else:
        report.add(
            "code",
            "rerun",
            DIFFERS,
            f"the rerun recorded commit {short(new_code.get('commit'), 12)} with diff "
            f"{short(new_code.get('diff_sha256'))}, not {short(code.get('commit'), 12)} with "
            f"{short(code.get('diff_sha256'))}",
        )
    new_data = {(d["name"], d.get("direction")): d for d in new.get("data") or []}
    for ds in lineage.get("data") or []:
        got = new_data.get((ds["name"], ds.get("direction")))
        if got is None:
            report.add("data", ds["name"], WARNING, f"{ds['name']}: not logged by the rerun")
        elif got["digest"] == ds["digest"]:
            report.add("data", ds["name"], OK, f"{ds['name']}: the rerun read the same data")
        else:
            status = DIFFERS if ds.get("direction", "input") == "input" else WARNING
            report.add(
                "data",
                ds["name"],
                status,
                f"{ds['name']} fingerprint {short(ds['digest'])} recorded, the rerun's is "
                f"{short(got['digest'])}",
            )
    env, new_env = lineage.get("environment") or {}, new.get("environment") or {}
    if env.get("python_version") and new_env.get("python_version") != env["python_version"]:
        report.add(
            "environment",
            "python",
            WARNING,
            f"Python {env['python_version']} recorded, "
            f"the rerun used {new_env.get('python_version')}",
        )
    if env.get("uv_lock_sha256"):
        same_lock = new_env.get("uv_lock_sha256") == env["uv_lock_sha256"]
        report.add(
            "environment",
            "uv.lock",
            OK if same_lock else WARNING,
            "the rerun saw the recorded uv.lock"
            if same_lock
            else f"the rerun saw uv.lock {short(new_env.get('uv_lock_sha256'))}, "
            f"not {short(env['uv_lock_sha256'])}",
        )
    if env.get("packages_sha256") == new_env.get("packages_sha256"):
        report.add("environment", "packages", OK, "the rerun's packages match the recorded ones")
    elif env.get("packages_sha256"):
        what = ""
        if env.get("packages_blob") and new_env.get("packages_blob"):
            try:
                what = package_diff(
                    read_blob(client, env["packages_blob"], scratch),
                    read_blob(client, new_env["packages_blob"], scratch),
                )
            except PasserelleError:
                what = ""
        report.add(
            "environment",
            "packages",
            WARNING,
            f"the rerun's packages differ from the recorded ones{': ' + what if what else ''}",
        )
