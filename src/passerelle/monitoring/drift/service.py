"""Drift of a deployed endpoint: its reference, and drift per window of its inference log.

Everything a request could get wrong (the endpoint, the durations, the overrides, the
reference) is checked before anything is read from the log or written to the store.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import InvalidInput, NotFound
from passerelle.core.ids import now_ms
from passerelle.core.store import ObjectStore
from passerelle.monitoring.drift import defaults, reference, windows
from passerelle.monitoring.drift.compare import PREDICTION, Profile, evaluate
from passerelle.monitoring.drift.multivariate import MAX_ROWS, _sample
from passerelle.registry import service as registry
from passerelle.serving import service as serving
from passerelle.serving.models import Endpoint
from passerelle.tracking.datasets import get_dataset

DEFAULT_SINCE = "24h"
FINISHED_AFTER_MS = 60_000  # a window this old is in every replica's compacted log


def default_window(since_ms: int) -> int:
    """Hours for a day or less, days beyond: a chart of a few dozen points."""
    return 3_600_000 if since_ms <= windows.DAY_MS else windows.DAY_MS


# -- the reference -------------------------------------------------------------------------------
def _training_snapshot(
    session: Session, principal: Principal, store: ObjectStore, endpoint: Endpoint, version: int
) -> pa.Table:
    record = registry.get_version(session, principal, endpoint.model_name, version)
    data = (record.lineage or {}).get("data") or []
    found = [
        d for d in data if d.get("context") == "training" and d.get("direction", "input") == "input"
    ] or [d for d in data if d.get("direction", "input") == "input"]
    found = [d for d in found if d.get("snapshot_sha256")]
    if not found:
        raise InvalidInput(
            f"version {version} of model '{endpoint.model_name}' has no training data snapshot: "
            "log the training table with log_dataset(..., context='training') in its run, or "
            "give the reference data",
            field="version",
        )
    return reference.parquet_table(store, found[0]["snapshot_sha256"], "version")


def _with_predictions(runtime: Any, endpoint: Endpoint, version: int, table: pa.Table) -> pa.Table:
    """The reference plus what the model predicts for it: the baseline of prediction drift."""
    if runtime is None or PREDICTION in table.column_names:
        return table
    try:
        config = runtime.config(endpoint.name, _admin())
        model = runtime.model(config, version)
        predicted = model.predict(table, extra_columns="drop")
        values = predicted.tolist() if hasattr(predicted, "tolist") else list(predicted)
        if values and isinstance(values[0], list | dict):
            return table  # structured outputs: no prediction drift
        return table.append_column(PREDICTION, pa.array(values))
    except Exception:  # the reference still serves feature drift
        return table


def _admin() -> Principal:
    from passerelle.core.auth import ANONYMOUS_ADMIN

    return ANONYMOUS_ADMIN


def set_reference(
    session: Session,
    principal: Principal,
    store: ObjectStore,
    runtime: Any,
    name: str,
    *,
    version: int | None = None,
    dataset_id: str | None = None,
    data: pa.Table | None = None,
    project: str | None = None,
) -> dict[str, Any]:
    """Make a model version's training snapshot, a tracked dataset or a table the reference."""
    endpoint = serving.get_endpoint(session, principal, name, Action.WRITE, project)
    given = [k for k, v in (("version", version), ("dataset_id", dataset_id), ("data", data)) if v]
    if len(given) > 1:
        raise InvalidInput(f"give one of version, dataset_id or data, not {given}", field=given[1])
    if data is not None:
        table, source = data, {"kind": "upload"}
    elif dataset_id is not None:
        ds = get_dataset(session, principal, dataset_id)
        if ds.snapshot_sha256 is None:
            raise InvalidInput(f"dataset {dataset_id} has no snapshot", field="dataset_id")
        table = reference.parquet_table(store, ds.snapshot_sha256, "dataset_id")
        source = {"kind": "dataset", "dataset_id": ds.id, "name": ds.name}
    else:
        if version is None:
            version = endpoint.primary_version
        if version is None:
            raise InvalidInput("the endpoint serves no version: name one", field="version")
        table = _training_snapshot(session, principal, store, endpoint, version)
        source = {"kind": "training", "model": endpoint.model_name, "version": version}
    if table.num_rows == 0:
        raise InvalidInput("the reference has no rows", field="reference")
    serving_version = version or endpoint.primary_version
    if serving_version is not None:
        table = _with_predictions(runtime, endpoint, serving_version, table)
    saved = reference.save_reference(store, endpoint.id, table, source)
    return {"endpoint": endpoint.name, **saved}


def get_reference(
    session: Session,
    principal: Principal,
    store: ObjectStore,
    runtime: Any,
    name: str,
    project: str | None = None,
) -> tuple[Endpoint, pa.Table, dict[str, Any]]:
    """The endpoint's reference; the first time, its primary version's training snapshot."""
    endpoint = serving.get_endpoint(session, principal, name, Action.READ, project)
    found = reference.load_reference(store, endpoint.id)
    if found is None:
        if endpoint.primary_version is None:
            raise NotFound(f"endpoint '{name}' has no reference and no version", field="reference")
        set_reference(session, _admin(), store, runtime, endpoint.name, project=project)
        found = reference.load_reference(store, endpoint.id)
        assert found is not None
    return endpoint, found[0], found[1]


def reference_public(endpoint: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {"endpoint": endpoint, **meta}


# -- drift ---------------------------------------------------------------------------------------
def _merge(summaries: list[windows.WindowSummary]) -> tuple[dict[str, Any], int, pa.Table | None]:
    merged: dict[str, Any] = {}
    for s in summaries:
        for name, sketch in s.sketches.items():
            merged[name] = sketch if name not in merged else merged[name] + sketch
    samples = [s.sample for s in summaries if s.sample.num_rows]
    sample = None
    if samples:
        sample = _sample(pa.concat_tables(samples, promote_options="permissive"), MAX_ROWS, 7)
    return merged, sum(s.rows for s in summaries), sample


def _series(
    profile: Profile, plans: dict[str, Any], summaries: list[windows.WindowSummary]
) -> list[dict[str, Any]]:
    out = []
    for s in summaries:
        item: dict[str, Any] = {"start": s.start, "end": s.end, "rows": s.rows, "cached": s.cached}
        if s.rows:
            report = evaluate(
                profile, s.sketches, plans, current_rows=s.rows, with_distributions=False
            )
            keys = ("test", "statistic", "drifted")
            item["columns"] = {c["column"]: {k: c[k] for k in keys} for c in report.columns}
        else:
            item["columns"] = {}
        out.append(item)
    return out


def drift(
    session: Session,
    principal: Principal,
    store: ObjectStore,
    runtime: Any,
    name: str,
    *,
    since: str | int = DEFAULT_SINCE,
    window: str | int | None = None,
    overrides: dict[str, Any] | None = None,
    multivariate: bool = True,
    version: int | None = None,
    project: str | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """Drift of the endpoint's traffic over ``since``, overall and per window; with
    ``version``, of the predictions that model version answered alone (a canary's, say)."""
    since_ms = windows.parse_duration(since, "since")
    window_ms = windows.parse_duration(window, "window") if window else default_window(since_ms)
    now = now_ms() if now is None else now
    spans = windows.bounds(now - since_ms, now, window_ms)
    endpoint, table, meta = get_reference(session, principal, store, runtime, name, project)
    if version is not None:  # a version the model never had is a mistake, not an empty report
        registry.get_version(session, principal, endpoint.model_name, version)
    if runtime is not None:
        runtime.log.compact()  # this process's latest predictions are in the parts
    return drift_of(
        store,
        endpoint,
        table,
        meta,
        spans,
        now,
        overrides=overrides,
        multivariate=multivariate,
        version=version,
    )


def drift_of(
    store: ObjectStore,
    endpoint: Endpoint,
    table: pa.Table,
    meta: dict[str, Any],
    spans: list[tuple[int, int]],
    now: int,
    *,
    overrides: dict[str, Any] | None = None,
    multivariate: bool = True,
    version: int | None = None,
) -> dict[str, Any]:
    """Drift of an endpoint's logged traffic in ``spans`` (what ``version`` answered, when
    given) against its reference ``table``: the part shared by the API and by alert rules on
    drift figures (which resolve the endpoint and the reference themselves)."""
    window_ms = spans[0][1] - spans[0][0]
    reader = windows.LogReader(store, endpoint.name)
    try:
        logged = reader.columns()
    finally:
        reader.close()
    redacted = set(endpoint.redact or [])
    skipped = {c: "redacted in the inference log" for c in table.column_names if c in redacted}
    if logged:  # before any traffic, overrides are checked against the reference's columns
        skipped.update(
            {c: "not in the inference log" for c in table.column_names if c not in logged}
        )
    candidates = [c for c in table.column_names if c not in skipped]
    for c in sorted(logged - set(table.column_names) - {PREDICTION}):
        skipped[c] = "not in the reference"
    inferred = defaults.infer_kinds(table.select(candidates))
    skipped.update(
        {c: defaults.skip_reason(table.column(c)) for c in candidates if c not in inferred}
    )
    kinds, plans = defaults.parse_overrides(overrides, inferred)
    profile, base = reference.load_profile(store, endpoint.id, table, meta["digest"], kinds)
    summaries = windows.summarise_windows(
        store, endpoint.name, profile, base, spans, now - FINISHED_AFTER_MS, version=version
    )
    merged, rows, sample = _merge(summaries)
    present = {k: v for k, v in merged.items() if v.count + v.missing > 0}
    empty = [c for c in profile.columns if c not in present]
    report = evaluate(
        profile,
        present,
        plans,
        current_rows=rows,
        current_sample=sample if multivariate and rows else None,
    )
    body = report.to_dict()
    body["skipped"] = {**skipped, **{c: "no value in the period" for c in empty if rows}}
    prediction = next((c for c in body["columns"] if c["column"] == PREDICTION), None)
    body["columns"] = [c for c in body["columns"] if c["column"] != PREDICTION]
    body["drifted_columns"] = [c for c in body["drifted_columns"] if c != PREDICTION]
    return {
        "endpoint": endpoint.name,
        "since": spans[0][0],
        "until": now,
        "window_ms": window_ms,
        "version": version,
        "reference": reference_public(endpoint.name, meta),
        **body,
        "prediction": prediction,
        "windows": _series(profile, plans, summaries),
    }
