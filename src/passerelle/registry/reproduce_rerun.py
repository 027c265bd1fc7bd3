"""The mechanics of ``passerelle reproduce --rerun``: git worktrees, uv environments, the rerun.

Everything here shells out to the real tools (git, uv) and raises ``RerunError`` with the tool's
own words when one fails, so the report can say what went wrong instead of a traceback. The
comparisons live in ``reproduce.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

Progress = Callable[[str], None]
TAIL_LINES = 30


class RerunError(Exception):
    """A step of the rerun failed; the message says which and why, ``section`` where it goes."""

    def __init__(self, message: str, section: str = "code") -> None:
        super().__init__(message)
        self.section = section


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_tool(
    args: list[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run a tool, capturing its output; a missing executable is a ``RerunError``."""
    try:
        return subprocess.run(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise RerunError(f"'{args[0]}' is not installed (or not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise RerunError(f"'{' '.join(args[:3])}' took longer than {timeout:.0f}s") from None


# -- git ---------------------------------------------------------------------------------------
def checkout_root(path: Path) -> Path | None:
    """The top folder of the git checkout holding ``path``, or None."""
    if not path.is_dir():
        return None
    try:
        out = run_tool(["git", "rev-parse", "--show-toplevel"], path, timeout=30)
    except RerunError:
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def commit_reachable(repo: Path, commit: str) -> bool:
    """Whether ``commit`` exists as a commit object in ``repo`` (``git cat-file -e``)."""
    try:
        out = run_tool(["git", "cat-file", "-e", f"{commit}^{{commit}}"], repo, timeout=30)
    except RerunError:
        return False
    return out.returncode == 0


@contextlib.contextmanager
def worktree(repo: Path, commit: str, dest: Path) -> Iterator[Path]:
    """A detached worktree of ``repo`` at ``commit``, removed (and pruned) on exit."""
    out = run_tool(["git", "worktree", "add", "--detach", str(dest), commit], repo, timeout=300)
    if out.returncode != 0:
        raise RerunError(f"git worktree add failed: {_tail(out.stderr or out.stdout)}")
    try:
        yield dest
    finally:
        run_tool(["git", "worktree", "remove", "--force", str(dest)], repo, timeout=300)
        shutil.rmtree(dest, ignore_errors=True)
        run_tool(["git", "worktree", "prune"], repo, timeout=60)


def apply_diff(tree: Path, diff: bytes, scratch: Path) -> None:
    """Apply the recorded ``git diff HEAD --binary`` on top of the checked-out commit."""
    patch = scratch / "recorded.diff"
    patch.write_bytes(diff)
    out = run_tool(["git", "apply", "--binary", "--whitespace=nowarn", str(patch)], tree)
    if out.returncode != 0:
        raise RerunError(f"the recorded diff does not apply: {_tail(out.stderr or out.stdout)}")


# -- environments ------------------------------------------------------------------------------
def _uv_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env["UV_PROJECT_ENVIRONMENT"] = str(venv)
    return env


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def python_request(version: str | None) -> str | None:
    """``3.11.7`` -> ``3.11``: the minor version is what decides wheels and behaviour."""
    if not version:
        return None
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else version


def create_venv(venv: Path, python: str | None, cwd: Path) -> None:
    args = ["uv", "venv", str(venv), "--quiet"]
    if python:
        args += ["--python", python]
    out = run_tool(args, cwd, env=_uv_env(venv))
    if out.returncode != 0:
        raise RerunError(f"uv venv failed: {_tail(out.stderr or out.stdout)}", "environment")


def sync_from_lock(project: Path, venv: Path) -> None:
    """``uv sync --frozen``: exactly the recorded lock, never re-resolved."""
    out = run_tool(["uv", "sync", "--frozen", "--quiet"], project, env=_uv_env(venv))
    if out.returncode != 0:
        raise RerunError(
            f"uv sync --frozen failed: {_tail(out.stderr or out.stdout)}", "environment"
        )


def install_package_list(packages: Path, venv: Path, cwd: Path) -> None:
    """The fallback without a project: ``uv pip install`` of the recorded ``name==version`` list."""
    args = ["uv", "pip", "install", "--quiet", "--python", str(venv_python(venv))]
    out = run_tool([*args, "-r", str(packages)], cwd, env=_uv_env(venv))
    if out.returncode != 0:
        raise RerunError(f"uv pip install failed: {_tail(out.stderr or out.stdout)}", "environment")


def _installable(packages: bytes) -> bytes:
    """The recorded list, with passerelle taken from where this one comes from when that is a
    source checkout: a name looked up on the package index must not replace a local install."""
    from passerelle.registry.build import passerelle_source

    source = passerelle_source()
    lines = packages.decode(errors="replace").splitlines()
    if source is not None:
        # Editable, like a development install: uv caches wheels built from a folder by its
        # pyproject.toml alone, so a plain install could bring back stale code.
        lines = [ln for ln in lines if not ln.startswith("passerelle==")] + [f"-e {source}"]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Environment:
    """The interpreter the rerun uses, and how it came to be (for the report)."""

    python: Path
    how: str
    venv: Path | None = None


def rebuild_environment(
    tree: Path,
    scratch: Path,
    *,
    lock: bytes | None,
    lock_rel: str | None,
    packages: bytes | None,
    python_version: str | None,
    progress: Progress,
) -> Environment:
    """A fresh virtual environment from the recorded lock, else from the recorded package list.

    The lock is written into the worktree where it was recorded (relative to the repository
    root), so ``uv sync --frozen`` installs what the run had even when the lock was never
    committed. Without a ``pyproject.toml`` beside it there is no project to sync, and the
    package list (every ``name==version`` the run saw) is installed instead.
    """
    venv = scratch / "venv"
    python = python_request(python_version)
    if lock is not None and lock_rel:
        project = tree / lock_rel
        project.parent.mkdir(parents=True, exist_ok=True)
        project.write_bytes(lock)
        if (project.parent / "pyproject.toml").is_file():
            progress(f"creating a Python {python or '(any)'} environment with uv venv")
            create_venv(venv, python, project.parent)
            progress("installing the recorded uv.lock with uv sync --frozen")
            sync_from_lock(project.parent, venv)
            return Environment(
                venv_python(venv), "rebuilt from the recorded uv.lock with uv sync --frozen", venv
            )
    if packages is not None:
        listing = scratch / "packages.txt"
        listing.write_bytes(_installable(packages))
        progress(f"creating a Python {python or '(any)'} environment with uv venv")
        create_venv(venv, python, tree)
        progress("installing the recorded package list with uv pip install")
        install_package_list(listing, venv, tree)
        return Environment(
            venv_python(venv), "rebuilt from the recorded package list with uv pip install", venv
        )
    raise RerunError(
        "nothing was recorded to rebuild the environment from (no uv.lock, no package list): "
        "use --no-env to rerun with this interpreter",
        "environment",
    )


def current_environment() -> Environment:
    return Environment(Path(sys.executable), "this interpreter (--no-env)")


# -- the command -------------------------------------------------------------------------------
def _inside(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` (posix), or None when it lies outside."""
    try:
        return Path(os.path.normpath(path)).relative_to(Path(os.path.normpath(root))).as_posix()
    except ValueError:
        return None


def map_command(
    command: list[str], cwd: str | None, root: str, tree: Path
) -> tuple[list[str], Path, list[str]]:
    """The recorded ``[python, script, *args]`` moved into the worktree.

    Returns the arguments after the interpreter, the working directory and notes for the report.
    Absolute paths inside the repository are mapped into the worktree; relative ones keep
    working because the working directory is mapped the same way.
    """
    notes: list[str] = []
    if len(command) < 2:
        raise RerunError(f"no command to rerun was recorded (command: {command!r})")
    old_cwd = Path(cwd) if cwd else Path(root)
    rel_cwd = _inside(old_cwd, Path(root))
    if rel_cwd is None:
        notes.append(f"the run started outside the repository ({old_cwd}); rerun from its root")
        rel_cwd = "."
    new_cwd = tree / rel_cwd
    script = command[1]
    if script in ("-c", "-m", "-") or not script.endswith(".py"):
        raise RerunError(
            f"the run was not started from a script ({' '.join(command[1:3])!r}): "
            "nothing to rerun (notebooks and `python -c` cannot be replayed)"
        )
    script_path = Path(script) if Path(script).is_absolute() else old_cwd / script
    if _inside(script_path, Path(root)) is None:
        raise RerunError(
            f"the script {script_path} is outside the repository {root}: it is not part of the "
            "recorded commit"
        )
    args = []
    for arg in command[1:]:
        rel = _inside(Path(arg), Path(root)) if Path(arg).is_absolute() else None
        args.append(str(tree / rel) if rel is not None else arg)
    return args, new_cwd, notes


def run_command(
    python: Path,
    args: list[str],
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    timeout: float | None,
) -> int:
    """Run the script with ``python``; its output goes to ``log``. Returns the exit code."""
    if not cwd.is_dir():
        raise RerunError(
            f"the recorded working directory {cwd} does not exist at that commit", "code"
        )
    with open(log, "wb") as fh:
        try:
            proc = subprocess.run(
                [str(python), *args],
                cwd=cwd,
                env=dict(env),
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RerunError(
                f"the rerun took longer than {timeout:.0f}s and was stopped", "metrics"
            ) from None
        except OSError as exc:
            raise RerunError(f"cannot start {python}: {exc}", "environment") from None
    return proc.returncode


def rerun_environment(
    base: Mapping[str, str], env: Environment, extra: Mapping[str, str]
) -> dict[str, str]:
    """The rerun's variables: the caller's, the new environment activated, ``extra`` on top."""
    out = {k: v for k, v in base.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    if env.venv is not None:
        out["VIRTUAL_ENV"] = str(env.venv)
        out["PATH"] = str(env.python.parent) + os.pathsep + out.get("PATH", "")
    for key in ("PASSERELLE_URL", "PASSERELLE_HOME", "PASSERELLE_API_KEY"):
        out.pop(key, None)  # the store the rerun logs to comes from ``extra`` only
    out.update(extra)
    return out


def read_tail(log: Path) -> str:
    try:
        return _tail(log.read_text(errors="replace"))
    except OSError:
        return ""
