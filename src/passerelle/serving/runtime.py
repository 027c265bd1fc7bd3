"""Per-process serving state: endpoint configs refreshed by revision, models kept warm.

A change made through any process reaches this one within ``REFRESH_SECONDS``: each request
re-reads its endpoint's row when the cached copy is older than that (one indexed query), and
models are loaded once per process and kept.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from passerelle.core.auth import ANONYMOUS_ADMIN, Principal
from passerelle.core.errors import InvalidInput, NotFound, PasserelleError
from passerelle.core.ids import now_ms
from passerelle.core.models import Project
from passerelle.core.store import ObjectStore
from passerelle.registry import service as registry
from passerelle.registry.loaded import LoadedModel, load_folder
from passerelle.registry.signature import to_table, validate_input
from passerelle.serving import routing
from passerelle.serving.batching import Batcher, Pending
from passerelle.serving.inference_log import InferenceLog, frame_record, proba_texts
from passerelle.serving.models import Endpoint
from passerelle.serving.service import endpoint_public

log = logging.getLogger("passerelle.serving")
REFRESH_SECONDS = 0.5


class EndpointUnavailable(PasserelleError):
    status = 503
    code = "unavailable"


def new_prediction_ids(count: int) -> list[str]:
    """32 hex characters each: 12 of milliseconds (sortable, datable), 20 random (80 bits)."""
    prefix = f"{now_ms():012x}"
    noise = os.urandom(10 * count).hex()
    return [prefix + noise[i : i + 20] for i in range(0, 20 * count, 20)]


def new_prediction_id() -> str:
    return new_prediction_ids(1)[0]


def prepare_input(
    model: LoadedModel, records: list[dict[str, Any]], table: pa.Table | None
) -> tuple[pa.Table | None, np.ndarray | None]:
    """The model's input: a float64 matrix on the numeric fast path, else a validated table.

    ``table`` is given for Arrow and Parquet bodies; JSON bodies arrive as records only, and
    become a table only when the fast path does not take them. Raises ``SignatureError`` (422)
    naming every offending column.
    """
    if table is None and model.matrix_plan is not None:
        matrix = model.matrix_plan.matrix(records)
        if matrix is not None:
            return None, matrix
    if table is None:
        try:
            table = to_table(records)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInput(f"inputs mix types within a column: {exc}", field="inputs") from None
        except OverflowError:
            raise InvalidInput(
                "inputs hold an integer beyond the 64-bit range", field="inputs"
            ) from None
    if model.signature is not None:
        table = validate_input(table, model.signature, cache=model.schema_verdicts)
    return table, None


def prediction_time(prediction_id: str) -> int | None:
    try:
        return int(prediction_id[:12], 16)
    except ValueError:
        return None


class ServingRuntime:
    def __init__(
        self,
        sessions: sessionmaker,
        store: ObjectStore,
        home: Path,
        inference_log: InferenceLog,
        *,
        max_batch_rows: int = 512,
        max_wait_ms: float = 2.0,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.cache_dir = home / "cache" / "models"
        self.log = inference_log
        self.rng = random.Random()
        self._configs: dict[tuple[str, int | None], tuple[float, dict[str, Any]]] = {}
        self._models: dict[tuple[int, str, int], LoadedModel] = {}
        self._lock = threading.Lock()
        self._load_locks: dict[tuple[int, str, int], threading.Lock] = {}
        # Observers of every model call: (endpoint, version, rows) — metrics hang here.
        self.on_batch: list[Callable[[str, int, int], None]] = []
        self._batchers: dict[tuple[int, int], Batcher] = {}
        self.max_batch_rows = max_batch_rows
        self.max_wait = max_wait_ms / 1000

    # -- configuration -------------------------------------------------------------------------
    def config(self, name: str, principal: Principal) -> dict[str, Any]:
        key = (name, principal.project_id)
        cached = self._configs.get(key)
        if cached is not None and time.monotonic() - cached[0] < REFRESH_SECONDS:
            config = cached[1]
        else:
            with self.sessions() as session:
                query = select(Endpoint).where(Endpoint.name == name)
                if principal.project_id is not None:
                    query = query.where(Endpoint.project_id == principal.project_id)
                endpoint = session.scalars(query).first()
                if endpoint is None:
                    raise NotFound(f"endpoint '{name}' not found", field="endpoint")
                project = session.get(Project, endpoint.project_id)
                config = {
                    **endpoint_public(endpoint),
                    "id": endpoint.id,
                    "project_id": endpoint.project_id,
                    "project": project.name if project else "default",
                }
            self._configs[key] = (time.monotonic(), config)
        return self._servable(name, config, principal)

    @staticmethod
    def _servable(name: str, config: dict[str, Any], principal: Principal) -> dict[str, Any]:
        """``config`` once ``principal`` may read it and a version is deployed."""
        from passerelle.core.auth import Action

        principal.require(Action.READ, config["project_id"])
        if config["primary_version"] is None:
            raise EndpointUnavailable(f"endpoint '{name}' has no version deployed")
        return config

    def invalidate(self, name: str) -> None:
        """Forget cached configs of ``name``: a change made here is in force here at once."""
        for key in [k for k in self._configs if k[0] == name]:
            self._configs.pop(key, None)

    # -- models --------------------------------------------------------------------------------
    def model(self, config: dict[str, Any], version: int) -> LoadedModel:
        """The loaded model of a version; loaded (and verified) once per process."""
        key = (config["project_id"], config["model"], version)
        found = self._models.get(key)
        if found is not None:
            return found
        with self._lock:
            lock = self._load_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._models:
                self._models[key] = self._load(config, version)
        return self._models[key]

    def _load(self, config: dict[str, Any], version: int) -> LoadedModel:
        with self.sessions() as session:
            record = registry.get_version(
                session, ANONYMOUS_ADMIN, config["model"], version, config["project"]
            )
            files, manifest_sha = dict(record.files), record.manifest_sha256
        folder = self.cache_dir / manifest_sha
        for rel, digest in files.items():
            target = folder / rel
            if not target.exists():
                self.store.copy_to_file(digest, target)
        return load_folder(folder, manifest_sha, uri=f"models:/{config['model']}/{version}")

    def loaded(self, config: dict[str, Any]) -> bool:
        versions = [config["primary_version"], config["canary_version"], *config["shadow_versions"]]
        return all(
            (config["project_id"], config["model"], v) in self._models
            for v in versions
            if v is not None
        )

    def warm(self) -> None:
        """Load every deployed version (for readiness)."""
        with self.sessions() as session:
            names = [e.name for e in session.scalars(select(Endpoint))]
        for name in names:
            config = self.config(name, ANONYMOUS_ADMIN)
            for v in (
                config["primary_version"],
                config["canary_version"],
                *config["shadow_versions"],
            ):
                if v is not None:
                    self.model(config, v)

    # -- prediction ----------------------------------------------------------------------------
    def cached_config(self, name: str, principal: Principal) -> dict[str, Any] | None:
        """The config when the cached copy is fresh (no thread hop, no query), else None."""
        cached = self._configs.get((name, principal.project_id))
        if cached is None or time.monotonic() - cached[0] >= REFRESH_SECONDS:
            return None
        # the copy read here, not a second lookup: it may expire or be invalidated meanwhile,
        # and ``config`` would then query the database on the event loop
        return self._servable(name, cached[1], principal)

    def cached_model(self, config: dict[str, Any], version: int) -> LoadedModel | None:
        return self._models.get((config["project_id"], config["model"], version))

    def batcher(self, config: dict[str, Any], version: int) -> Batcher:
        """The micro-batcher of one version (created in the event loop that uses it)."""
        key = (config["id"], version)  # per endpoint: its name and redaction go in its log
        found = self._batchers.get(key)
        if found is None:
            found = self._batchers[key] = Batcher(
                lambda batch: self.predict_many(batch[-1].config, version, batch),
                max_rows=self.max_batch_rows,
                max_wait=self.max_wait,
            )
        return found

    def predict_many(
        self, config: dict[str, Any], version: int, batch: list[Pending]
    ) -> list[dict[str, Any]]:
        """One model call for several validated requests; spools every row before returning."""
        model = self.model(config, version)
        fast = model.matrix_plan is not None and all(p.matrix is not None for p in batch)
        started = time.perf_counter()
        if fast:
            matrices = [p.matrix for p in batch]
            matrix = matrices[0] if len(matrices) == 1 else np.concatenate(matrices)
            outputs, proba = model.predict_matrix(matrix)
        else:
            tables = [self._table(model, p) for p in batch]
            table = (
                tables[0]
                if len(tables) == 1
                else pa.concat_tables(tables, promote_options="permissive")
            )
            outputs, proba = model.serve(table.to_pandas())
        keys = model.proba_keys(proba.shape[1]) if proba is not None else None
        latency = (time.perf_counter() - started) * 1000
        predictions = outputs.tolist() if isinstance(outputs, np.ndarray) else list(outputs)
        for observe in self.on_batch:
            observe(config["name"], version, len(predictions))
        ts = now_ms()
        ids = new_prediction_ids(len(predictions))
        answers, offset = [], 0
        for item in batch:
            end = offset + item.rows
            answers.append(
                {
                    "predictions": predictions[offset:end],
                    "prediction_ids": ids[offset:end],
                    "model_version": version,
                }
            )
            offset = end
        if fast:
            assert model.matrix_plan is not None
            self.log.append_frame(
                frame_record(
                    config,
                    version,
                    model.matrix_plan.columns,
                    model.matrix_plan.integer,
                    matrix,
                    ids,
                    predictions,
                    [(p.rows, p.route, p.request_key, p.batch_id) for p in batch],
                    latency,
                    ts,
                    proba,
                    keys,
                )
            )
        else:
            rows = self._log_rows(config, version, batch, ids, predictions, latency, ts)
            if proba is not None and keys is not None:
                for row, text in zip(rows, proba_texts(proba, keys), strict=True):
                    row["proba"] = text
            self.log.append(rows)
        return answers  # the log is durable before any caller gets its answer

    @staticmethod
    def _table(model: LoadedModel, item: Pending) -> pa.Table:
        if item.table is not None:
            return item.table
        return prepare_input(model, item.records, to_table(item.records))[0]  # type: ignore[return-value]

    @staticmethod
    def _log_rows(
        config: dict[str, Any],
        version: int,
        batch: list[Pending],
        ids: list[str],
        predictions: list[Any],
        latency: float,
        ts: int,
    ) -> list[dict[str, Any]]:
        redact = set(config["redact"])
        rows, offset = [], 0
        for item in batch:
            for rec in item.records:
                rows.append(
                    {
                        "prediction_id": ids[offset],
                        "endpoint": config["name"],
                        "endpoint_id": config["id"],
                        "version": version,
                        "route": item.route,
                        "inputs": {k: ("***" if k in redact else v) for k, v in rec.items()},
                        "output": predictions[offset],
                        "latency_ms": latency,
                        "status": "ok",
                        "request_key": item.request_key,
                        "batch_id": item.batch_id,
                        "ts": ts,
                    }
                )
                offset += 1
        return rows

    def log_failure(
        self,
        config: dict[str, Any],
        version: int,
        route: str,
        records: list[dict[str, Any]],
        request_key: str | None,
        batch_id: str | None,
        error: PasserelleError,
    ) -> None:
        """Log the rows of a request that got no prediction (its input refused by the
        signature, or by the model), so that error rates and bad inputs can be monitored."""
        redact = set(config["redact"])
        ts = now_ms()
        ids = new_prediction_ids(len(records))
        self.log.append(
            [
                {
                    "prediction_id": pid,
                    "endpoint": config["name"],
                    "endpoint_id": config["id"],
                    "version": version,
                    "route": route,
                    "inputs": {k: ("***" if k in redact else v) for k, v in rec.items()},
                    "output": None,
                    "latency_ms": None,
                    "status": "error",
                    "error": error.message[:500],
                    "request_key": request_key,
                    "batch_id": batch_id,
                    "ts": ts,
                }
                for pid, rec in zip(ids, records, strict=True)
            ]
        )

    async def shadow(
        self,
        config: dict[str, Any],
        records: list[dict],
        table: pa.Table | None,
        request_key: str | None,
        batch_id: str | None = None,
    ) -> None:
        """Run every shadow on a copy of the request; failures are logged, never raised."""
        from starlette.concurrency import run_in_threadpool

        for version in config["shadow_versions"]:
            try:
                model = self.cached_model(config, version) or await run_in_threadpool(
                    self.model, config, version
                )
                shadow_table, matrix = prepare_input(model, records, table)
                await self.batcher(config, version).submit(
                    config, records, shadow_table, matrix, request_key, "shadow", batch_id
                )
            except Exception:
                log.exception("shadow version %s of %s failed", version, config["name"])

    def close(self) -> None:
        """Stop the micro-batchers' tasks (at shutdown, before the event loop closes)."""
        for batcher in self._batchers.values():
            batcher.close()
        self._batchers.clear()

    def route(self, config: dict[str, Any], request_key: str | None) -> tuple[int, str]:
        return routing.choose(config, request_key, self.rng)
