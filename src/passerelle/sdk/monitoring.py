"""Monitoring in the SDK: reference data and drift, live performance, canary analysis and
policy, alert rules of a deployed endpoint.

Thin fronts over the monitoring REST API; tables come back as pandas DataFrames.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from passerelle.sdk.client import Client, default_client
from passerelle.sdk.serving import ARROW_STREAM, _as_arrow, arrow_ipc, endpoint_path

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Reference:
    """The data an endpoint's traffic is compared with, and where it came from."""

    endpoint: str
    source: dict[str, Any]
    rows: int
    columns: list[str]
    digest: str
    has_predictions: bool
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Reference:
        names = ("endpoint", "source", "rows", "columns", "digest", "has_predictions")
        return cls(**{n: body[n] for n in names}, raw=body)


@dataclass
class DriftReport:
    """Drift of an endpoint's traffic: per feature, the test, its statistic, p-value or
    distance and whether it drifted; the prediction; the multivariate test; every window."""

    endpoint: str
    since: dt.datetime
    until: dt.datetime
    drifted_columns: list[str]
    columns: list[dict[str, Any]]
    prediction: dict[str, Any] | None
    multivariate: dict[str, Any] | None
    windows: list[dict[str, Any]]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> DriftReport:
        def when(ms: int) -> dt.datetime:
            return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)

        return cls(
            body["endpoint"],
            when(body["since"]),
            when(body["until"]),
            body["drifted_columns"],
            body["columns"],
            body["prediction"],
            body["multivariate"],
            body["windows"],
            raw=body,
        )

    @property
    def drifted(self) -> bool:
        return bool(self.drifted_columns) or bool(
            self.multivariate and self.multivariate["drifted"]
        )

    def to_pandas(self) -> pd.DataFrame:
        """One row per feature (and the prediction): test, statistic, p-values, drifted, and
        the checks (missing values, range, new categories) that flagged it."""
        import pandas as pd

        rows = []
        for c in [*self.columns, *([self.prediction] if self.prediction else [])]:
            rows.append(
                {
                    "column": c["column"],
                    "role": c["role"],
                    "kind": c["kind"],
                    "test": c["test"],
                    "statistic": c["statistic"],
                    "p_value": c["p_value"],
                    "adjusted_p_value": c["adjusted_p_value"],
                    "threshold": c["threshold"],
                    "drifted": c["drifted"],
                    "flagged_by": ", ".join(
                        s["test"] for s in [c["drift"], *c["checks"]] if s["drifted"]
                    ),
                }
            )
        return pd.DataFrame(rows)

    def windows_frame(self) -> pd.DataFrame:
        """One row per window and column: the statistic over time."""
        import pandas as pd

        rows = [
            {
                "start": pd.Timestamp(w["start"], unit="ms", tz="UTC"),
                "rows": w["rows"],
                "column": name,
                **values,
            }
            for w in self.windows
            for name, values in w["columns"].items()
        ]
        return pd.DataFrame(rows)


def reference(
    name: str,
    version: int | None = None,
    *,
    data: Any = None,
    dataset: str | None = None,
    project: str | None = None,
    client: Client | None = None,
) -> Reference:
    """Set the data endpoint ``name``'s traffic is compared with, and return it.

    Exactly one of ``version`` (the training snapshot logged with that model version's run),
    ``dataset`` (a tracked dataset's id) or ``data`` (a pandas, Polars or Arrow table); with
    none, the training snapshot of the version the endpoint serves.
    """
    client = client or default_client()
    path = endpoint_path(name, "drift", "reference")
    params = {"project": project} if project else None
    if data is not None:
        table = _as_arrow(data)
        if table is None:
            import pyarrow as pa

            table = pa.table(data) if isinstance(data, dict) else pa.Table.from_pylist(data)
        body = client.request(
            "PUT",
            path,
            content=arrow_ipc(table),
            headers={"Content-Type": ARROW_STREAM},
            params=params,
        )
    else:
        payload = {"version": version, "dataset_id": dataset, "project": project}
        body = client.request("PUT", path, json={k: v for k, v in payload.items() if v})
    return Reference.from_api(body)


def drift(
    name: str,
    since: str = "24h",
    *,
    window: str | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    multivariate: bool = True,
    version: int | None = None,
    project: str | None = None,
    client: Client | None = None,
) -> DriftReport:
    """Drift of endpoint ``name``'s traffic over the last ``since`` (``"24h"``, ``"7d"``).

    Args:
        window: Length of each window of the series (default: 1h up to a day, else 1d).
        overrides: Per column, ``{"test": "ks" | "wasserstein" | "psi" | "chi2" |
            "jensenshannon", "threshold": float, "kind": "numeric" | "categorical"}``.
        multivariate: Also train the domain classifier on a sample of both sides.
        version: Only the predictions this model version answered (a canary's, say), to
            tell its prediction drift from the other versions'.
    """
    client = client or default_client()
    payload: dict[str, Any] = {"since": since, "multivariate": multivariate}
    if version is not None:
        payload["version"] = version
    if window is not None:
        payload["window"] = window
    if overrides is not None:
        payload["overrides"] = overrides
    if project is not None:
        payload["project"] = project
    return DriftReport.from_api(client.request("POST", endpoint_path(name, "drift"), json=payload))


def _since_param(since: dt.datetime | dt.timedelta | int | str | None) -> str | None:
    if since is None:
        return None
    if isinstance(since, dt.timedelta):
        return f"{int(since.total_seconds() * 1000)}ms"
    if isinstance(since, dt.datetime):
        return str(int(since.timestamp() * 1000))
    return str(since)


def performance_report(
    name: str,
    window: str = "1d",
    since: dt.datetime | dt.timedelta | int | str | None = None,
    *,
    task: str | None = None,
    client: Client | None = None,
) -> dict[str, Any]:
    """The performance answer as the API gives it (see :func:`performance` for a table)."""
    client = client or default_client()
    params = {"window": window}
    for key, value in (("since", _since_param(since)), ("task", task)):
        if value is not None:
            params[key] = value
    return client.request("GET", endpoint_path(name, "performance"), params=params)


def performance(
    name: str,
    window: str = "1d",
    since: dt.datetime | dt.timedelta | int | str | None = None,
    *,
    task: str | None = None,
    client: Client | None = None,
) -> pd.DataFrame:
    """Live performance of endpoint ``name`` per time window and model version.

    One row per window and version: ``window_start``/``window_end`` (UTC), ``version``,
    ``predictions``, ``labelled`` (with feedback) and ``pending``; each metric measured on the
    labelled predictions with its 95% interval (``accuracy``, ``accuracy_low``,
    ``accuracy_high``...: F1, precision, recall macro and weighted, ROC AUC, log loss for a
    classifier; MAE, RMSE, MAPE, R² for a regressor); and for a classifier that logs class
    probabilities, the confidence-based estimate over every prediction of the window
    (``estimated_accuracy``, ``estimated_f1_macro``...), labelled or not. ``df.attrs`` holds
    the task, the window and how intervals were computed.

    ``window`` and ``since`` take durations like ``"30m"``, ``"6h"``, ``"1d"``, ``"2w"``;
    ``since`` also a datetime or epoch milliseconds (default: the last 30 windows).
    """
    import pandas as pd

    report = performance_report(name, window, since, task=task, client=client)
    rows = []
    for w in report["windows"]:
        row: dict[str, Any] = {
            "window_start": pd.Timestamp(w["window_start"], unit="ms", tz="UTC"),
            "window_end": pd.Timestamp(w["window_end"], unit="ms", tz="UTC"),
            "version": w["version"],
            "predictions": w["predictions"],
            "labelled": w["labelled"],
            "pending": w["pending"],
        }
        for metric in report["metrics"]:
            row[metric] = w["metrics"].get(metric)
            interval = w["intervals"].get(metric)
            row[f"{metric}_low"] = interval[0] if interval else None
            row[f"{metric}_high"] = interval[1] if interval else None
        for metric, value in ((w.get("estimate") or {}).get("metrics") or {}).items():
            row[f"estimated_{metric}"] = value
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs.update({k: v for k, v in report.items() if k != "windows"})
    return frame


# -- canary --------------------------------------------------------------------------------------
def canary_analysis(
    name: str, *, apply: bool = False, client: Client | None = None
) -> dict[str, Any]:
    """The canary of endpoint ``name`` compared with its primary since it was deployed.

    Per figure (error rate, p95 latency, accuracy or MAE from feedback): both values, samples,
    the test and its p-value, whether the minimum sample is reached and whether the canary is
    worse; then a ``verdict``: ``worse``, ``no_worse`` or ``insufficient``. With
    ``apply=True`` the endpoint's canary policy acts on it (roll back, promote or alert) and
    ``action`` says what it did.
    """
    client = client or default_client()
    if apply:
        return client.request("POST", endpoint_path(name, "canary", "evaluate"))
    return client.request("GET", endpoint_path(name, "canary"))


def set_canary_policy(
    name: str,
    *,
    when_worse: str = "rollback",
    when_no_worse: str = "wait",
    min_samples: int = 200,
    alpha: float = 0.05,
    max_latency_increase: float = 0.2,
    webhook: str | None = None,
    client: Client | None = None,
) -> dict[str, Any]:
    """Decide what happens to the canaries of endpoint ``name``.

    ``when_worse``: ``rollback`` or ``alert``; ``when_no_worse``: ``promote``, ``alert`` or
    ``wait`` (a person decides). Nothing is decided before ``min_samples`` per route.
    """
    client = client or default_client()
    body = {
        "when_worse": when_worse,
        "when_no_worse": when_no_worse,
        "min_samples": min_samples,
        "alpha": alpha,
        "max_latency_increase": max_latency_increase,
        "webhook": webhook,
    }
    return client.request("PUT", endpoint_path(name, "canary", "policy"), json=body)


# -- alerts --------------------------------------------------------------------------------------
def add_alert(
    endpoint: str,
    metric: str,
    *,
    below: float | None = None,
    above: float | None = None,
    window: str = "1h",
    min_samples: int = 30,
    version: int | None = None,
    webhook: str | None = None,
    name: str | None = None,
    client: Client | None = None,
) -> dict[str, Any]:
    """Watch ``metric`` of ``endpoint`` over a trailing ``window``: an incident opens (and
    ``webhook`` gets one JSON message) when it goes ``below`` or ``above`` the threshold on at
    least ``min_samples`` samples, and resolves when it comes back."""
    client = client or default_client()
    body = {
        "endpoint": endpoint,
        "metric": metric,
        "below": below,
        "above": above,
        "window": window,
        "min_samples": min_samples,
        "version": version,
        "webhook": webhook,
        "name": name,
    }
    return client.request("POST", "/api/v1/alerts", json=body)


def list_alerts(endpoint: str | None = None, *, client: Client | None = None) -> list[dict]:
    """Alert rules with their state (``ok``, ``firing``, ``unknown``) and last value."""
    client = client or default_client()
    params = {"endpoint": endpoint} if endpoint else None
    return client.request("GET", "/api/v1/alerts", params=params)


def remove_alert(rule_id: int, *, client: Client | None = None) -> None:
    client = client or default_client()
    client.request("DELETE", f"/api/v1/alerts/{int(rule_id)}")
