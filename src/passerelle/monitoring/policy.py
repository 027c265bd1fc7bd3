"""Canary policies: analysis on demand, and the decision a policy takes applied through the
serving domain's one change path, like a person's, with the evidence in the history."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal, Role
from passerelle.core.errors import Conflict, NotFound
from passerelle.monitoring import canary, data, notify
from passerelle.monitoring.models import CanaryPolicy
from passerelle.monitoring.schemas import CanaryPolicyUpdate
from passerelle.monitoring.service import load
from passerelle.serving import service as serving
from passerelle.serving.inference_log import InferenceLog
from passerelle.serving.models import Endpoint

log = logging.getLogger("passerelle.monitoring")
ACTOR = "canary policy"


def policy_public(endpoint: Endpoint, policy: CanaryPolicy) -> dict[str, Any]:
    return {
        "endpoint": endpoint.name,
        "when_worse": policy.when_worse,
        "when_no_worse": policy.when_no_worse,
        "min_samples": policy.min_samples,
        "alpha": policy.alpha,
        "max_latency_increase": policy.max_latency_increase,
        "webhook": policy.webhook,
        "last_version": policy.last_version,
        "last_verdict": policy.last_verdict,
        "last_evaluated_at": policy.last_evaluated_at,
    }


def get_policy(
    session: Session, principal: Principal, name: str, project: str | None = None
) -> dict[str, Any]:
    endpoint = serving.get_endpoint(session, principal, name, Action.READ, project)
    policy = session.get(CanaryPolicy, endpoint.id)
    if policy is None:
        raise NotFound(f"endpoint '{name}' has no canary policy", field="endpoint")
    return policy_public(endpoint, policy)


def set_policy(
    session: Session,
    principal: Principal,
    name: str,
    body: CanaryPolicyUpdate,
    project: str | None = None,
) -> dict[str, Any]:
    endpoint = serving.get_endpoint(session, principal, name, Action.WRITE, project)
    now = data.now_ms()
    policy = session.get(CanaryPolicy, endpoint.id)
    if policy is None:
        policy = CanaryPolicy(endpoint_id=endpoint.id, created_at=now)
        session.add(policy)
    for field, value in body.model_dump().items():
        setattr(policy, field, value)
    policy.updated_at = now
    session.flush()
    return policy_public(endpoint, policy)


def delete_policy(
    session: Session, principal: Principal, name: str, project: str | None = None
) -> None:
    endpoint = serving.get_endpoint(session, principal, name, Action.WRITE, project)
    policy = session.get(CanaryPolicy, endpoint.id)
    if policy is None:
        raise NotFound(f"endpoint '{name}' has no canary policy", field="endpoint")
    session.delete(policy)


def canary_since(
    session: Session, principal: Principal, endpoint: Endpoint, project: str | None
) -> int:
    """When the current canary version was put in place (the newest such change)."""
    for event in serving.history(session, principal, endpoint.name, project):
        after = (event.get("detail") or {}).get("after") or {}
        if event["action"] == "canary" and after.get("canary_version") == endpoint.canary_version:
            return int(event["at"])
    return endpoint.created_at


def analyse(
    session: Session,
    principal: Principal,
    log_: InferenceLog,
    name: str,
    *,
    project: str | None = None,
    thresholds: canary.Thresholds | None = None,
) -> dict[str, Any]:
    """Compare the canary with the primary since the canary was deployed; no action."""
    endpoint = serving.get_endpoint(session, principal, name, Action.READ, project)
    if endpoint.canary_version is None or endpoint.primary_version is None:
        raise Conflict(f"endpoint '{name}' has no canary to analyse", field="endpoint")
    policy = session.get(CanaryPolicy, endpoint.id)
    if thresholds is None:
        thresholds = (
            canary.Thresholds(policy.min_samples, policy.alpha, policy.max_latency_increase)
            if policy
            else canary.Thresholds()
        )
    since = canary_since(session, principal, endpoint, project)
    now = data.now_ms()
    loaded = load(session, log_, endpoint.id, endpoint.name, since, now + 1)
    comparisons = canary.compare(
        loaded, endpoint.primary_version, endpoint.canary_version, thresholds
    )
    result = canary.verdict(comparisons)
    return {
        "endpoint": endpoint.name,
        "primary_version": endpoint.primary_version,
        "canary_version": endpoint.canary_version,
        "since": since,
        "until": now,
        "verdict": result,
        "summary": canary.summary(comparisons, result),
        "min_samples": thresholds.min_samples,
        "alpha": thresholds.alpha,
        "max_latency_increase": thresholds.max_latency_increase,
        "comparisons": canary.as_dicts(comparisons),
    }


def policy_principal(endpoint: Endpoint) -> Principal:
    """Who an automatic decision is made by: the policy, within the endpoint's project."""
    return Principal(role=Role.ADMIN, project_id=endpoint.project_id, key_name=ACTOR)


def evaluate(
    session: Session,
    principal: Principal,
    log_: InferenceLog,
    name: str,
    *,
    project: str | None = None,
    webhook_timeout: float = 5.0,
    transport: Any = None,
) -> dict[str, Any]:
    """Analyse, then do what the policy says: roll back, promote, alert, or nothing.

    A verdict is acted upon once per canary version: the same verdict on the next evaluation
    does nothing again (an alert is not repeated; a decision cannot be, the canary is gone).
    """
    endpoint = serving.get_endpoint(session, principal, name, Action.WRITE, project)
    policy = session.get(CanaryPolicy, endpoint.id)
    if policy is None:
        raise NotFound(f"endpoint '{name}' has no canary policy", field="endpoint")
    analysis = analyse(session, principal, log_, name, project=project)
    result = analysis["verdict"]
    action = {
        "worse": policy.when_worse,
        "no_worse": policy.when_no_worse,
    }.get(result, "wait")
    repeated = policy.last_version == endpoint.canary_version and policy.last_verdict == result
    analysis["action"] = "none"
    remember = result != "insufficient"
    if action in ("rollback", "promote"):
        serving.apply_change(
            session,
            policy_principal(endpoint),
            endpoint.name,
            action,
            project=project,
            reason=analysis["summary"],
            evidence={k: v for k, v in analysis.items() if k != "action"},
        )
        analysis["action"] = action
    elif action == "alert" and not repeated and policy.webhook:
        error = notify.post_json(
            policy.webhook,
            {"kind": "canary", "status": result, **analysis},
            timeout=webhook_timeout,
            transport=transport,
        )
        analysis["action"] = "alert" if error is None else f"alert failed: {error}"
        remember = error is None  # an undelivered alert is tried again next time
    if remember:
        policy.last_version, policy.last_verdict = analysis["canary_version"], result
    policy.last_evaluated_at = data.now_ms()
    session.flush()
    return analysis


def endpoints_with_policies(session: Session) -> list[int]:
    return list(session.scalars(select(CanaryPolicy.endpoint_id)))
