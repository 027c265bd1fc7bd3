"""Alert rules: a figure of an endpoint against a threshold, fired once per incident.

An evaluation that finds the rule broken opens an incident unless one is open; while it stays
broken nothing more is sent; once the figure is back on the right side the incident is
resolved, and the next break opens a new one. An evaluation with fewer samples than the rule's
minimum changes nothing (a quiet night neither opens nor closes an incident).

Webhooks are sent after the evaluation's transaction has committed, never inside it, and an
undelivered notification is tried again on later evaluations (for a day).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import InvalidInput, NotFound
from passerelle.monitoring import data, figures, notify
from passerelle.monitoring.models import AlertIncident, AlertRule
from passerelle.monitoring.schemas import AlertRuleCreate
from passerelle.registry import service as registry
from passerelle.serving import service as serving
from passerelle.serving.inference_log import InferenceLog
from passerelle.serving.models import Endpoint

log = logging.getLogger("passerelle.monitoring")
RETRY_MS = 86_400_000  # undelivered notifications are retried for a day
INCIDENTS_SHOWN = 100


def _endpoints_by_id(session: Session, principal: Principal) -> dict[int, Endpoint]:
    return {e.id: e for e in serving.list_endpoints(session, principal)}


def rule_public(rule: AlertRule, endpoint_name: str) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "endpoint": endpoint_name,
        "metric": rule.metric,
        "op": rule.op,
        "threshold": rule.threshold,
        "window_ms": rule.window_ms,
        "min_samples": rule.min_samples,
        "version": rule.version,
        "webhook": rule.webhook,
        "enabled": rule.enabled,
        "state": rule.state,
        "last_value": rule.last_value,
        "last_samples": rule.last_samples,
        "last_evaluated_at": rule.last_evaluated_at,
        "created_at": rule.created_at,
    }


def incident_public(incident: AlertIncident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "rule_id": incident.rule_id,
        "opened_at": incident.opened_at,
        "resolved_at": incident.resolved_at,
        "opened_value": incident.opened_value,
        "last_value": incident.last_value,
        "samples": incident.samples,
        "notified_at": incident.notified_at,
        "resolved_notified_at": incident.resolved_notified_at,
        "notify_error": incident.notify_error,
    }


def create_rule(session: Session, principal: Principal, body: AlertRuleCreate) -> dict[str, Any]:
    endpoint = serving.get_endpoint(session, principal, body.endpoint, Action.WRITE, body.project)
    if (body.below is None) == (body.above is None):
        raise InvalidInput("give exactly one of below or above", field="below")
    if body.version is not None:  # a rule on a version that never was would never decide
        registry.get_version(session, principal, endpoint.model_name, body.version)
    metric = figures.canonical(body.metric)
    op, threshold = ("below", body.below) if body.below is not None else ("above", body.above)
    assert threshold is not None
    rule = AlertRule(
        endpoint_id=endpoint.id,
        name=body.name or f"{endpoint.name} {metric} {op} {threshold:g}",
        metric=metric,
        op=op,
        threshold=float(threshold),
        window_ms=data.duration_ms(body.window, "window"),
        min_samples=body.min_samples,
        version=body.version,
        webhook=body.webhook,
        enabled=True,
        state="unknown",
        created_by=principal.key_name,
        created_at=data.now_ms(),
    )
    session.add(rule)
    session.flush()
    return rule_public(rule, endpoint.name)


def _rule(session: Session, principal: Principal, rule_id: int, action: Action) -> AlertRule:
    rule = session.get(AlertRule, rule_id)
    endpoints = _endpoints_by_id(session, principal) if rule is not None else {}
    if rule is None or rule.endpoint_id not in endpoints:
        raise NotFound(f"alert rule {rule_id} not found", field="rule_id")
    principal.require(action, endpoints[rule.endpoint_id].project_id)
    return rule


def list_rules(
    session: Session, principal: Principal, endpoint: str | None = None
) -> list[dict[str, Any]]:
    endpoints = _endpoints_by_id(session, principal)
    query = select(AlertRule).order_by(AlertRule.id)
    if endpoint is not None:
        wanted = serving.get_endpoint(session, principal, endpoint)
        query = query.where(AlertRule.endpoint_id == wanted.id)
    return [
        rule_public(r, endpoints[r.endpoint_id].name)
        for r in session.scalars(query)
        if r.endpoint_id in endpoints
    ]


def get_rule(session: Session, principal: Principal, rule_id: int) -> dict[str, Any]:
    rule = _rule(session, principal, rule_id, Action.READ)
    return rule_public(rule, _endpoints_by_id(session, principal)[rule.endpoint_id].name)


def delete_rule(session: Session, principal: Principal, rule_id: int) -> None:
    session.delete(_rule(session, principal, rule_id, Action.WRITE))


def list_incidents(
    session: Session, principal: Principal, rule_id: int | None = None
) -> list[dict[str, Any]]:
    """Incidents newest first, of one rule or of every rule the caller may read."""
    if rule_id is not None:
        ids = [_rule(session, principal, rule_id, Action.READ).id]
    else:
        endpoints = _endpoints_by_id(session, principal)
        ids = [
            r.id
            for r in session.scalars(select(AlertRule).where(AlertRule.endpoint_id.in_(endpoints)))
        ]
    query = (
        select(AlertIncident)
        .where(AlertIncident.rule_id.in_(ids))
        .order_by(AlertIncident.id.desc())
        .limit(INCIDENTS_SHOWN)
    )
    return [incident_public(i) for i in session.scalars(query)]


# -- evaluation ----------------------------------------------------------------------------------
def _open_incident(session: Session, rule_id: int) -> AlertIncident | None:
    return session.scalar(
        select(AlertIncident)
        .where(AlertIncident.rule_id == rule_id, AlertIncident.resolved_at.is_(None))
        .order_by(AlertIncident.id.desc())
        .limit(1)
    )


def compute_figures(
    session: Session, principal: Principal, log_: InferenceLog, now: int
) -> dict[int, figures.Figure]:
    """Each enabled rule's figure, read only: the slow part (Parquet scans, metrics) holds no
    write lock, so predictions' feedback and deployment changes never wait for it. A rule whose
    figure fails is logged and left out."""
    endpoints = _endpoints_by_id(session, principal)
    contexts: dict[tuple[int, int, int | None], figures.FigureContext] = {}
    found: dict[int, figures.Figure] = {}
    for rule in session.scalars(select(AlertRule).where(AlertRule.enabled.is_(True))):
        endpoint = endpoints.get(rule.endpoint_id)
        if endpoint is None:
            continue
        key = (rule.endpoint_id, rule.window_ms, rule.version)
        ctx = contexts.get(key)
        if ctx is None:
            ctx = contexts[key] = figures.FigureContext(
                session,
                log_,
                endpoint.id,
                endpoint.name,
                now - rule.window_ms,
                now + 1,
                rule.version,
            )
        try:
            found[rule.id] = figures.compute(ctx, rule.metric)
        except Exception:
            log.exception("alert rule %s could not be evaluated", rule.id)
    return found


def apply_figure(session: Session, rule: AlertRule, figure: figures.Figure, now: int) -> str:
    """Move the rule's incident for its new figure; returns the rule's new state."""
    rule.last_value, rule.last_samples, rule.last_evaluated_at = figure.value, figure.samples, now
    if figure.value is None or figure.samples < rule.min_samples:
        return rule.state  # not enough data: no incident opened or closed
    broken = figure.value < rule.threshold if rule.op == "below" else figure.value > rule.threshold
    incident = _open_incident(session, rule.id)
    if broken:
        if incident is None:
            session.add(
                AlertIncident(
                    rule_id=rule.id,
                    opened_at=now,
                    opened_value=figure.value,
                    last_value=figure.value,
                    samples=figure.samples,
                    detail={"threshold": rule.threshold, "op": rule.op},
                )
            )
        else:
            incident.last_value, incident.samples = figure.value, figure.samples
        rule.state = "firing"
    else:
        if incident is not None:
            incident.resolved_at, incident.last_value = now, figure.value
        rule.state = "ok"
    return rule.state


def evaluate_rules(sessions: Any, principal: Principal, log_: InferenceLog, now: int) -> int:
    """Compute every figure (reading), then move incidents in one short transaction."""
    from passerelle.core.db import session_scope

    with sessions() as session:
        computed = compute_figures(session, principal, log_, now)
    with session_scope(sessions) as session:
        for rule_id, figure in computed.items():
            rule = session.get(AlertRule, rule_id)
            if rule is not None and rule.enabled:  # removed or disabled meanwhile: skipped
                apply_figure(session, rule, figure, now)
    return len(computed)


def pending_notifications(
    session: Session, principal: Principal, now: int
) -> list[tuple[int, str, str, dict[str, Any]]]:
    """(incident id, "firing" or "resolved", webhook, payload) not delivered yet."""
    endpoints = _endpoints_by_id(session, principal)
    rows = session.execute(
        select(AlertIncident, AlertRule)
        .join(AlertRule, AlertRule.id == AlertIncident.rule_id)
        .where(AlertRule.webhook.is_not(None), AlertIncident.opened_at >= now - RETRY_MS)
        .where(
            AlertIncident.notified_at.is_(None)
            | (
                AlertIncident.resolved_at.is_not(None)
                & AlertIncident.resolved_notified_at.is_(None)
            )
        )
        .order_by(AlertIncident.id)
    ).all()
    out = []
    for incident, rule in rows:
        endpoint = endpoints.get(rule.endpoint_id)
        name = endpoint.name if endpoint else str(rule.endpoint_id)
        statuses = ["firing"] if incident.notified_at is None else []
        if incident.resolved_at is not None:
            statuses.append("resolved")
        for status in statuses:
            payload = {
                "kind": "alert",
                "status": status,
                "rule": rule_public(rule, name),
                "incident": incident_public(incident),
                "endpoint": name,
                "metric": rule.metric,
                "op": rule.op,
                "threshold": rule.threshold,
                "value": incident.last_value if status == "resolved" else incident.opened_value,
                "samples": incident.samples,
                "window_ms": rule.window_ms,
                "at": incident.resolved_at if status == "resolved" else incident.opened_at,
            }
            out.append((incident.id, status, rule.webhook or "", payload))
    return out


def deliver(
    sessions: Any,
    principal: Principal,
    now: int,
    *,
    timeout: float,
    transport: Any = None,
) -> int:
    """Send what is pending (outside any transaction), then record each outcome."""
    from passerelle.core.db import session_scope

    with session_scope(sessions) as session:
        pending = pending_notifications(session, principal, now)
    sent = 0
    failed: set[int] = set()
    for incident_id, status, url, payload in pending:
        if incident_id in failed:
            continue  # keep the order: a resolution never arrives before its firing
        error = notify.post_json(url, payload, timeout=timeout, transport=transport)
        with session_scope(sessions) as session:
            incident = session.get(AlertIncident, incident_id)
            if incident is None:
                continue
            incident.notify_error = error
            if error is None:
                sent += 1
                if status == "firing":
                    incident.notified_at = data.now_ms()
                else:
                    incident.resolved_notified_at = data.now_ms()
            else:
                failed.add(incident_id)
    return sent
