"""Per-process serving state: endpoint configs refreshed by revision, models kept warm.

A change made through any process reaches this one within ``REFRESH_SECONDS``: each request
re-reads its endpoint's row when the cached copy is older than that (one indexed query), and
models are loaded once per process and kept.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from passerelle.core.auth import ANONYMOUS_ADMIN, Principal
from passerelle.core.errors import NotFound, PasserelleError
from passerelle.core.ids import now_ms
from passerelle.core.models import Project
from passerelle.core.store import ObjectStore
from passerelle.registry import service as registry
from passerelle.registry.loaded import LoadedModel, load_folder
from passerelle.serving import routing
from passerelle.serving.inference_log import InferenceLog
from passerelle.serving.models import Endpoint
from passerelle.serving.service import endpoint_public

log = logging.getLogger("passerelle.serving")
REFRESH_SECONDS = 0.5


class EndpointUnavailable(PasserelleError):
    status = 503
    code = "unavailable"


def new_prediction_id() -> str:
    """32 hex characters: 12 of milliseconds (sortable, datable), 20 random."""
    return f"{now_ms():012x}{secrets.token_hex(10)}"


def prediction_time(prediction_id: str) -> int | None:
    try:
        return int(prediction_id[:12], 16)
    except ValueError:
        return None


class ServingRuntime:
    def __init__(
        self, sessions: sessionmaker, store: ObjectStore, home: Path, inference_log: InferenceLog
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
    def predict(
        self,
        config: dict[str, Any],
        version: int,
        route: str,
        records: list[dict],
        table: Any,
        request_key: str | None,
    ) -> dict[str, Any]:
        """Predict, spool one log record per row, and return the answer (sync: a worker thread)."""
        model = self.model(config, version)
        started = time.perf_counter()
        outputs = model.predict(table)
        latency = (time.perf_counter() - started) * 1000
        for observe in self.on_batch:
            observe(config["name"], version, len(records))
        predictions = outputs.tolist() if isinstance(outputs, np.ndarray) else list(outputs)
        ids = [new_prediction_id() for _ in predictions]
        ts = now_ms()
        redact = set(config["redact"])
        self.log.append(
            [
                {
                    "prediction_id": pid,
                    "endpoint": config["name"],
                    "endpoint_id": config["id"],
                    "version": version,
                    "route": route,
                    "inputs": {k: ("***" if k in redact else v) for k, v in rec.items()},
                    "output": out,
                    "latency_ms": latency,
                    "status": "ok",
                    "request_key": request_key,
                    "ts": ts,
                }
                for pid, rec, out in zip(ids, records, predictions, strict=True)
            ]
        )
        return {"predictions": predictions, "prediction_ids": ids, "model_version": version}

    def shadow(
        self, config: dict[str, Any], records: list[dict], table: Any, request_key: str | None
    ) -> None:
        """Run every shadow on a copy of the request; failures are logged, never raised."""
        for version in config["shadow_versions"]:
            try:
                self.predict(config, version, "shadow", records, table, request_key)
            except Exception:
                log.exception("shadow version %s of %s failed", version, config["name"])

    def route(self, config: dict[str, Any], request_key: str | None) -> tuple[int, str]:
        return routing.choose(config, request_key, self.rng)
