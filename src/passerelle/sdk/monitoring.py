"""Monitoring in the SDK: reference data, drift and live performance of a deployed endpoint.

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
    project: str | None = None,
    client: Client | None = None,
) -> DriftReport:
    """Drift of endpoint ``name``'s traffic over the last ``since`` (``"24h"``, ``"7d"``).

    Args:
        window: Length of each window of the series (default: 1h up to a day, else 1d).
        overrides: Per column, ``{"test": "ks" | "wasserstein" | "psi" | "chi2" |
            "jensenshannon", "threshold": float, "kind": "numeric" | "categorical"}``.
        multivariate: Also train the domain classifier on a sample of both sides.
    """
    client = client or default_client()
    payload: dict[str, Any] = {"since": since, "multivariate": multivariate}
    if window is not None:
        payload["window"] = window
    if overrides is not None:
        payload["overrides"] = overrides
    if project is not None:
        payload["project"] = project
    return DriftReport.from_api(client.request("POST", endpoint_path(name, "drift"), json=payload))
