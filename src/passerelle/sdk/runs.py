"""Runs as the user sees them: ``with psl.start_run(...) as run: run.log_metric(...)``."""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from passerelle.core.ids import now_ms
from passerelle.sdk.batcher import MetricBatcher
from passerelle.sdk.client import Client, default_client

_local = threading.local()


def _stack() -> list[ActiveRun]:
    if not hasattr(_local, "runs"):
        _local.runs = []
    return _local.runs


def active_run() -> ActiveRun | None:
    """The innermost run started with ``start_run`` in this thread, if any."""
    stack = _stack()
    return stack[-1] if stack else None


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"metric '{key}' must be a number, got {type(value).__name__}: {value!r}")
    return float(value)


def _json_number(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class ActiveRun:
    """A run being logged. Use it as a context manager: an exception marks it FAILED."""

    def __init__(self, client: Client, info: dict[str, Any]) -> None:
        self.client = client
        self.info = info
        self.id: str = info["id"]
        self.name: str = info["name"]
        self.experiment_id: int = info["experiment_id"]
        self._steps: dict[str, int] = {}
        self._batcher = MetricBatcher(
            client,
            self.id,
            interval=client.settings.log_flush_interval,
            batch_size=client.settings.log_batch_size,
        )
        self._ended = False

    def __repr__(self) -> str:
        return f"<ActiveRun {self.name} id={self.id}>"

    # -- params, tags, metrics -----------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Params are immutable: logging another value for a key raises ``Conflict``."""
        self.client.log_params(self.id, dict(params))

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.set_tags(self.id, {k: str(v) for k, v in tags.items()})

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Queue one value; without ``step``, each key counts 0, 1, 2... on its own."""
        self.log_metrics({key: value}, step=step, timestamp=timestamp)

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        ts = timestamp if timestamp is not None else now_ms()
        rows = []
        for key, value in metrics.items():
            number = _number(key, value)
            s = self._steps.get(key, -1) + 1 if step is None else int(step)
            self._steps[key] = max(s, self._steps.get(key, -1))
            rows.append({"key": key, "value": _json_number(number), "step": s, "timestamp": ts})
        self._batcher.add(rows)

    def flush(self) -> None:
        """Send every queued metric value now."""
        self._batcher.flush()

    # -- artifacts and datasets ----------------------------------------------------------------
    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[dict[str, Any]]:
        """Upload a file, or a folder with everything below it, streamed from disk."""
        src = Path(local_path)
        if not src.exists():
            raise FileNotFoundError(f"no file or folder at {src}")
        prefix = (artifact_path.strip("/") + "/") if artifact_path else ""
        files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
        uploaded = []
        for f in files:
            rel = f.relative_to(src).as_posix() if src.is_dir() else src.name
            if src.is_dir():
                rel = f"{src.name}/{rel}" if not artifact_path else rel
            with open(f, "rb") as fh:
                uploaded.append(self.client.upload_artifact(self.id, prefix + rel, fh))
        return uploaded

    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[dict[str, Any]]:
        """Upload the content of a folder (not the folder itself) under ``artifact_path``."""
        src = Path(local_dir)
        if not src.is_dir():
            raise NotADirectoryError(f"{src} is not a folder")
        prefix = (artifact_path.strip("/") + "/") if artifact_path else ""
        out = []
        for f in sorted(p for p in src.rglob("*") if p.is_file()):
            with open(f, "rb") as fh:
                out.append(
                    self.client.upload_artifact(self.id, prefix + f.relative_to(src).as_posix(), fh)
                )
        return out

    def log_text(self, text: str, artifact_file: str) -> dict[str, Any]:
        return self.client.upload_artifact(self.id, artifact_file, text.encode())

    def log_dict(self, data: Any, artifact_file: str) -> dict[str, Any]:
        return self.client.upload_artifact(
            self.id, artifact_file, json.dumps(data, indent=2, default=str).encode()
        )

    def log_figure(self, figure: Any, artifact_file: str) -> dict[str, Any]:
        """Save a matplotlib or plotly figure (png, svg, html...) as an artifact."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_file).name
            if hasattr(figure, "savefig"):
                figure.savefig(path)
            elif path.suffix == ".html" and hasattr(figure, "write_html"):
                figure.write_html(path, include_plotlyjs="cdn")
            elif hasattr(figure, "write_image"):
                figure.write_image(path)
            else:
                raise TypeError(f"cannot save a {type(figure).__name__} as a figure")
            with open(path, "rb") as fh:
                return self.client.upload_artifact(self.id, artifact_file, fh)

    def log_dataset(
        self,
        data: Any,
        name: str,
        context: str = "training",
        direction: str = "input",
        snapshot: bool = True,
    ) -> dict[str, Any]:
        """Record a table this run read (or wrote): fingerprint, rows, schema, Parquet snapshot.

        ``data``: a pandas or Polars DataFrame, a pyarrow Table, or the path of a Parquet file.
        """
        from passerelle.sdk.fingerprint import fingerprint

        fp, table = fingerprint(data)
        snapshot_sha = None
        if snapshot:
            import pyarrow.parquet as pq

            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "snapshot.parquet"
                pq.write_table(table, path, compression="zstd")
                with open(path, "rb") as fh:
                    snapshot_sha = self.client.upload_blob(fh)["sha256"]
        ref = {
            "name": name,
            "digest": fp.digest,
            "num_rows": fp.num_rows,
            "num_columns": fp.num_columns,
            "schema": fp.schema,
            "source": fp.source,
            "snapshot_sha256": snapshot_sha,
            "context": context,
            "direction": direction,
        }
        return self.client.log_dataset(self.id, ref)

    # -- ending --------------------------------------------------------------------------------
    def end(self, status: str = "FINISHED") -> None:
        """Flush everything, then close the run with ``status``. Idempotent."""
        if self._ended:
            return
        self._ended = True
        try:
            self._batcher.close()
        finally:
            stack = _stack()
            if self in stack:
                stack.remove(self)
            self.client.update_run(self.id, status=status, end_time=now_ms())

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end("FINISHED")
            return
        status = "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
        with contextlib.suppress(Exception):  # the user's exception is the one that matters
            self.end(status)


def start_run(
    experiment: str | None = None,
    run_name: str | None = None,
    *,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    project: str | None = None,
    client: Client | None = None,
    capture_lineage: bool = True,
) -> ActiveRun:
    """Start a run and record its code and environment lineage.

    Args:
        experiment: experiment name, created on first use (default ``Default``).
        run_name: a readable name; a short unique one is made when omitted.
        nested: make it a child of the active run (cross-validation folds, sweeps).
        parent_run_id: make it a child of this run explicitly.
    """
    client = client or default_client()
    parent = parent_run_id
    if nested and parent is None:
        current = active_run()
        if current is None:
            raise RuntimeError("nested=True needs an active run to nest under")
        parent = current.id
        experiment = experiment or None
        if experiment is None:
            experiment_id: int | None = current.experiment_id
        else:
            experiment_id = None
    else:
        experiment_id = None
    code: dict[str, Any] = {}
    environment: dict[str, Any] = {}
    if capture_lineage:
        code, environment = _capture(client)
    body: dict[str, Any] = {
        "name": run_name,
        "parent_run_id": parent,
        "tags": {k: str(v) for k, v in (tags or {}).items()},
        "code": code,
        "environment": environment,
        "project": project or client.project,
    }
    if experiment_id is not None:
        body["experiment_id"] = experiment_id
    else:
        body["experiment"] = experiment or "Default"
    info = client.create_run(**body)
    run = ActiveRun(client, info)
    _stack().append(run)
    return run


def _capture(client: Client) -> tuple[dict[str, Any], dict[str, Any]]:
    """Lineage for a new run; diff, lock and package list are stored by content."""
    from passerelle.sdk.lineage import capture_code, capture_environment

    code, diff = capture_code()
    env, files = capture_environment(container_image_env=client.settings.container_image_env)
    if diff:
        code["diff_blob"] = client.upload_blob(diff)["sha256"]
    for name, data in files.items():
        env[f"{name}_blob"] = client.upload_blob(data)["sha256"]
    return code, env


def end_run(status: str = "FINISHED") -> None:
    """End the active run of this thread."""
    run = active_run()
    if run is None:
        raise RuntimeError("there is no active run to end")
    run.end(status)


def _require_active() -> ActiveRun:
    run = active_run()
    if run is None:
        raise RuntimeError("no active run: use `with passerelle.start_run(...) as run:`")
    return run


def log_param(key: str, value: Any) -> None:
    _require_active().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _require_active().log_params(params)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    _require_active().log_metric(key, value, step=step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    _require_active().log_metrics(metrics, step=step)


def set_tag(key: str, value: Any) -> None:
    _require_active().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _require_active().set_tags(tags)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None):
    return _require_active().log_artifact(local_path, artifact_path)


def log_dataset(data: Any, name: str, context: str = "training", direction: str = "input"):
    return _require_active().log_dataset(data, name, context=context, direction=direction)
