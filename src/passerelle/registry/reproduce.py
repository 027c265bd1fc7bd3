"""Can a model version (or a run) be reproduced, and when it cannot, what changed?

A version carries the lineage of the run that made it: the commit and the diff of uncommitted
changes, the datasets by fingerprint with their Parquet snapshots, the environment by package
digest with the ``uv.lock`` and the package list. ``reproduce`` compares that record with what can
be had now and, with ``rerun=True``, reruns the recorded command at the recorded commit, in an
environment rebuilt from the recorded lock, on the recorded data, and compares the new metrics.

The result is a ``ReproduceReport``: a list of checks in four sections (code, data,
environment, metrics), each ``ok``, ``warning`` (worth knowing, does not fail), ``differs``
(fails) or ``skipped``. The CLI only renders it.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from passerelle.core.errors import NotFound
from passerelle.core.ids import now_ms
from passerelle.registry import reproduce_rerun as rr
from passerelle.registry.reproduce_checks import (
    CodeSource,
    EnvSource,
    candidate_repos,
    check_code,
    check_data,
    check_environment,
    compare_rerun,
)
from passerelle.registry.reproduce_report import (
    DIFFERS,
    OK,
    SKIPPED,
    WARNING,
    Check,
    ReproduceReport,
    Target,
    UsageError,
    compare_metrics,
)

if TYPE_CHECKING:
    from passerelle.sdk.client import Client

__all__ = ["Check", "ReproduceReport", "Target", "UsageError", "reproduce", "resolve_target"]

REPRODUCES_TAG = "passerelle.reproduces"
RESULT_TAG = "passerelle.reproduce.result"
DATA_DIR_ENV = "PASSERELLE_REPRODUCE_DATA_DIR"
ORIGINAL_RUN_ENV = "PASSERELLE_REPRODUCE_OF"
_HEX = re.compile(r"^[0-9a-fA-F]{4,32}$")
_RUN_URI = re.compile(r"^runs:/(?P<run_id>[0-9a-fA-F]{32})(?:/.*)?$")


# -- what to reproduce -------------------------------------------------------------------------
def resolve_target(client: Client, target: str) -> Target:
    """``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``runs:/RUN_ID/...`` or a run id (prefix).

    For a version the lineage and metrics are the ones frozen at registration; metrics the source
    run logged afterwards are added, so nothing the run reported escapes the comparison.
    """
    from passerelle.sdk.registry import get_model_version

    target = target.strip()
    if target.startswith("models:/"):
        version = get_model_version(target, client=client)
        metrics = dict(version.metrics)
        if version.source_run_id:
            try:
                run = client.get_run(version.source_run_id)
                metrics = {**run["metrics"], **metrics}
            except NotFound:
                pass
        return Target(
            label=f"models:/{version.model}/{version.version}",
            run_id=version.source_run_id,
            lineage=version.lineage or {},
            metrics=metrics,
            model=version.model,
            version=version.version,
        )
    match = _RUN_URI.match(target)
    run_id = match["run_id"] if match else target
    if not _HEX.match(run_id):
        raise UsageError(
            f"cannot reproduce {target!r}: give models:/NAME/VERSION, models:/NAME@ALIAS, "
            "runs:/RUN_ID or a run id",
            field="target",
        )
    run = _fetch_run(client, run_id.lower())
    return Target(
        label=f"run {run['id']}",
        run_id=run["id"],
        lineage=run.get("lineage") or {},
        metrics=run["metrics"],
    )


def _fetch_run(client: Client, run_id: str) -> dict[str, Any]:
    if len(run_id) == 32:
        return client.get_run(run_id)
    page = client.request(
        "POST",
        "/api/v1/runs/search",
        json={"filter": f"attributes.run_id LIKE '{run_id}%'", "max_results": 2},
    )
    if not page["runs"]:
        raise NotFound(f"run '{run_id}' not found", field="run_id")
    if len(page["runs"]) > 1:
        raise UsageError(f"run id prefix '{run_id}' matches several runs", field="run_id")
    return client.get_run(page["runs"][0]["id"])


# -- the whole thing ---------------------------------------------------------------------------
def store_environment(client: Client, api_key: str | None = None) -> dict[str, str]:
    """The variables that make the rerun log to the same store as ``client``."""
    if client.embedded:
        return {"PASSERELLE_HOME": str(Path(client.settings.home).resolve())}
    out = {"PASSERELLE_URL": str(client.url)}
    key = api_key or (
        client.settings.api_key.get_secret_value() if client.settings.api_key else None
    )
    if key:
        out["PASSERELLE_API_KEY"] = key
    return out


def reproduce(
    client: Client,
    target: str,
    *,
    rerun: bool = False,
    tolerance: float = 1e-6,
    rebuild_env: bool = True,
    repo: Path | None = None,
    ignore_metrics: tuple[str, ...] = (),
    api_key: str | None = None,
    timeout: float | None = None,
    progress: rr.Progress | None = None,
) -> ReproduceReport:
    """Compare ``target``'s lineage with what can be had now; with ``rerun``, rerun and compare.

    Without ``rerun`` the verdict says whether everything needed is still available and
    unchanged. With it, the recorded command runs in a temporary worktree and the new run's
    metrics must match within ``tolerance`` (absolute). The rerun is skipped when its inputs
    are not available (unreachable commit, data that changed), since its result would prove
    nothing.
    """
    if tolerance < 0 or math.isnan(tolerance):
        raise UsageError("the tolerance must be a number >= 0", field="tolerance")
    say = progress or (lambda _msg: None)
    t = resolve_target(client, target)
    report = ReproduceReport(target=t, rerun=rerun, tolerance=tolerance)
    lineage = t.lineage
    code = lineage.get("code") or {}
    env = lineage.get("environment") or {}
    with tempfile.TemporaryDirectory(prefix="passerelle-reproduce-") as tmp:
        scratch = Path(tmp)
        say("checking the code")
        repos = candidate_repos(code, repo, Path.cwd())
        source = check_code(report, client, code, repos, scratch)
        say("checking the data snapshots")
        data_ok = check_data(report, client, lineage.get("data") or [], scratch / "data")
        checkout = repos[0] if repos else None
        env_source = check_environment(
            report,
            client,
            env,
            source.repo if source else checkout,
            code.get("root"),
            scratch,
            compare_current=not rerun,
        )
        if not rerun:
            report.add("metrics", "rerun", SKIPPED, "not rerun: add --rerun to compare metrics")
            return report
        if source is None or not data_ok:
            why = "the code" if source is None else "the recorded data"
            report.add("metrics", "rerun", DIFFERS, f"not rerun: {why} cannot be had as recorded")
            return report
        _rerun(
            report,
            client,
            source,
            env_source,
            scratch,
            rebuild_env,
            ignore_metrics,
            api_key,
            timeout,
            say,
        )
    return report


def _rerun(
    report: ReproduceReport,
    client: Client,
    source: CodeSource,
    env_source: EnvSource,
    scratch: Path,
    rebuild_env: bool,
    ignore: tuple[str, ...],
    api_key: str | None,
    timeout: float | None,
    say: rr.Progress,
) -> None:
    lineage = report.target.lineage
    env = lineage.get("environment") or {}
    tree_path = scratch / "worktree"
    try:
        say(f"checking out {source.commit[:12]} in a temporary worktree")
        with rr.worktree(source.repo, source.commit, tree_path) as tree:
            if source.diff:
                rr.apply_diff(tree, source.diff, scratch)
                report.add("code", "worktree", OK, "worktree at the commit, recorded diff applied")
            else:
                report.add("code", "worktree", OK, "worktree at the commit")
            args, cwd, notes = rr.map_command(
                env.get("command") or [], env.get("cwd"), source.root, tree
            )
            for note in notes:
                report.add("code", "cwd", WARNING, note)
            if rebuild_env:
                environment = rr.rebuild_environment(
                    tree,
                    scratch,
                    lock=env_source.lock,
                    lock_rel=env_source.lock_rel,
                    packages=env_source.packages,
                    python_version=env.get("python_version"),
                    progress=say,
                )
            else:
                environment = rr.current_environment()
            report.add("environment", "rebuild", OK, environment.how)
            extra = {
                **store_environment(client, api_key),
                DATA_DIR_ENV: str(scratch / "data"),
                ORIGINAL_RUN_ENV: report.target.run_id or "",
            }
            log = scratch / "rerun.log"
            started = now_ms()
            say(f"rerunning: {' '.join(args)}")
            code = rr.run_command(
                environment.python,
                args,
                cwd,
                rr.rerun_environment(os.environ, environment, extra),
                log,
                timeout,
            )
            report.rerun_output = rr.read_tail(log)
            if code != 0:
                report.add("metrics", "rerun", DIFFERS, f"the rerun failed with exit code {code}")
                return
            new_run = find_rerun(client, started, tree)
    except rr.RerunError as exc:
        report.add(exc.section, "rerun", DIFFERS, str(exc))
        return
    if new_run is None:
        report.add("metrics", "rerun", DIFFERS, "the rerun finished but logged no run")
        return
    report.new_run_id = new_run["id"]
    compare_rerun(report, client, lineage, new_run, scratch)
    report.checks += compare_metrics(
        report.target.metrics, new_run["metrics"], report.tolerance, ignore
    )
    client.set_tags(
        new_run["id"],
        {
            REPRODUCES_TAG: report.target.run_id or "",
            RESULT_TAG: "reproduced" if report.reproduces else "differs",
        },
    )


def find_rerun(client: Client, since_ms: int, tree: Path) -> dict[str, Any] | None:
    """The top-level run the rerun logged: started after ``since_ms`` from inside ``tree``.

    The worktree is a fresh temporary folder, so a run whose recorded working directory or code
    folder lies inside it can only come from this rerun, whoever else logs at the same time.
    """
    margin = 10 * 60 * 1000  # tolerate a server clock a little behind this machine's
    body = {
        "filter": f"attributes.start_time >= {since_ms - margin}",
        "order_by": ["attributes.start_time ASC"],
        "max_results": 1000,
        "include_lineage": True,
    }
    root = os.path.realpath(tree)

    def inside(path: str | None) -> bool:
        real = os.path.realpath(path) if path else ""
        return real == root or real.startswith(root + os.sep)

    found = []
    for page in client.search_runs_pages(**body):
        for run in page:
            lin = run.get("lineage") or {}
            places = [
                (lin.get("environment") or {}).get("cwd"),
                (lin.get("code") or {}).get("directory"),
            ]
            if any(inside(p) for p in places):
                found.append(run)
    top = [r for r in found if not r.get("parent_run_id")] or found
    return top[0] if top else None
