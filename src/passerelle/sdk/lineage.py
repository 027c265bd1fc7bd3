"""Code and environment lineage, captured for every run without the user asking.

Nothing here may fail a run: a missing git, a detached head or an unreadable lock file just leave
the corresponding field empty.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

MAX_DIFF_BYTES = 20 * 1024 * 1024


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode(errors="replace").strip() if out.returncode == 0 else None


def _strip_credentials(url: str) -> str:
    """``https://user:token@host/x`` -> ``https://host/x``: secrets never reach the database."""
    return re.sub(r"^(\w+://)[^/@]+@", r"\1", url)


def code_dir() -> Path:
    """Where the user's code lives: the running script's folder, else the working directory."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if script and Path(script).exists():
        return Path(script).resolve().parent
    return Path.cwd()


def capture_code(directory: Path | None = None) -> tuple[dict[str, Any], bytes | None]:
    """Git commit, branch, remote, dirty flag and the diff's sha256; also returns the diff."""
    directory = directory or code_dir()
    root = _git(["rev-parse", "--show-toplevel"], directory)
    if root is None:
        return {"git": False, "directory": str(directory)}, None
    commit = _git(["rev-parse", "HEAD"], directory)
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], directory)
    remote = _git(["remote", "get-url", "origin"], directory)
    status = _git(["status", "--porcelain"], directory) or ""
    tracked_changes = [ln for ln in status.splitlines() if ln and not ln.startswith("??")]
    untracked = [ln for ln in status.splitlines() if ln.startswith("??")]
    diff: bytes | None = None
    diff_sha = None
    if commit and tracked_changes:
        try:
            raw = subprocess.run(
                ["git", "diff", "HEAD", "--binary"],
                cwd=directory,
                capture_output=True,
                timeout=30,
                check=False,
            ).stdout
            diff_sha = hashlib.sha256(raw).hexdigest()
            diff = raw if len(raw) <= MAX_DIFF_BYTES else None
        except (OSError, subprocess.SubprocessError):
            pass
    code = {
        "git": True,
        "root": root,
        "commit": commit,
        "branch": None if branch == "HEAD" else branch,
        "remote": _strip_credentials(remote) if remote else None,
        "dirty": bool(tracked_changes),
        "untracked_files": len(untracked),
        "diff_sha256": diff_sha,
        "directory": str(directory),
    }
    return code, diff


@functools.lru_cache(maxsize=1)
def installed_packages() -> tuple[str, ...]:
    """``name==version`` of every installed distribution, sorted (cached: it does not change)."""
    from importlib.metadata import distributions

    found = set()
    for dist in distributions():
        name = dist.metadata.get("Name")
        if name:
            found.add(f"{re.sub(r'[-_.]+', '-', name).lower()}=={dist.version}")
    return tuple(sorted(found))


def find_lock_file(start: Path, stop: Path | None = None) -> Path | None:
    """The nearest ``uv.lock`` from ``start`` upwards, not above ``stop`` (the git root)."""
    for folder in [start, *start.parents]:
        candidate = folder / "uv.lock"
        if candidate.is_file():
            return candidate
        if stop is not None and folder == stop:
            return None
    return None


def capture_environment(
    directory: Path | None = None, container_image_env: str = "PASSERELLE_CONTAINER_IMAGE"
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Python, platform, package digest, lock hash, image and command line.

    Also returns the files worth keeping by content (the lock and the package list), so the
    environment can be rebuilt later: their sha256 is both the recorded hash and the blob name.
    """
    directory = directory or code_dir()
    packages = "\n".join(installed_packages()).encode() + b"\n"
    files = {"packages": packages}
    root = _git(["rev-parse", "--show-toplevel"], directory)
    lock = find_lock_file(directory, Path(root) if root else None)
    lock_sha = None
    if lock is not None:
        try:
            data = lock.read_bytes()
            lock_sha = hashlib.sha256(data).hexdigest()
            files["uv_lock"] = data
        except OSError:
            pass
    env = {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages_sha256": hashlib.sha256(packages).hexdigest(),
        "packages_count": len(installed_packages()),
        "uv_lock_sha256": lock_sha,
        "uv_lock_path": str(lock) if lock else None,
        "container_image": os.environ.get(container_image_env) or None,
        "command": [sys.executable, *sys.argv],
        "cwd": os.getcwd(),
    }
    return env, files
