"""Monitoring API: live performance, canary analysis and policies, alert rules and incidents.

Thin handlers: each parses, calls one service function and returns its answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from passerelle.core.web import PrincipalDep, SessionDep, json_response
from passerelle.monitoring import service

router = APIRouter(tags=["monitoring"])
ProjectQuery = Annotated[str | None, Query(max_length=200)]


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
