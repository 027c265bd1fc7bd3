"""Monitoring API: live performance, canary analysis and policies, alert rules and incidents.

Thin handlers: each parses, calls one service function and returns its answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from passerelle.core.ids import INT64_MAX
from passerelle.core.web import PrincipalDep, SessionDep, json_response
from passerelle.monitoring import alerts, figures, policy, service
from passerelle.monitoring.schemas import (
    AlertRuleCreate,
    AlertRulePublic,
    CanaryPolicyPublic,
    CanaryPolicyUpdate,
    IncidentPublic,
)

router = APIRouter(tags=["monitoring"])
ProjectQuery = Annotated[str | None, Query(max_length=200)]
RuleId = Annotated[int, Path(ge=1, le=INT64_MAX)]


@router.get("/api/v1/endpoints/{name}/performance")
def performance(
    name: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    window: Annotated[str, Query(max_length=40)] = "1d",
    since: Annotated[str | None, Query(max_length=40)] = None,
    task: Annotated[str | None, Query(max_length=40)] = None,
    project: ProjectQuery = None,
):
    """Per window and version: measured metrics with intervals, and the estimate."""
    report = service.performance_report(
        session,
        principal,
        request.app.state.serving.log,
        name,
        window=window,
        since=since,
        task=task,
        project=project,
    )
    return json_response(report)


# -- canary --------------------------------------------------------------------------------------
@router.get("/api/v1/endpoints/{name}/canary")
def canary_analysis(
    name: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    project: ProjectQuery = None,
):
    """The canary compared with the primary since it was deployed; nothing is changed."""
    log = request.app.state.serving.log
    return json_response(policy.analyse(session, principal, log, name, project=project))


@router.post("/api/v1/endpoints/{name}/canary/evaluate")
def canary_evaluate(
    name: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    project: ProjectQuery = None,
):
    """Analyse now and apply the endpoint's policy (roll back, promote, alert or wait)."""
    settings = request.app.state.settings
    answer = policy.evaluate(
        session,
        principal,
        request.app.state.serving.log,
        name,
        project=project,
        webhook_timeout=settings.monitor_webhook_timeout,
    )
    session.commit()
    request.app.state.serving.invalidate(name)
    return json_response(answer)


@router.get("/api/v1/endpoints/{name}/canary/policy", response_model=CanaryPolicyPublic)
def get_canary_policy(
    name: str, session: SessionDep, principal: PrincipalDep, project: ProjectQuery = None
):
    return json_response(policy.get_policy(session, principal, name, project))


@router.put("/api/v1/endpoints/{name}/canary/policy", response_model=CanaryPolicyPublic)
def put_canary_policy(
    name: str,
    body: CanaryPolicyUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    project: ProjectQuery = None,
):
    return json_response(policy.set_policy(session, principal, name, body, project))


@router.delete("/api/v1/endpoints/{name}/canary/policy", status_code=204)
def delete_canary_policy(
    name: str, session: SessionDep, principal: PrincipalDep, project: ProjectQuery = None
):
    policy.delete_policy(session, principal, name, project)
    return Response(status_code=204)


# -- alerts --------------------------------------------------------------------------------------
@router.get("/api/v1/alerts", response_model=list[AlertRulePublic])
def list_alert_rules(
    session: SessionDep,
    principal: PrincipalDep,
    endpoint: Annotated[str | None, Query(max_length=200)] = None,
):
    return json_response(alerts.list_rules(session, principal, endpoint))


@router.post("/api/v1/alerts", response_model=AlertRulePublic, status_code=201)
def create_alert_rule(
    body: AlertRuleCreate, request: Request, session: SessionDep, principal: PrincipalDep
):
    figures.check_new_rule(
        request.app.state, session, principal, body.endpoint, body.project, body.metric
    )
    return json_response(alerts.create_rule(session, principal, body), 201)


@router.get("/api/v1/alerts/incidents", response_model=list[IncidentPublic])
def list_all_incidents(session: SessionDep, principal: PrincipalDep):
    """The latest incidents of every rule the caller may read, newest first."""
    return json_response(alerts.list_incidents(session, principal))


@router.get("/api/v1/alerts/{rule_id}", response_model=AlertRulePublic)
def get_alert_rule(rule_id: RuleId, session: SessionDep, principal: PrincipalDep):
    return json_response(alerts.get_rule(session, principal, rule_id))


@router.delete("/api/v1/alerts/{rule_id}", status_code=204)
def delete_alert_rule(rule_id: RuleId, session: SessionDep, principal: PrincipalDep):
    alerts.delete_rule(session, principal, rule_id)
    return Response(status_code=204)


@router.get("/api/v1/alerts/{rule_id}/incidents", response_model=list[IncidentPublic])
def list_rule_incidents(rule_id: RuleId, session: SessionDep, principal: PrincipalDep):
    return json_response(alerts.list_incidents(session, principal, rule_id))
