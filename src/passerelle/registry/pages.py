"""Registry pages: the models list, a model's versions and aliases, a version with its lineage,
and alias moves that ask for confirmation.

Pages call the registry service directly, like the REST API does. Moving or removing an alias
takes two posts: the first shows what would change, the second applies it only when it carries
a token signed over that exact change (model, alias, version before and after), so a stale or
altered confirmation is never applied.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import InvalidInput, NotFound
from passerelle.core.ids import now_ms
from passerelle.core.web import PrincipalDep, SessionDep, presented_key
from passerelle.registry import service, views
from passerelle.registry.schemas import ALIAS_NAME
from passerelle.serving import views as serving_views
from passerelle.web.login import _same_origin
from passerelle.web.render import PageRoute, error_page, query_string, render

TEMPLATES = Path(__file__).parent / "templates"
MAX_VERSION = 2**31 - 1  # the column is a 32-bit integer: a larger number is simply not there

router = APIRouter(route_class=PageRoute, include_in_schema=False)

ProjectQuery = Annotated[str | None, Query(max_length=250)]
VersionPath = Annotated[int, PathParam(ge=1, le=MAX_VERSION)]
_ALIAS = re.compile(ALIAS_NAME)


# -- models ------------------------------------------------------------------------------------
@router.get("/models")
def models_page(
    request: Request, session: SessionDep, principal: PrincipalDep, project: ProjectQuery = None
) -> Response:
    models = service.list_models(session, principal, project)
    for m in models:
        m["url"] = views.model_url(m["name"], m["project"])
        if m["latest_version"] is not None:
            m["latest_url"] = views.model_url(
                m["name"], m["project"], "versions", m["latest_version"]
            )
    context = {"models": models, "project": project}
    return render(request, "registry/models.html", context, principal=principal)


def _version_rows(
    session: Session, principal: Principal, name: str, project: str
) -> list[dict[str, Any]]:
    versions = [
        service.version_public(session, v, name)
        for v in service.list_versions(session, principal, name, project)
    ]
    runs = views.source_runs(session, principal, (v["source_run_id"] for v in versions))
    for v in versions:
        v["url"] = views.model_url(name, project, "versions", v["version"])
        v["run"] = runs.get(v["source_run_id"] or "")
    return versions


def _notice(history: list[dict[str, Any]], alias: str | None) -> str | None:
    """What the last change of ``alias`` did, read from the history rather than the URL."""
    if not alias:
        return None
    event = next((e for e in history if e["alias"] == alias), None)
    if event is None:
        return None
    if event["to_version"] is None:
        return f"Alias {alias} removed (it pointed at version {event['from_version']})."
    return f"Alias {alias} now points at version {event['to_version']}."


@router.get("/models/{name}")
def model_page(
    request: Request,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    project: ProjectQuery = None,
    metric: Annotated[str | None, Query(max_length=250)] = None,
    changed: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    model = service.get_model(session, principal, name, project)
    proj = views.project_name(session, model)
    versions = _version_rows(session, principal, model.name, proj)
    keys = views.metric_keys(versions)
    chosen = metric if metric in keys else (keys[0] if keys else None)
    for v in versions:
        v["key_metrics"] = views.key_metrics(v["metrics"], chosen)
    aliases = views.alias_rows(session, model.id)
    for a in aliases:
        a["version_url"] = views.model_url(model.name, proj, "versions", a["version"])
        a["remove_action"] = views.model_path(model.name, "aliases", a["alias"], "remove")
    history = service.alias_history(session, principal, model.name, proj)
    context = {
        "model": service.model_public(session, model, proj),
        "model_url": views.model_url(model.name, proj),
        "versions": versions,
        "aliases": aliases,
        "history": history,
        "metric_keys": keys,
        "metric": chosen,
        "metric_links": {k: views.model_url(model.name, proj, metric=k) for k in keys},
        "chart": views.metric_chart(versions, chosen) if chosen else None,
        "can_write": principal.can(Action.WRITE, model.project_id),
        "notice": _notice(history, changed),
    }
    return render(request, "registry/model.html", context, principal=principal)


# -- versions ----------------------------------------------------------------------------------
@router.get("/models/{name}/versions/{version}")
def version_page(
    request: Request,
    name: str,
    version: VersionPath,
    session: SessionDep,
    principal: PrincipalDep,
    project: ProjectQuery = None,
) -> Response:
    model = service.get_model(session, principal, name, project)
    proj = views.project_name(session, model)
    found = service.get_version(session, principal, model.name, version, proj)
    v = service.version_public(session, found, model.name)
    run = views.source_runs(session, principal, [v["source_run_id"]]).get(v["source_run_id"] or "")
    lineage = v["lineage"] or {}
    files_url = views.model_path(model.name, "versions", version, "files")
    context = {
        "model": service.model_public(session, model, proj),
        "model_url": views.model_url(model.name, proj),
        "v": v,
        "run": run,
        "run_url": views.run_url(v["source_run_id"]) if v["source_run_id"] else None,
        "files": [
            {
                "path": path,
                "sha256": digest,
                "url": "/api/v1" + files_url + query_string(path=path, project=proj),
            }
            for path, digest in sorted(v["files"].items())
        ],
        "graph": views.lineage_graph(
            model.name,
            v,
            run,
            v["aliases"],
            serving_views.deployments_of(session, principal, model.project_id, model.name, version),
        ),
        "code": lineage.get("code") or {},
        "environment": lineage.get("environment") or {},
        "datasets": lineage.get("data") or [],
        "all_aliases": views.alias_rows(session, model.id),
        "set_action": views.model_path(model.name, "versions", version, "aliases"),
        "remove_actions": {
            a: views.model_path(model.name, "aliases", a, "remove") for a in v["aliases"]
        },
        "can_write": principal.can(Action.WRITE, model.project_id),
    }
    return render(request, "registry/version.html", context, principal=principal)


# -- alias changes -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AliasChange:
    """One move of an alias, as the confirmation page shows it and its token signs it."""

    action: str  # "set" or "remove"
    project: str
    model: str
    alias: str
    before: int | None
    after: int | None

    def fields(self) -> tuple[Any, ...]:
        return (self.action, self.project, self.model, self.alias, self.before, self.after)


def _signing_key(request: Request) -> bytes:
    """The caller's own key when one was presented, else the app's random secret.

    Keyed by the caller's key, a token is worthless to anyone else and still valid on every
    replica behind a load balancer; without a key (auth off, loopback only) the process's
    random secret does, since there is one process.
    """
    presented = presented_key(request)
    if presented:
        return hashlib.sha256(b"passerelle alias confirmation\x00" + presented.encode()).digest()
    return request.app.state.confirm_secret


def _parse_before(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 10:
        raise InvalidInput("the confirmation form was altered: start again", field="current")
    return int(value)


def _summary(
    session: Session, principal: Principal, change: AliasChange, number: int | None
) -> dict[str, Any] | None:
    if number is None:
        return None
    found = service.get_version(session, principal, change.model, number, change.project)
    v = service.version_public(session, found, change.model)
    v["url"] = views.model_url(change.model, change.project, "versions", number)
    v["run"] = views.source_runs(session, principal, [v["source_run_id"]]).get(
        v["source_run_id"] or ""
    )
    v["key_metrics"] = views.key_metrics(v["metrics"], None)
    return v


def _confirm_page(
    request: Request,
    session: Session,
    principal: Principal,
    change: AliasChange,
    reason: str,
    action_url: str,
    *,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "change": change,
        "reason": reason,
        "action_url": action_url,
        "token": views.sign_change(_signing_key(request), change.fields(), now_ms()),
        "before": _summary(session, principal, change, change.before),
        "after": _summary(session, principal, change, change.after),
        "model_url": views.model_url(change.model, change.project),
        "cancel_url": views.model_url(
            change.model, change.project, "versions", change.after or change.before or 1
        ),
        "notice": notice,
        "unchanged": change.before == change.after,
    }
    return render(
        request, "registry/confirm.html", context, status_code=status_code, principal=principal
    )


def _confirm_or_apply(
    request: Request,
    session: Session,
    principal: Principal,
    change: AliasChange,
    reason: str,
    posted_before: str,
    token: str,
    action_url: str,
) -> Response:
    """Show the confirmation, or apply the change its token was signed for."""
    if not token or change.before == change.after:
        return _confirm_page(request, session, principal, change, reason, action_url)
    shown = AliasChange(
        change.action,
        change.project,
        change.model,
        change.alias,
        _parse_before(posted_before),
        change.after,
    )
    check = views.check_change(_signing_key(request), shown.fields(), token.strip(), now_ms())
    if check is views.TokenCheck.INVALID:
        return error_page(
            request,
            400,
            "this confirmation is not valid (altered, or issued for another key): nothing was "
            "changed; start again from the model's pages",
        )
    if check is views.TokenCheck.EXPIRED:
        notice = "That confirmation expired and nothing was changed: confirm again to apply it."
        return _confirm_page(request, session, principal, change, reason, action_url, notice=notice)
    if shown.before != change.before:
        now = "is not set" if change.before is None else f"points at version {change.before}"
        notice = f"Alias {change.alias} changed meanwhile: it now {now}. Nothing was changed."
        return _confirm_page(
            request, session, principal, change, reason, action_url, notice=notice, status_code=409
        )
    if change.action == "set":
        assert change.after is not None
        service.set_alias(
            session, principal, change.model, change.alias, change.after, change.project, reason
        )
    else:
        service.delete_alias(session, principal, change.model, change.alias, change.project, reason)
    target = views.model_url(change.model, change.project, changed=change.alias)
    return RedirectResponse(target + "#aliases", status_code=303)


FORBIDDEN_ORIGIN = "alias changes are only accepted from forms of this site"


@router.post("/models/{name}/versions/{version}/aliases")
def set_alias(
    request: Request,
    name: str,
    version: VersionPath,
    session: SessionDep,
    principal: PrincipalDep,
    alias: Annotated[str, Form(max_length=200)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    project: Annotated[str, Form(max_length=250)] = "",
    current: Annotated[str, Form(max_length=20)] = "",
    token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not _same_origin(request):
        return error_page(request, 403, FORBIDDEN_ORIGIN)
    model = service.get_model(session, principal, name, project or None, Action.WRITE)
    proj = views.project_name(session, model)
    service.get_version(session, principal, model.name, version, proj, Action.WRITE)
    alias = alias.strip()
    if not _ALIAS.match(alias) or alias == "latest":
        return error_page(
            request,
            400,
            f"'{alias}' cannot be an alias: use up to 100 letters, digits, '_' or '-', starting "
            "with a letter or '_' ('latest' is reserved)",
        )
    change = AliasChange(
        "set", proj, model.name, alias, views.alias_target(session, model.id, alias), version
    )
    action_url = views.model_path(model.name, "versions", version, "aliases")
    return _confirm_or_apply(
        request, session, principal, change, reason.strip(), current, token, action_url
    )


@router.post("/models/{name}/aliases/{alias}/remove")
def remove_alias(
    request: Request,
    name: str,
    alias: Annotated[str, PathParam(max_length=200)],
    session: SessionDep,
    principal: PrincipalDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
    project: Annotated[str, Form(max_length=250)] = "",
    current: Annotated[str, Form(max_length=20)] = "",
    token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not _same_origin(request):
        return error_page(request, 403, FORBIDDEN_ORIGIN)
    model = service.get_model(session, principal, name, project or None, Action.WRITE)
    proj = views.project_name(session, model)
    before = views.alias_target(session, model.id, alias)
    if before is None:
        raise NotFound(f"model '{model.name}' has no alias '{alias}'", field="alias")
    change = AliasChange("remove", proj, model.name, alias, before, None)
    action_url = views.model_path(model.name, "aliases", alias, "remove")
    return _confirm_or_apply(
        request, session, principal, change, reason.strip(), current, token, action_url
    )
