"""Warm-up and readiness: a process is ready once every deployed version is loaded.

When the server starts, a background thread loads every version an endpoint serves (primary,
canary, shadows), then keeps looking once a second, so a version deployed through any process is
loaded here before its first request. ``/readyz`` answers 503, naming the versions still loading
(or failing to load), until they all are.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from passerelle.core.models import Project
from passerelle.serving.models import Endpoint
from passerelle.serving.service import endpoint_public

log = logging.getLogger("passerelle.serving")
POLL_SECONDS = 1.0
RETRY_SECONDS = (1.0, 60.0)  # first and longest wait before loading a failed version again


def deployed_versions(config: dict[str, Any]) -> list[int]:
    versions = [config["primary_version"], config["canary_version"], *config["shadow_versions"]]
    return list(dict.fromkeys(v for v in versions if v is not None))


class Warmer:
    """Loads what is deployed into the serving runtime, and says what is not loaded yet."""

    def __init__(self, app: FastAPI) -> None:
        self.runtime = app.state.serving
        self.sessions = app.state.sessions
        self.stop: threading.Event = app.state.stop_background
        self.failures: dict[tuple[int, str, int], tuple[str, float, float]] = {}
        # Set by the server command (not in tests, where apps come and go): once the models are
        # loaded, move the heap out of the garbage collector's sight (see _freeze_heap).
        self.freeze_heap = False
        self._frozen = False
        self._thread: threading.Thread | None = None
        self._pass: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- what is deployed ----------------------------------------------------------------------
    def configs(self) -> list[dict[str, Any]]:
        """Every endpoint with a version deployed, in the shape the runtime uses."""
        with self.sessions() as session:
            rows = session.execute(
                select(Endpoint, Project.name).join(Project, Project.id == Endpoint.project_id)
            ).all()
            return [
                {
                    **endpoint_public(endpoint),
                    "id": endpoint.id,
                    "project_id": endpoint.project_id,
                    "project": project,
                }
                for endpoint, project in rows
                if endpoint.primary_version is not None
            ]

    def missing(
        self, configs: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``(loading, failed)``: deployed versions not loaded in this process."""
        loading, failed = [], []
        for config in configs:
            if self.runtime.loaded(config):
                continue
            for version in deployed_versions(config):
                if self.runtime.loaded({**config, **_only(version)}):
                    continue
                item = {"endpoint": config["name"], "model": config["model"], "version": version}
                failure = self.failures.get((config["project_id"], config["model"], version))
                if failure is not None:
                    failed.append({**item, "error": failure[0]})
                else:
                    loading.append(item)
        return loading, failed

    # -- loading -------------------------------------------------------------------------------
    def warm_once(self) -> int:
        """Load every deployed version not loaded yet (failed ones after a growing wait)."""
        loaded = 0
        for config in self.configs():
            if self.runtime.loaded(config):
                continue
            for version in deployed_versions(config):
                if self.stop.is_set():
                    return loaded
                key = (config["project_id"], config["model"], version)
                if self.runtime.loaded({**config, **_only(version)}):
                    continue
                failure = self.failures.get(key)
                if failure is not None and time.monotonic() < failure[1]:
                    continue
                try:
                    self.runtime.model(config, version)
                except Exception as exc:
                    wait = min(RETRY_SECONDS[1], (failure[2] * 2) if failure else RETRY_SECONDS[0])
                    self.failures[key] = (
                        f"{type(exc).__name__}: {exc}"[:500],
                        time.monotonic() + wait,
                        wait,
                    )
                    log.warning(
                        "could not load %s version %s for endpoint %s: %s",
                        config["model"],
                        version,
                        config["name"],
                        exc,
                    )
                else:
                    self.failures.pop(key, None)
                    loaded += 1
        return loaded

    def _freeze_heap(self) -> None:
        """A full collection over the start-up heap and the models (hundreds of thousands of
        objects that live as long as the process) stops every request for 0.2-0.5 s, every few
        thousand requests. Frozen, they are no longer scanned. No collection first: it would be
        one such pause, just as the process becomes ready (the little start-up garbage frozen
        with the rest costs less)."""
        gc.freeze()
        self._frozen = True

    def _loop(self) -> None:
        failing = False
        while not self.stop.is_set():
            try:
                if (self.warm_once() or not self._frozen) and self.freeze_heap:
                    self._freeze_heap()
            except Exception:  # the database may be briefly away: try again next time
                if not failing:  # said once per outage, not once a second
                    log.exception("model warm-up pass failed; retrying every %s s", POLL_SECONDS)
                failing = True
            else:
                failing = False
            if self.stop.wait(POLL_SECONDS):
                return

    def start(self) -> None:
        """Start the background loop (once); it ends with the app's background work."""
        with self._lock:
            if self._thread is not None or self.stop.is_set():
                return
            self._thread = threading.Thread(
                target=self._loop, name="passerelle-model-warmup", daemon=True
            )
            self._thread.start()

    def kick(self) -> None:
        """One pass in the background when no loop runs (an app used without its lifespan)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            if self._pass is not None and self._pass.is_alive():
                return
            self._pass = threading.Thread(
                target=self._one_pass, name="passerelle-model-warmup-once", daemon=True
            )
            self._pass.start()

    def _one_pass(self) -> None:
        try:
            self.warm_once()
        except Exception:
            log.exception("model warm-up pass failed")

    # -- readiness -----------------------------------------------------------------------------
    def check(self) -> tuple[str, str, dict[str, Any]] | None:
        """``("models", "ok" or why not, details)`` for ``/readyz``; None (no check to report)
        while no endpoint serves anything."""
        configs = self.configs()
        if not configs:
            return None
        loading, failed = self.missing(configs)
        if not loading and not failed:
            return "models", "ok", {}
        self.kick()
        parts = []
        if loading:
            parts.append(f"{len(loading)} version(s) loading")
        if failed:
            parts.append(f"{len(failed)} version(s) failed to load")
        details: dict[str, Any] = {"loading": loading}
        if failed:
            details["failed"] = failed
        return "models", ", ".join(parts), details


def _only(version: int) -> dict[str, Any]:
    """Config overrides that make ``runtime.loaded`` look at one version only."""
    return {"primary_version": version, "canary_version": None, "shadow_versions": []}


def install_readiness(app: FastAPI) -> Warmer:
    """Register the models check of ``/readyz``; the warm-up starts with the app's lifespan."""
    warmer = Warmer(app)
    app.state.warmer = warmer
    checks = getattr(app.state, "readiness_checks", None)
    if checks is None:
        checks = app.state.readiness_checks = []
    checks.append(warmer.check)
    return warmer


def start_warming(app: FastAPI) -> None:
    """Called when the app starts serving: load every deployed version in the background."""
    warmer = getattr(app.state, "warmer", None)
    if warmer is not None:
        warmer.start()
