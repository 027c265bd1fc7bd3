"""Reading runs back: ``get_run`` and ``search_runs``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from passerelle.sdk.client import Client, default_client

if TYPE_CHECKING:
    import pandas as pd


def as_float(value: float | str) -> float:
    """The API sends NaN and infinities as strings (JSON has no such numbers)."""
    return float(value.replace("Infinity", "inf")) if isinstance(value, str) else value


@dataclass
class Run:
    """A logged run: params, latest metrics, tags, status and lineage."""

    id: str
    name: str
    experiment: str
    experiment_id: int
    project: str
    status: str
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    lineage: dict[str, Any] = field(default_factory=dict)
    _client: Client | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: dict[str, Any], client: Client | None = None) -> Run:
        return cls(
            id=body["id"],
            name=body["name"],
            experiment=body["experiment"],
            experiment_id=body["experiment_id"],
            project=body["project"],
            status=body["status"],
            start_time=body["start_time"],
            end_time=body["end_time"],
            parent_run_id=body["parent_run_id"],
            params=body["params"],
            metrics={k: as_float(v) for k, v in body["metrics"].items()},
            tags=body["tags"],
            lineage=body.get("lineage") or {},
            _client=client,
        )

    def metric_history(self, key: str) -> list[tuple[int, float, int]]:
        """Every value of ``key``: ``[(step, value, timestamp), ...]`` in step order."""
        client = self._client or default_client()
        points = client.metric_history(self.id, key)
        return [(p["step"], as_float(p["value"]), p["timestamp"]) for p in points]

    def artifacts(self, prefix: str | None = None) -> list[dict[str, Any]]:
        return (self._client or default_client()).list_artifacts(self.id, prefix)

    def download_artifact(self, path: str, dest: str | Path) -> Path:
        return (self._client or default_client()).download_artifact(self.id, path, dest)

    def children(self) -> list[Run]:
        client = self._client or default_client()
        return [Run.from_api(r, client) for r in client.child_runs(self.id)]


def get_run(run_id: str, *, client: Client | None = None) -> Run:
    client = client or default_client()
    return Run.from_api(client.get_run(run_id), client)


def search_runs(
    experiment: str | list[str] | None = None,
    filter: str | None = None,
    order_by: list[str] | None = None,
    *,
    max_results: int | None = None,
    project: str | None = None,
    client: Client | None = None,
) -> pd.DataFrame:
    """Runs as a DataFrame, one row per run, with ``metrics.*``, ``params.*``, ``tags.*`` columns.

    ``filter`` uses the filter language (``metrics.f1 > 0.8 and params.penalty = 'l2'``),
    ``order_by`` items like ``"metrics.f1 DESC"``.
    """
    import pandas as pd

    client = client or default_client()
    names = [experiment] if isinstance(experiment, str) else list(experiment or [])
    page_size = min(max_results or 10_000, 10_000)
    runs: list[dict[str, Any]] = []
    body = {
        "experiments": names,
        "filter": filter,
        "order_by": order_by or [],
        "max_results": page_size,
        "project": project,
    }
    for page in client.search_runs_pages(**body):
        runs.extend(page)
        if max_results is not None and len(runs) >= max_results:
            runs = runs[:max_results]
            break
    columns: dict[str, list[Any]] = {
        "run_id": [r["id"] for r in runs],
        "experiment_id": [r["experiment_id"] for r in runs],
        "experiment": [r["experiment"] for r in runs],
        "run_name": [r["name"] for r in runs],
        "status": [r["status"] for r in runs],
        "start_time": pd.to_datetime([r["start_time"] for r in runs], unit="ms", utc=True),
        "end_time": pd.to_datetime([r["end_time"] for r in runs], unit="ms", utc=True),
        "parent_run_id": [r["parent_run_id"] for r in runs],
    }
    for kind in ("metrics", "params", "tags"):
        keys = sorted({k for r in runs for k in r[kind]})
        for key in keys:
            values = [r[kind].get(key) for r in runs]
            if kind == "metrics":
                values = [None if v is None else as_float(v) for v in values]
            columns[f"{kind}.{key}"] = values
    return pd.DataFrame(columns)
