"""The monitoring scheduler: a background thread of the server that evaluates canary policies
and alert rules every ``monitor_interval`` seconds, once across replicas.

Every replica runs the thread; on each tick it tries to take (or renew) the lease row in the
database, and only the holder evaluates. A holder that stops releases the lease; one that dies
loses it after ``monitor_lease_seconds``, and another replica carries on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from passerelle.core import lease
from passerelle.core.auth import Principal, Role
from passerelle.core.db import session_scope
from passerelle.core.models import Project
from passerelle.monitoring import alerts, data, policy
from passerelle.serving import service as serving
from passerelle.serving.inference_log import InferenceLog

log = logging.getLogger("passerelle.monitoring")
LEASE_NAME = "monitoring-scheduler"
SCHEDULER = Principal(role=Role.ADMIN, project_id=None, key_name="monitoring scheduler")


class MonitorScheduler:
    """Evaluations of one server process; ``tick`` is one pass (the thread calls it)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        inference_log: InferenceLog,
        *,
        interval: float = 30.0,
        lease_seconds: float = 90.0,
        webhook_timeout: float = 5.0,
        on_change: Callable[[str], None] | None = None,
        transport: Any = None,
    ) -> None:
        self.sessions = sessions
        self.log = inference_log
        self.interval = interval
        self.lease_ms = int(lease_seconds * 1000)
        self.webhook_timeout = webhook_timeout
        self.on_change = on_change
        self.transport = transport  # httpx transport for webhooks (tests, proxies)
        self.holder = lease.new_holder()
        self.thread: threading.Thread | None = None

    def tick(self, now: int | None = None) -> bool:
        """Evaluate everything if this process holds the lease; False when another does."""
        now = now if now is not None else data.now_ms()
        with session_scope(self.sessions) as session:
            if not lease.acquire(session, LEASE_NAME, self.holder, self.lease_ms, now):
                return False
        self._canaries()
        alerts.evaluate_rules(self.sessions, SCHEDULER, self.log, now)
        alerts.deliver(
            self.sessions, SCHEDULER, now, timeout=self.webhook_timeout, transport=self.transport
        )
        return True

    def _canaries(self) -> None:
        """Each policy in its own transaction: one failing endpoint does not stop the others."""
        with session_scope(self.sessions) as session:
            ids = set(policy.endpoints_with_policies(session))
            names = [
                (e.name, session.get(Project, e.project_id).name)  # type: ignore[union-attr]
                for e in serving.list_endpoints(session, SCHEDULER)
                if e.id in ids and e.canary_version is not None
            ]
        for name, project in names:
            try:
                with session_scope(self.sessions) as session:
                    done = policy.evaluate(
                        session,
                        SCHEDULER,
                        self.log,
                        name,
                        project=project,
                        webhook_timeout=self.webhook_timeout,
                        transport=self.transport,
                    )
                if done["action"] in ("rollback", "promote") and self.on_change is not None:
                    self.on_change(name)
            except Exception:
                log.exception("canary policy of %s could not be evaluated", name)

    def start(self, stop: threading.Event) -> threading.Thread:
        def run() -> None:
            while not stop.wait(self.interval):
                try:
                    self.tick()
                except Exception:  # logged; the loop must not die
                    log.exception("monitoring evaluation failed")
            try:
                with session_scope(self.sessions) as session:
                    lease.release(session, LEASE_NAME, self.holder)
            except Exception:
                log.exception("could not release the monitoring lease")

        self.thread = threading.Thread(target=run, name="passerelle-monitoring", daemon=True)
        self.thread.start()
        return self.thread
