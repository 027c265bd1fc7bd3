"""Serving in the SDK: ``deploy``, ``rollback``, ``predict``, ``inference_log`` and ``feedback``.

Thin fronts over the serving REST API. Tables travel as Arrow IPC (types kept, no JSON round
trip); records and columns as JSON. pandas and pyarrow load on first use, not on import.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from passerelle.core.errors import InvalidInput
from passerelle.sdk.client import Client, default_client

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

ARROW_STREAM = "application/vnd.apache.arrow.stream"
LOG_PAGE = 100_000  # the most rows the log route returns per call
FEEDBACK_CHUNK = 100_000  # the most items the feedback route takes per call
LOG_COLUMNS = [
    "prediction_id",
    "endpoint",
    "endpoint_id",
    "version",
    "route",
    "output",
    "latency_ms",
    "status",
    "error",
    "request_key",
    "batch_id",
    "ts",
]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def endpoint_path(name: str, *parts: str) -> str:
    return "/".join(["/api/v1/endpoints", quote(name, safe=""), *parts])


def predict_path(name: str) -> str:
    return "/v1/endpoints/" + quote(name, safe="") + "/predict"


@dataclass
class Endpoint:
    """What an endpoint serves: its primary, canary (with its percent of traffic) and shadows."""

    name: str
    model: str
    primary_version: int | None
    canary_version: int | None
    canary_weight: float
    shadow_versions: list[int]
    paused: bool
    revision: int
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Endpoint:
        names = (
            "name",
            "model",
            "primary_version",
            "canary_version",
            "canary_weight",
            "shadow_versions",
            "paused",
            "revision",
        )
        return cls(**{n: body[n] for n in names}, raw=body)


@dataclass
class Predictions:
    """One answer of an endpoint: a prediction and its id per input row, and who answered."""

    predictions: list[Any]
    prediction_ids: list[str]
    model_version: int

    def __len__(self) -> int:
        return len(self.predictions)

    def to_pandas(self) -> pd.DataFrame:
        """``prediction`` and ``prediction_id`` columns, one row per input row."""
        import pandas as pd

        return pd.DataFrame({"prediction": self.predictions, "prediction_id": self.prediction_ids})


# -- deployments -------------------------------------------------------------------------------
def change_deployment(
    name: str, action: str, *, client: Client | None = None, **body: Any
) -> Endpoint:
    """Apply one change (``deploy``, ``canary``, ``weight``, ``shadow``, ``promote``...)."""
    client = client or default_client()
    payload = {"action": action, **{k: v for k, v in body.items() if v is not None}}
    answer = client.request("POST", endpoint_path(name, "deployments"), json=payload)
    return Endpoint.from_api(answer)


def deploy(
    name: str,
    version: int | None = None,
    *,
    canary: int | None = None,
    weight: float | None = None,
    shadow: int | None = None,
    promote: bool = False,
    model: str | None = None,
    project: str | None = None,
    reason: str = "",
    client: Client | None = None,
) -> Endpoint:
    """Change what endpoint ``name`` serves; the endpoint is created by its first deploy.

    Exactly one of: ``version`` (the primary), ``canary`` (with ``weight`` percent of the
    traffic, 10 by default), ``shadow`` (a copy of the traffic, answers logged, not returned),
    ``promote=True`` (the canary becomes the primary), or ``weight`` alone (the canary's share).

    Args:
        name: The endpoint.
        model: The registered model it serves (default: a model named like the endpoint).
        reason: Kept in the deployment history.
    """
    chosen = [
        flag
        for flag, value in (
            ("version", version is not None),
            ("canary", canary is not None),
            ("shadow", shadow is not None),
            ("promote", promote),
        )
        if value
    ]
    if len(chosen) > 1:
        raise InvalidInput(f"choose one of {', '.join(chosen)}", field=chosen[1])
    if shadow is not None and weight is not None:
        raise InvalidInput("a shadow takes no weight: it sees every request", field="weight")
    if promote and weight is not None:
        raise InvalidInput("promote takes no weight", field="weight")
    fields: dict[str, Any] = {"model": model, "project": project, "reason": reason}
    if version is not None:
        return change_deployment(name, "deploy", version=version, client=client, **fields)
    if canary is not None:
        return change_deployment(
            name, "canary", version=canary, weight=weight, client=client, **fields
        )
    if shadow is not None:
        return change_deployment(name, "shadow", version=shadow, client=client, **fields)
    if promote:
        return change_deployment(name, "promote", client=client, **fields)
    if weight is not None:
        return change_deployment(name, "weight", weight=weight, client=client, **fields)
    raise InvalidInput("say what to deploy: version, canary, shadow, promote or weight")


def rollback(
    name: str, *, reason: str = "", project: str | None = None, client: Client | None = None
) -> Endpoint:
    """Undo the last release at once: drop the canary, or else restore the previous primary."""
    return change_deployment(name, "rollback", reason=reason, project=project, client=client)


def get_endpoint(name: str, *, client: Client | None = None) -> Endpoint:
    client = client or default_client()
    return Endpoint.from_api(client.request("GET", endpoint_path(name)))


# -- predictions -------------------------------------------------------------------------------
def arrow_ipc(table: pa.Table | pa.RecordBatch) -> bytes:
    """An Arrow IPC stream of ``table``: the body the predict route reads for batches."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write(table)
    return sink.getvalue().to_pybytes()


def _as_arrow(data: Any) -> pa.Table | None:
    """A pandas, Polars or Arrow table as Arrow; ``None`` for records and columns."""
    module = type(data).__module__.split(".")[0]
    if module == "pyarrow":
        return data
    if module == "pandas":
        import pyarrow as pa

        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    return None


def predict(
    name: str,
    data: Any,
    *,
    request_key: str | None = None,
    client: Client | None = None,
) -> Predictions:
    """Score ``data`` on endpoint ``name``, exactly as an online caller would (and logged).

    Args:
        data: A pandas, Polars or Arrow table, a list of records (dicts), one record, or
            columns (a dict of lists).
        request_key: Keeps this caller on one version while the split is unchanged.
    """
    client = client or default_client()
    path = predict_path(name)
    headers = {"X-Request-Key": request_key} if request_key is not None else {}
    table = _as_arrow(data)
    if table is not None:
        headers["Content-Type"] = ARROW_STREAM
        answer = client.request("POST", path, content=arrow_ipc(table), headers=headers)
    else:
        if isinstance(data, Mapping) and not all(isinstance(v, list) for v in data.values()):
            data = [dict(data)]  # one record
        elif not isinstance(data, Mapping):
            data = list(data)
        answer = client.request("POST", path, json={"inputs": data}, headers=headers)
    return Predictions(answer["predictions"], answer["prediction_ids"], answer["model_version"])


# -- the inference log -------------------------------------------------------------------------
def since_ms(since: dt.datetime | dt.date | dt.timedelta | int | float | str | None) -> int | None:
    """Milliseconds since the epoch from a datetime, a date, a duration back from now, epoch
    milliseconds, ``"30m"``/``"24h"``/``"7d"``/``"2w"``, or an ISO 8601 date or time.

    A datetime without a time zone is read as local time, as Python does.
    """
    if since is None:
        return None
    now = dt.datetime.now(dt.UTC)
    if isinstance(since, bool):
        raise InvalidInput("since must be a time, not a boolean", field="since")
    if isinstance(since, int | float):
        return int(since)
    if isinstance(since, dt.timedelta):
        return int((now - since).timestamp() * 1000)
    if isinstance(since, dt.datetime):
        return int(since.timestamp() * 1000)
    if isinstance(since, dt.date):
        return int(dt.datetime(since.year, since.month, since.day).timestamp() * 1000)
    if isinstance(since, str):
        match = _DURATION.match(since)
        if match:
            back = float(match[1]) * _UNIT_MS[match[2]]
            return int(now.timestamp() * 1000 - back)
        try:
            return since_ms(dt.datetime.fromisoformat(since.strip()))
        except ValueError:
            pass
    raise InvalidInput(
        f"since={since!r}: give a datetime, epoch milliseconds, a duration like '24h' or '7d', "
        "or an ISO 8601 time",
        field="since",
    )


def read_log(
    client: Client,
    name: str,
    since: int | None,
    limit: int | None,
    page: int = LOG_PAGE,
) -> list[dict[str, Any]]:
    """Rows of the log, oldest first, fetched page by page from the last time seen.

    The route pages by time only, and the rows of one request share their time: each page
    starts again at the last millisecond seen (its rows already read are skipped), and a page
    that brings nothing new is asked again twice as large, up to the route's maximum.
    """
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    cursor = since
    size = page if limit is None else min(page, limit)
    while limit is None or len(rows) < limit:
        params: dict[str, int] = {"limit": size}
        if cursor is not None:
            params["since"] = cursor
        batch = client.request("GET", endpoint_path(name, "log"), params=params)["rows"]
        fresh = [r for r in batch if r.get("prediction_id") not in seen]
        rows.extend(fresh)
        seen.update(r.get("prediction_id") for r in fresh)
        if len(batch) < size:
            break
        if fresh:
            cursor = batch[-1]["ts"]  # the last millisecond again: its other rows are not lost
        elif size >= LOG_PAGE:
            break  # more rows in one millisecond than the route returns at once
        else:
            size = min(size * 2, LOG_PAGE)
    return rows if limit is None else rows[:limit]


def inference_log(
    name: str,
    since: dt.datetime | dt.timedelta | int | str | None = None,
    *,
    limit: int | None = None,
    client: Client | None = None,
) -> pd.DataFrame:
    """Every logged prediction of endpoint ``name`` (after ``since``), oldest first.

    One row per prediction: ``prediction_id``, ``version``, ``route`` (primary, canary or
    shadow), one ``input.<column>`` per input field (redacted fields read ``***``), ``output``,
    ``latency_ms``, ``status``, ``request_key``, ``ts`` (milliseconds since the epoch), and the
    feedback received for it (``ground_truth``, ``score``, ``feedback_at``) when there is some.
    """
    import pandas as pd

    client = client or default_client()
    if limit is not None and limit < 1:
        raise InvalidInput("limit must be at least 1", field="limit")
    rows = read_log(client, name, since_ms(since), limit)
    if not rows:
        return pd.DataFrame({c: [] for c in LOG_COLUMNS})
    return pd.DataFrame(rows)


# -- feedback ----------------------------------------------------------------------------------
def feedback(
    prediction_id: str,
    ground_truth: Any = None,
    *,
    score: float | None = None,
    client: Client | None = None,
) -> int:
    """Record the true outcome (or a score) of one prediction; an unknown id raises NotFound."""
    client = client or default_client()
    body = {"prediction_id": prediction_id, "ground_truth": ground_truth, "score": score}
    return client.request("POST", "/api/v1/feedback", json=body)["accepted"]


def _items(items: Any) -> list[dict[str, Any]]:
    if type(items).__module__.split(".")[0] in ("pandas", "polars", "pyarrow"):
        table = _as_arrow(items)
        assert table is not None
        items = table.to_pylist()
    out = []
    for i, item in enumerate(items if isinstance(items, Iterable) else []):
        if not isinstance(item, Mapping) or "prediction_id" not in item:
            raise InvalidInput(f"items[{i}] needs a prediction_id", field=f"items.{i}")
        extra = set(item) - {"prediction_id", "ground_truth", "score"}
        if extra:
            raise InvalidInput(f"items[{i}] has unknown fields {sorted(extra)}", field=f"items.{i}")
        out.append(dict(item))
    if not out:
        raise InvalidInput("no feedback items", field="items")
    return out


def feedback_many(items: Any, *, client: Client | None = None) -> int:
    """Record feedback in bulk: dicts (or a table) of ``prediction_id``, ``ground_truth``,
    ``score``. One unknown id rejects its whole call (100,000 items per call); returns how many
    were stored."""
    client = client or default_client()
    rows = _items(items)
    stored = 0
    for start in range(0, len(rows), FEEDBACK_CHUNK):
        chunk = rows[start : start + FEEDBACK_CHUNK]
        stored += client.request("POST", "/api/v1/feedback", json={"items": chunk})["accepted"]
    return stored
