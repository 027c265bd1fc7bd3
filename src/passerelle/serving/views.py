"""What the endpoint pages need beyond the service: URLs, live figures per version computed from
the inference log, the traffic split as bar segments, charts, and confirmation tokens.

Live figures come from the log the gateway writes for every prediction. One request writes one
row per input row, all with the same time and latency, so a request is a group of rows sharing
version, route, time, latency and status.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import Request
from sqlalchemy.orm import Session

from passerelle.core.auth import Principal
from passerelle.core.models import Project
from passerelle.core.web import presented_key
from passerelle.serving import service
from passerelle.serving.models import Endpoint
from passerelle.web import confirm
from passerelle.web.charts import line_figure
from passerelle.web.confirm import TokenCheck
from passerelle.web.render import query_string

WINDOWS = (5, 15, 60, 360, 1440)  # minutes the pages offer for live figures
DEFAULT_WINDOW = 15
REQUEST_KEYS = ["version", "route", "ts", "latency_ms", "status"]
TRAFFIC = ("primary_version", "canary_version", "canary_weight", "shadow_versions", "paused")


# -- URLs --------------------------------------------------------------------------------------
def endpoint_path(name: str, *parts: str | int) -> str:
    """``/endpoints/<name>[/<part>...]``, every part quoted (names come from the API)."""
    return "/endpoints/" + "/".join(quote(str(p), safe="") for p in (name, *parts))


def endpoint_url(name: str, project: str, *parts: str | int, **params: Any) -> str:
    return endpoint_path(name, *parts) + query_string(project=project, **params)


def model_page_url(model: str, project: str) -> str:
    from passerelle.registry.views import model_url

    return model_url(model, project)


def version_url(model: str, project: str, version: int) -> str:
    from passerelle.registry.views import model_url

    return model_url(model, project, "versions", version)


def project_names(session: Session, endpoints: Sequence[Endpoint]) -> dict[int, str]:
    ids = {e.project_id for e in endpoints}
    return {pid: (p.name if (p := session.get(Project, pid)) else "") for pid in ids}


# -- live figures ------------------------------------------------------------------------------
@dataclass
class VersionStats:
    """One version's traffic over the window: requests, rows, errors, latency percentiles."""

    version: int
    requests: int = 0
    routed: int = 0  # requests it answered (primary or canary), not copies (shadow)
    predictions: int = 0
    errors: int = 0
    routed_errors: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    routes: list[str] = field(default_factory=list)

    def rate(self, window_minutes: int) -> float:
        """Requests per second, averaged over the window."""
        return self.requests / (window_minutes * 60)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def requests_of(log: pa.Table, endpoint_id: int, since_ms: int) -> pa.Table:
    """One row per request of the endpoint since ``since_ms``, with its number of rows."""
    if log.num_rows == 0 or any(c not in log.column_names for c in REQUEST_KEYS):
        return pa.table({})
    mask = pc.greater_equal(log["ts"], since_ms)
    if "endpoint_id" in log.column_names:
        mask = pc.and_(mask, pc.equal(log["endpoint_id"], endpoint_id))
    rows = log.select([*REQUEST_KEYS, "prediction_id"]).filter(mask)
    return rows.group_by(REQUEST_KEYS, use_threads=False).aggregate([("prediction_id", "count")])


def version_stats(requests: pa.Table) -> dict[int, VersionStats]:
    """Figures per version from ``requests_of``; latency percentiles are per request."""
    if requests.num_rows == 0:
        return {}
    cols = requests.to_pydict()
    versions = np.asarray(cols["version"])
    latency = np.asarray(cols["latency_ms"], dtype=float)
    failed = np.asarray([s != "ok" for s in cols["status"]])
    counts = np.asarray(cols["prediction_id_count"])
    routes = np.asarray(cols["route"])
    out = {}
    for v in sorted({int(x) for x in versions}):
        mine = versions == v
        out[v] = VersionStats(
            version=v,
            requests=int(mine.sum()),
            routed=int((mine & (routes != "shadow")).sum()),
            predictions=int(counts[mine].sum()),
            errors=int(failed[mine].sum()),
            routed_errors=int((failed & mine & (routes != "shadow")).sum()),
            p50_ms=float(np.percentile(latency[mine], 50)),
            p99_ms=float(np.percentile(latency[mine], 99)),
            routes=sorted({str(r) for r in routes[mine]}),
        )
    return out


def role_rows(
    endpoint: dict[str, Any], stats: dict[int, VersionStats], window: int
) -> list[dict[str, Any]]:
    """The table of an endpoint: each version it serves (then any other seen in the window),
    its role, configured and observed share, and its figures."""
    canary, weight = endpoint["canary_version"], endpoint["canary_weight"] or 0.0
    roles: list[tuple[int, str, float | None]] = []
    if endpoint["primary_version"] is not None:
        share = 100.0 - weight if canary is not None else 100.0
        roles.append((endpoint["primary_version"], "primary", share))
    if canary is not None:
        roles.append((canary, "canary", weight))
    roles += [(s, "shadow", None) for s in endpoint["shadow_versions"]]
    shown = {v for v, _, _ in roles}
    roles += [(v, "retired", 0.0) for v in sorted(stats) if v not in shown]
    routed = sum(s.routed for s in stats.values())
    rows = []
    for version, role, share in roles:
        s = stats.get(version, VersionStats(version))
        observed = 100.0 * s.routed / routed if role != "shadow" and routed else None
        rows.append(
            {
                "version": version,
                "role": role,
                "share": share,
                "observed": observed,
                "requests": s.requests,
                "predictions": s.predictions,
                "rate": s.rate(window),
                "errors": s.errors,
                "error_rate": s.error_rate,
                "p50": s.p50_ms,
                "p99": s.p99_ms,
            }
        )
    return rows


def split_segments(endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    """The traffic bar: the primary's and the canary's share of requests, in percent."""
    if endpoint["primary_version"] is None:
        return []
    canary, weight = endpoint["canary_version"], endpoint["canary_weight"] or 0.0
    segments = [
        {
            "role": "primary",
            "version": endpoint["primary_version"],
            "share": 100.0 - weight if canary is not None else 100.0,
        }
    ]
    if canary is not None:
        segments.append({"role": "canary", "version": canary, "share": weight})
    return segments


def _minute(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")


ROLE_COLORS = {
    "primary": "#3b6ea5",
    "canary": "#c2703d",
    "shadow": "#7a68a6",
    "retired": "#9aa5b1",
}


def traffic_charts(
    requests: pa.Table, since_ms: int, now_ms: int, roles: dict[int, str]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Requests per minute and p99 latency per minute, one line per version in the colour of
    its role (as in the traffic bar); ``None`` when the window saw no request."""
    if requests.num_rows == 0:
        return None
    cols = requests.to_pydict()
    first, last = since_ms // 60_000, now_ms // 60_000
    minutes = range(first, last + 1)
    per: dict[int, dict[int, list[float]]] = {}
    for v, ts, latency in zip(cols["version"], cols["ts"], cols["latency_ms"], strict=True):
        per.setdefault(int(v), {}).setdefault(ts // 60_000, []).append(float(latency))
    rate_series, latency_series = [], []
    for v in sorted(per):
        by_minute = per[v]
        rate_series.append((f"v{v}", [(m, len(by_minute.get(m, []))) for m in minutes]))
        latency_series.append(
            (
                f"v{v}",
                [(m, float(np.percentile(by_minute[m], 99))) for m in minutes if m in by_minute],
            )
        )
    charts = []
    for title, series, unit in (
        ("Requests per minute", rate_series, "requests"),
        ("p99 latency per minute (ms)", latency_series, "ms"),
    ):
        figure = line_figure(title, series)
        for trace in figure["data"]:
            color = ROLE_COLORS[roles.get(int(trace["name"][1:]), "retired")]
            trace["line"], trace["marker"] = {"color": color, "width": 2}, {"color": color}
            trace["x"] = [_minute(m * 60_000) for m in trace["x"]]
            trace["hovertemplate"] = (
                f"%{{x}} UTC<br>{trace['name']}: %{{y:.4g}} {unit}<extra></extra>"
            )
        layout = figure["layout"]
        layout["xaxis"].update(
            type="date", title={"text": "UTC"}, range=[_minute(since_ms), _minute(now_ms + 60_000)]
        )
        layout["yaxis"]["rangemode"] = "tozero"
        layout["height"] = 240
        layout["showlegend"] = True
        charts.append(figure)
    return charts[0], charts[1]


# -- endpoints serving a version (the registry's lineage graph) --------------------------------
def deployments_of(
    session: Session, principal: Principal, project_id: int, model: str, version: int
) -> list[dict[str, Any]]:
    """Each endpoint serving ``version`` of ``model``, with its role: the graph's last column."""
    found = []
    projects: dict[int, str] = {}
    for e in service.list_endpoints(session, principal):
        if e.project_id != project_id or e.model_name != model:
            continue
        if version == e.primary_version:
            detail = "primary · " + (
                f"{100 - e.canary_weight:g}% of traffic" if e.canary_version else "all traffic"
            )
        elif version == e.canary_version:
            detail = f"canary · {e.canary_weight:g}% of traffic"
        elif version in (e.shadow_versions or []):
            detail = "shadow · a copy of traffic"
        else:
            continue
        if e.paused:
            detail += " · paused"
        if project_id not in projects:
            projects.update(project_names(session, [e]))
        found.append(
            {"name": e.name, "detail": detail, "href": endpoint_url(e.name, projects[project_id])}
        )
    return found


# -- confirmation tokens -----------------------------------------------------------------------


def signing_key(request: Request) -> bytes:
    """The caller's own key when one was presented, else the app's random secret.

    Keyed by the caller's key, a token is worthless to anyone else and valid on every replica;
    without a key (auth off, loopback only) there is one process and its secret does.
    """
    presented = presented_key(request)
    if presented:
        return hashlib.sha256(
            b"passerelle deployment confirmation\x00" + presented.encode()
        ).digest()
    return request.app.state.confirm_secret


def sign_change(key: bytes, fields: Sequence[Any], issued_ms: int) -> str:
    """``<issued>.<hmac>`` over exactly the change a confirmation page showed."""
    return confirm.sign(key, "deployment-change", fields, issued_ms)


def check_change(key: bytes, fields: Sequence[Any], token: str, now_ms: int) -> TokenCheck:
    return confirm.check(key, "deployment-change", fields, token, now_ms)


# -- words -------------------------------------------------------------------------------------
ACTION_LABELS = {
    "deploy": "Deployed",
    "canary": "Canary started",
    "weight": "Canary weight changed",
    "shadow": "Shadow added",
    "unshadow": "Shadow removed",
    "promote": "Canary promoted",
    "rollback": "Rolled back",
    "pause": "Paused",
    "resume": "Resumed",
    "configure": "Configured",
}


def describe(state: dict[str, Any] | None) -> str:
    """``v3``, ``v3 90% · canary v4 10%``, ``... · shadow v5``, ``(paused)``: who gets what."""
    if not state or state.get("primary_version") is None:
        return "nothing deployed"
    canary, weight = state.get("canary_version"), state.get("canary_weight") or 0.0
    text = f"v{state['primary_version']}"
    if canary is not None:
        text += f" {100 - weight:g}% · canary v{canary} {weight:g}%"
    shadows = state.get("shadow_versions") or []
    if shadows:
        text += " · shadow " + ", ".join(f"v{s}" for s in shadows)
    if state.get("paused"):
        text += " (paused)"
    return text


def history_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The service's history with the words a page shows."""
    rows = []
    for e in events:
        detail = e.get("detail") or {}
        before, after = detail.get("before"), detail.get("after")
        rows.append(
            {
                **e,
                "label": ACTION_LABELS.get(e["action"], e["action"]),
                "before_text": describe(before),
                "after_text": describe(after),
                "unchanged": before == after,
            }
        )
    return rows


def explain(action: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    """What a confirmed change will do, in one sentence."""
    if action == "promote":
        return (
            f"Version {after['primary_version']} becomes the primary and answers every request; "
            f"version {before['primary_version']} is kept as the version a rollback returns to."
        )
    if action == "weight":
        return (
            f"The canary, version {after['canary_version']}, gets {after['canary_weight']:g}% "
            f"of requests instead of {before['canary_weight']:g}%."
        )
    if before["canary_version"] is not None and after["canary_version"] is None:
        return (
            f"The canary, version {before['canary_version']}, stops receiving requests at once; "
            f"version {after['primary_version']} answers all of them."
        )
    return (
        f"Version {after['primary_version']} becomes the primary again in place of version "
        f"{before['primary_version']}, at once."
    )
