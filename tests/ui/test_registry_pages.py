"""The registry pages in-process: the models list, a model's timeline and aliases, a version's
signature, files and lineage graph, alias moves through the confirmation page, access and errors.

Models are logged and registered through the SDK against the test's app, as a user would.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sqlalchemy import update

from passerelle.app import create_app
from passerelle.core import auth
from passerelle.core.auth import ANONYMOUS_ADMIN
from passerelle.core.db import session_scope
from passerelle.core.settings import Settings
from passerelle.registry import service, views
from passerelle.registry.models import RegisteredModel
from passerelle.sdk.client import Client
from passerelle.sdk.registry import log_model, register_model, set_alias
from passerelle.sdk.runs import start_run
from passerelle.sdk.transport import InProcessTransport
from passerelle.web.confirm import CONFIRM_TTL_MS

XSS = "<script>alert('pwned')</script>"

# run name, C, f1, accuracy: one registered version each, in this order
TRAININGS = [("lr-c0.1", 0.1, 0.71, 0.80), ("lr-c1", 1.0, 0.83, 0.87), ("lr-c10", 10.0, 0.79, 0.85)]


@dataclass
class Registry:
    """What ``seed_registry`` made: the run ids of versions 1, 2, 3 and the dataset digest."""

    runs: list[str] = field(default_factory=list)
    dataset_digest: str = ""


def training_frame() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(
        {
            "age": rng.integers(18, 80, 120),
            "income": rng.normal(5, 1, 120),
            "plan": rng.choice(["basic", "pro"], 120),
        }
    )
    return x, (x["income"] > 5).astype(int)


def seed_registry(
    app: FastAPI,
    home: Path,
    *,
    description: str = "Churn classifier",
    api_key: str | None = None,
) -> Registry:
    """Model ``churn``: three versions from three runs that read ``customers``; champion on v2,
    challenger on v3."""
    client = Client(home=home, api_key=api_key, transport=InProcessTransport(app))
    x, y = training_frame()
    seeded = Registry()
    try:
        for name, c, f1, accuracy in TRAININGS:
            with start_run("churn", name, client=client, capture_lineage=False) as run:
                ds = run.log_dataset(x, "customers", context="training")
                seeded.dataset_digest = ds["digest"]
                run.log_params({"C": c})
                run.log_metrics({"f1": f1, "accuracy": accuracy})
                pipe = make_pipeline(
                    make_column_transformer(
                        (OneHotEncoder(), ["plan"]), (StandardScaler(), ["age", "income"])
                    ),
                    LogisticRegression(C=c),
                ).fit(x, y)
                uri = log_model(pipe, "model", input_example=x.head(), run=run)
            register_model(uri, "churn", description=f"trained with C={c}", client=client)
            seeded.runs.append(run.id)
        set_alias("churn", "champion", 2, reason="best f1 on holdout", client=client)
        set_alias("churn", "challenger", 3, client=client)
        with session_scope(app.state.sessions) as session:
            service.update_model(session, ANONYMOUS_ADMIN, "churn", None, description, None)
    finally:
        client.close()
    return seeded


@pytest.fixture
def registry(app: FastAPI, settings: Settings) -> Registry:
    return seed_registry(app, settings.home)


def figures(html: str) -> dict[str, dict[str, Any]]:
    found = re.findall(
        r'<script type="application/json" class="plotly-figure" data-target="([^"]+)">(.*?)'
        r"</script>",
        html,
        flags=re.S,
    )
    return {target: json.loads(body) for target, body in found}


def hidden(html: str, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def alias_of(app: FastAPI, alias: str) -> int | None:
    with session_scope(app.state.sessions) as session:
        model = service.get_model(session, ANONYMOUS_ADMIN, "churn")
        return views.alias_target(session, model.id, alias)


@pytest.fixture(scope="module")
def shared_registry(shared_app: FastAPI) -> Registry:
    """One seeded registry per module and backend, for tests that only read it."""
    return seed_registry(shared_app, shared_app.state.settings.home)


def version_blocks(html: str) -> dict[int, str]:
    """The timeline entries of a model page, by version number."""
    parts = re.split(r'<li class="timeline-item" data-version="(\d+)">', html)
    pairs = zip(parts[1::2], parts[2::2], strict=True)
    return {int(n): body.split("</li>")[0] for n, body in pairs}


def svg(html: str) -> str:
    start = html.index('<svg class="lineage-graph"')
    return html[start : html.index("</svg>", start)]


# -- reading -----------------------------------------------------------------------------------
def test_models_list_shows_latest_version_aliases_and_description(
    shared_client: TestClient, shared_registry: Registry
) -> None:
    response = shared_client.get("/models")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<a href="/models/churn?project=default">churn</a>' in html
    row = html[html.index('<tr data-model="churn">') :].split("</tr>")[0]
    assert '<a href="/models/churn/versions/3?project=default">v3</a>' in row
    assert re.search(r"@champion <span class=\"alias-target\">v2</span>", row)
    assert re.search(r"@challenger <span class=\"alias-target\">v3</span>", row)
    assert "Churn classifier" in row
    assert '<a href="/models" class="active">Models</a>' in html
    assert shared_client.get("/models?project=elsewhere").text.count("<tr data-model=") == 0


def test_models_list_without_models_explains_how_to_register(client: TestClient) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    assert "No registered models" in response.text
    assert "register_model" in response.text


def test_model_page_shows_versions_newest_first_with_runs_metrics_and_aliases(
    shared_client: TestClient, shared_registry: Registry
) -> None:
    html = shared_client.get("/models/churn?project=default").text
    blocks = version_blocks(html)
    assert list(blocks) == [3, 2, 1]
    for number, run_id in zip((1, 2, 3), shared_registry.runs, strict=True):
        assert f'href="/runs/{run_id}"' in blocks[number]
        assert f"trained with C={TRAININGS[number - 1][1]}" in blocks[number]
        assert "anonymous" in blocks[number]
    assert ">lr-c1</a>" in blocks[2]
    assert "@champion" in blocks[2] and "@champion" not in blocks[3]
    assert "@challenger" in blocks[3]
    assert '<span class="metric-value" title="0.83">0.83</span>' in blocks[2]
    assert 'title="0.71">0.71<' in blocks[1]
    aliases = html[html.index('id="aliases-table"') :].split("</table>")[0]
    assert re.findall(r'<tr data-alias="([^"]+)">', aliases) == ["challenger", "champion"]
    assert '<a href="/models/churn/versions/2?project=default">v2</a>' in aliases
    history = html[html.index('id="alias-history"') :]
    assert "best f1 on holdout" in history
    assert history.index("@challenger") < history.index("@champion")  # newest first


def test_model_page_charts_the_chosen_metric_across_versions(
    shared_client: TestClient, shared_registry: Registry
) -> None:
    figure = figures(shared_client.get("/models/churn").text)["versions-chart"]
    assert figure["data"][0]["x"] == [1, 2, 3]
    assert figure["data"][0]["y"] == [0.80, 0.87, 0.85]  # accuracy: first by name
    assert figure["layout"]["xaxis"]["title"]["text"] == "version"
    html = shared_client.get("/models/churn?metric=f1").text
    assert figures(html)["versions-chart"]["data"][0]["y"] == [0.71, 0.83, 0.79]
    assert 'class="chip link chosen" aria-current="true">f1</a>' in html
    blocks = version_blocks(html)
    assert blocks[2].index(">f1<") < blocks[2].index(">accuracy<")  # charted metric first
    unknown = shared_client.get("/models/churn?metric=nope").text
    assert figures(unknown)["versions-chart"]["data"][0]["y"] == [0.80, 0.87, 0.85]


def test_version_page_shows_signature_files_requirements_and_metrics(
    app: FastAPI, client: TestClient, registry: Registry
) -> None:
    response = client.get("/models/churn/versions/2?project=default")
    assert response.status_code == 200
    html = response.text
    signature = html[html.index('id="signature-table"') :].split("</table>")[0]
    rows = re.findall(r"<tr>\s*<td><code>(\w+)</code></td>\s*<td>(\w+)</td>", signature)
    assert rows == [("age", "integer"), ("income", "float"), ("plan", "string")]
    plan = signature[signature.index("<code>plan</code>") :]
    assert '<span class="chip">basic</span><span class="chip">pro</span>' in plan
    with session_scope(app.state.sessions) as session:
        files = service.get_version(session, ANONYMOUS_ADMIN, "churn", 2).files
    table = html[html.index('id="files-table"') :].split("</table>")[0]
    assert len(files) == 4
    for path, digest in files.items():
        assert f"<td><code>{path}</code></td>" in table
        assert f'<code class="digest">{digest}</code>' in table
    files_url = r"/api/v1/models/churn/versions/2/files\?path=model.skops"
    link = re.search(rf'href="({files_url}[^"]*)"', table)
    assert link, "each package file has a download link"
    download = client.get(link.group(1).replace("&amp;", "&"))
    assert download.status_code == 200
    assert len(download.content) > 100
    requirements = html[html.index('id="requirements"') :].split("</section>")[0]
    assert "<code>scikit-learn==" in requirements
    metrics = html[html.index('id="metrics"') :].split("</section>")[0]
    assert "<th>f1</th>" in metrics and 'title="0.83">0.83<' in metrics
    assert f'<a href="/runs/{registry.runs[1]}" class="run-link"' in html
    assert "<code>models:/churn/2</code>" in html
    assert f"runs:/{registry.runs[1]}/model" in html


def test_version_page_draws_the_lineage_graph(
    shared_client: TestClient, shared_registry: Registry
) -> None:
    html = shared_client.get("/models/churn/versions/2").text
    graph = svg(html)
    headings = re.findall(r'<text class="col-heading"[^>]*>([^<]+)</text>', graph)
    assert headings == ["Data snapshots", "Source run", "Version", "Aliases", "Deployments"]
    kinds = re.findall(r'data-kind="(\w+)"', graph)
    assert kinds == ["data", "run", "version", "alias", "deployment"]
    assert ">customers</text>" in graph
    assert f">{shared_registry.dataset_digest[:12]}</text>" in graph
    assert "training · 120 rows" in graph
    assert f'<a href="/runs/{shared_registry.runs[1]}">' in graph
    assert ">lr-c1</text>" in graph
    assert ">churn v2</text>" in graph
    assert ">@champion</text>" in graph
    assert ">no deployment</text>" in graph
    assert len(re.findall(r'<path class="edge"', graph)) == 3  # data→run→version→alias
    assert "http" not in graph.replace("http://www.w3.org/2000/svg", "")  # nothing fetched
    # without an alias the alias column is a placeholder and no edge leaves the version
    bare = svg(shared_client.get("/models/churn/versions/1").text)
    assert ">no alias</text>" in bare
    assert len(re.findall(r'<path class="edge"', bare)) == 2


def test_lineage_graph_layout_directions_and_missing_run() -> None:
    version = {
        "version": 4,
        "flavor": "python",
        "status": "READY",
        "manifest_sha256": "ab" * 32,
        "source_run_id": "f" * 32,
        "lineage": {
            "data": [
                {"name": "train", "digest": "1" * 64, "num_rows": 10, "direction": "input"},
                {"name": "scored", "digest": "2" * 64, "num_rows": 5, "direction": "output"},
            ]
        },
    }
    run = {"id": "f" * 32, "name": "r", "status": "FINISHED"}
    graph = views.lineage_graph("m", version, run, ["a", "b", "c"])
    edges = graph.edges
    assert [e.reverse for e in edges] == [False, True, False, False, False, False]
    by_kind = {n.kind: n for n in graph.nodes}
    assert by_kind["data"].x < by_kind["run"].x < by_kind["version"].x < by_kind["alias"].x
    aliases = [n for n in graph.nodes if n.kind == "alias"]
    assert len({n.y for n in aliases}) == 3  # stacked, not drawn over each other
    assert max(n.y + n.h for n in graph.nodes) <= graph.height
    assert max(n.x + n.w for n in graph.nodes) <= graph.width
    long = views.lineage_graph("m" * 80, version, None, [])
    version_node = next(n for n in long.nodes if n.kind == "version")
    assert len(version_node.label) == views.MAX_TEXT and version_node.label.endswith("…")
    run_node = next(n for n in long.nodes if n.kind == "run")
    assert run_node.placeholder and run_node.title == "run not available"
    assert long.edges == []  # nothing links to a run that is not there


def test_version_whose_run_was_deleted_still_renders(
    app: FastAPI, client: TestClient, registry: Registry
) -> None:
    from passerelle.tracking import service as tracking

    with session_scope(app.state.sessions) as session:
        tracking.delete_run(session, ANONYMOUS_ADMIN, registry.runs[0])
    page = client.get("/models/churn/versions/1")
    assert page.status_code == 200
    assert ">run not available</text>" in svg(page.text)
    assert f'title="the run is deleted or not readable">{registry.runs[0][:12]}</code>' in page.text
    model = client.get("/models/churn")
    assert model.status_code == 200
    assert f'href="/runs/{registry.runs[0]}"' not in version_blocks(model.text)[1]


# -- moving aliases ----------------------------------------------------------------------------
def history_count(app: FastAPI) -> int:
    with session_scope(app.state.sessions) as session:
        return len(service.alias_history(session, ANONYMOUS_ADMIN, "churn"))


def test_moving_an_alias_asks_for_confirmation_then_applies_it(
    app: FastAPI, client: TestClient, registry: Registry
) -> None:
    before = history_count(app)
    form = {"alias": "champion", "reason": "recall matters", "project": "default"}
    ask = client.post("/models/churn/versions/3/aliases", data=form)
    assert ask.status_code == 200
    assert "Move alias <b>champion</b> from version 2 to version 3?" in ask.text
    assert '<input type="text" id="confirm-reason" name="reason"' in ask.text
    assert 'value="recall matters"' in ask.text
    assert alias_of(app, "champion") == 2  # the first post changes nothing
    assert history_count(app) == before

    token = hidden(ask.text, "token")
    confirm = {**form, "current": hidden(ask.text, "current"), "token": token}
    assert confirm["current"] == "2"
    done = client.post("/models/churn/versions/3/aliases", data=confirm, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == "/models/churn?project=default&changed=champion#aliases"
    assert alias_of(app, "champion") == 3
    page = client.get(done.headers["location"]).text
    assert "Alias champion now points at version 3." in page
    history = page[page.index('id="alias-history"') :]
    first = history.split("</li>")[0]
    assert "@champion" in first and "<b>v2</b> → <b>v3</b>" in first
    assert "recall matters" in first
    assert "@champion" in version_blocks(page)[3]

    replay = client.post("/models/churn/versions/3/aliases", data=confirm)
    assert replay.status_code == 200
    assert "Nothing to change" in replay.text  # the same token cannot act twice
    assert history_count(app) == before + 1


def test_a_tampered_or_misdirected_token_is_refused(
    app: FastAPI, client: TestClient, registry: Registry
) -> None:
    form = {"alias": "champion", "project": "default"}
    ask = client.post("/models/churn/versions/3/aliases", data=form)
    token, current = hidden(ask.text, "token"), hidden(ask.text, "current")
    flipped = token[:-1] + ("0" if token[-1] != "0" else "1")
    attempts = [
        ("/models/churn/versions/3/aliases", {**form, "current": current, "token": flipped}),
        ("/models/churn/versions/1/aliases", {**form, "current": current, "token": token}),
        (
            "/models/churn/versions/3/aliases",
            {**form, "alias": "staging", "current": current, "token": token},
        ),
        ("/models/churn/versions/3/aliases", {**form, "current": "1", "token": token}),
        ("/models/churn/versions/3/aliases", {**form, "current": current, "token": "1.abc"}),
        ("/models/churn/versions/3/aliases", {**form, "current": current, "token": "x.y"}),
    ]
    for url, data in attempts:
        response = client.post(url, data=data, follow_redirects=False)
        assert response.status_code == 400, (url, data)
        assert "not valid" in response.text
    assert alias_of(app, "champion") == 2
    assert alias_of(app, "staging") is None
    altered = client.post(
        "/models/churn/versions/3/aliases", data={**form, "current": "two", "token": token}
    )
    assert altered.status_code == 422 and "altered" in altered.text
    assert alias_of(app, "champion") == 2


def test_a_confirmation_made_stale_by_another_move_is_shown_again(
    app: FastAPI, client: TestClient, registry: Registry
) -> None:
    ask = client.post("/models/churn/versions/3/aliases", data={"alias": "champion"})
    with session_scope(app.state.sessions) as session:
        service.set_alias(session, ANONYMOUS_ADMIN, "churn", "champion", 1)
    data = {"alias": "champion", "current": "2", "token": hidden(ask.text, "token")}
    stale = client.post("/models/churn/versions/3/aliases", data=data)
    assert stale.status_code == 409
    assert "it now points at version 1. Nothing was changed." in stale.text
    assert "Move alias <b>champion</b> from version 1 to version 3?" in stale.text
    assert alias_of(app, "champion") == 1
    fresh = {"alias": "champion", "current": "1", "token": hidden(stale.text, "token")}
    assert client.post("/models/churn/versions/3/aliases", data=fresh).status_code == 200
    assert alias_of(app, "champion") == 3


def test_expired_tokens_are_told_apart_from_forged_ones() -> None:
    key, fields = b"k" * 32, ("set", "default", "churn", "champion", 2, 3)
    issued = 1_700_000_000_000
    token = views.sign_change(key, fields, issued)
    assert views.check_change(key, fields, token, issued + 1000) is views.TokenCheck.VALID
    late = issued + CONFIRM_TTL_MS + 1
    assert views.check_change(key, fields, token, late) is views.TokenCheck.EXPIRED
    assert views.check_change(b"x" * 32, fields, token, issued) is views.TokenCheck.INVALID
    other = ("set", "default", "churn", "champion", 2, 4)
    assert views.check_change(key, other, token, issued) is views.TokenCheck.INVALID
    # fields cannot slide into each other: ("ab", "c") and ("a", "bc") sign differently
    assert views.sign_change(key, ("ab", "c"), 1) != views.sign_change(key, ("a", "bc"), 1)


def test_setting_a_new_alias_and_removing_one_both_ask_first(
    app: FastAPI, client: TestClient, registry: Registry
) -> None:
    ask = client.post("/models/churn/versions/1/aliases", data={"alias": "staging"})
    assert "Set the new alias <b>staging</b> of <b>churn</b> on version 1?" in ask.text
    assert hidden(ask.text, "current") == ""
    data = {"alias": "staging", "current": "", "token": hidden(ask.text, "token")}
    done = client.post("/models/churn/versions/1/aliases", data=data, follow_redirects=False)
    assert done.status_code == 303
    assert alias_of(app, "staging") == 1

    page = client.get("/models/churn").text
    assert 'action="/models/churn/aliases/champion/remove"' in page
    remove = client.post("/models/churn/aliases/champion/remove", data={"project": "default"})
    assert remove.status_code == 200
    assert "Remove alias <b>champion</b> from version 2 of <b>churn</b>?" in remove.text
    assert alias_of(app, "champion") == 2
    data = {
        "project": "default",
        "reason": "retired",
        "current": hidden(remove.text, "current"),
        "token": hidden(remove.text, "token"),
    }
    gone = client.post("/models/churn/aliases/champion/remove", data=data, follow_redirects=False)
    assert gone.status_code == 303
    assert alias_of(app, "champion") is None
    page = client.get(gone.headers["location"]).text
    assert "Alias champion removed (it pointed at version 2)." in page
    first = page[page.index('id="alias-history"') :].split("</li>")[0]
    assert "removed from <b>v2</b>" in first and "retired" in first
    # a removal token cannot be replayed into a set, nor reused once applied
    again = client.post("/models/churn/aliases/champion/remove", data=data)
    assert again.status_code == 404


def test_pointing_an_alias_where_it_already_points_changes_nothing(
    shared_app: FastAPI, shared_client: TestClient, shared_registry: Registry
) -> None:
    before = history_count(shared_app)
    response = shared_client.post("/models/churn/versions/2/aliases", data={"alias": "champion"})
    assert response.status_code == 200
    assert "already points at version 2" in response.text
    assert 'name="token"' not in response.text
    assert history_count(shared_app) == before


@pytest.mark.parametrize("alias", ["", "2", "latest", "has space", "-dash", "x" * 101, XSS])
def test_alias_names_are_checked_before_anything_is_shown(
    shared_app: FastAPI, shared_client: TestClient, shared_registry: Registry, alias: str
) -> None:
    response = shared_client.post("/models/churn/versions/3/aliases", data={"alias": alias})
    assert response.status_code == 400
    assert "cannot be an alias" in response.text
    assert "<script>alert" not in response.text
    assert alias_of(shared_app, alias) is None


def test_cross_site_posts_are_refused(app: FastAPI, client: TestClient, registry: Registry) -> None:
    ask = client.post("/models/churn/versions/3/aliases", data={"alias": "champion"})
    data = {"alias": "champion", "current": "2", "token": hidden(ask.text, "token")}
    for url, body in [
        ("/models/churn/versions/3/aliases", data),
        ("/models/churn/aliases/champion/remove", {"current": "2"}),
    ]:
        response = client.post(url, data=body, headers={"Origin": "https://evil.example"})
        assert response.status_code == 403
        assert "only accepted from forms of this site" in response.text
    assert alias_of(app, "champion") == 2
    same = client.post(
        "/models/churn/versions/3/aliases",
        data=data,
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert same.status_code == 303
    assert alias_of(app, "champion") == 3


# -- access ------------------------------------------------------------------------------------
ADMIN_KEY = "registry-admin-key-0123456789"


@pytest.fixture
def secured(tmp_path: Path) -> Any:
    """A keyed app with the seeded registry, a viewer key and two editor keys."""
    settings = Settings(home=tmp_path / "secured", auth="on", admin_key=ADMIN_KEY, _env_file=None)
    application = create_app(settings)
    with session_scope(application.state.sessions) as session:
        project = auth.ensure_project(session, "default")
        keys = {
            name: auth.create_key(session, name=name, role=role, project_id=project.id)[1]
            for name, role in [("vera", "viewer"), ("ed", "editor"), ("eli", "editor")]
        }
    seed_registry(application, settings.home, api_key=ADMIN_KEY)
    with TestClient(application, raise_server_exceptions=False) as c:
        yield application, c, keys
    application.state.engine.dispose()


def test_a_viewer_reads_the_pages_but_cannot_move_an_alias(secured: Any) -> None:
    application, client, keys = secured
    assert client.get("/models", follow_redirects=False).status_code == 303  # no key: sign in
    client.cookies.set("passerelle_key", keys["vera"])
    version = client.get("/models/churn/versions/3")
    assert version.status_code == 200
    assert 'id="set-alias-form"' not in version.text
    assert "can read this model but not move its aliases" in version.text
    assert "/remove" not in client.get("/models/churn").text
    refused = client.post("/models/churn/versions/3/aliases", data={"alias": "champion"})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "may not write" in refused.text
    removal = client.post("/models/churn/aliases/champion/remove", data={})
    assert removal.status_code == 403
    assert alias_of(application, "champion") == 2


def test_a_confirmation_only_works_for_the_key_it_was_issued_to(secured: Any) -> None:
    application, client, keys = secured
    client.cookies.set("passerelle_key", keys["ed"])
    ask = client.post("/models/churn/versions/3/aliases", data={"alias": "champion"})
    assert ask.status_code == 200
    data = {"alias": "champion", "current": "2", "token": hidden(ask.text, "token")}
    client.cookies.set("passerelle_key", keys["eli"])
    assert client.post("/models/churn/versions/3/aliases", data=data).status_code == 400
    assert alias_of(application, "champion") == 2
    client.cookies.set("passerelle_key", keys["ed"])
    done = client.post("/models/churn/versions/3/aliases", data=data, follow_redirects=False)
    assert done.status_code == 303
    assert alias_of(application, "champion") == 3
    history = client.get(done.headers["location"]).text
    first = history[history.index('id="alias-history"') :].split("</li>")[0]
    assert "ed ·" in first  # recorded under the key that confirmed


# -- escaping and errors -----------------------------------------------------------------------
def test_text_from_users_is_escaped_everywhere(
    app: FastAPI, settings: Settings, client: TestClient
) -> None:
    seeded = seed_registry(app, settings.home, description=XSS)
    # Names are read back from the database, so the pages must not trust them: one the
    # service's name pattern refuses is written into the table directly.
    odd = 'odd"<b>name'
    with session_scope(app.state.sessions) as session:
        source = f"runs:/{seeded.runs[0]}/model"
        service.create_version(
            session, ANONYMOUS_ADMIN, app.state.store, "oddname", source, None, XSS
        )
        service.set_alias(session, ANONYMOUS_ADMIN, "oddname", "champion", 1, None, XSS)
        session.execute(
            update(RegisteredModel).where(RegisteredModel.name == "oddname").values(name=odd)
        )
    escaped = "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"
    pages = [
        "/models",
        "/models/churn",
        "/models/" + views.model_path(odd).split("/")[-1],
        "/models/" + views.model_path(odd).split("/")[-1] + "/versions/1",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "<script>alert" not in response.text, url
        assert "<b>name" not in response.text, url
    listing = client.get("/models").text
    assert escaped in listing
    assert 'href="/models/odd%22%3Cb%3Ename?project=default"' in listing
    assert "odd&#34;&lt;b&gt;name" in listing
    model = client.get(pages[2]).text
    assert escaped in model  # the version description and the alias reason
    assert "odd&#34;&lt;b&gt;name v1" in svg(client.get(pages[3]).text)
    ask = client.post(views.model_path(odd, "versions", 1, "aliases"), data={"alias": "prod"})
    assert ask.status_code == 200
    assert "<b>name" not in ask.text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/models/nope", "model &#39;nope&#39; not found in project &#39;default&#39;"),
        ("/models/churn?project=nope", "model &#39;churn&#39; not found in project &#39;nope&#39;"),
        ("/models/churn/versions/9", "model &#39;churn&#39; has no version 9"),
        ("/models/churn/versions/abc", "nothing here"),
        ("/models/churn/versions/0", "nothing here"),
        ("/models/churn/versions/99999999999999999999", "nothing here"),
        ("/models/%3Cscript%3Ealert(1)%3C!--x", "&lt;script&gt;alert(1)&lt;!--x"),
    ],
)
def test_unknown_models_and_versions_are_html_404s(
    shared_client: TestClient, shared_registry: Registry, url: str, message: str
) -> None:
    response = shared_client.get(url)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text
    assert "<script>alert" not in response.text


def test_posts_to_unknown_things_are_404s(
    shared_app: FastAPI, shared_client: TestClient, shared_registry: Registry
) -> None:
    for url, data in [
        ("/models/nope/versions/1/aliases", {"alias": "champion"}),
        ("/models/churn/versions/9/aliases", {"alias": "champion"}),
        ("/models/churn/aliases/nope/remove", {}),
        ("/models/churn/aliases/latest/remove", {}),
    ]:
        response = shared_client.post(url, data=data)
        assert response.status_code == 404, url
        assert response.headers["content-type"].startswith("text/html")
    assert alias_of(shared_app, "champion") == 2


def test_metric_chart_needs_two_finite_values() -> None:
    versions = [
        {"version": 1, "metrics": {"f1": 0.5}},
        {"version": 2, "metrics": {"f1": "NaN"}},
        {"version": 3, "metrics": {}},
    ]
    assert views.metric_chart(versions, "f1") is None
    versions.append({"version": 4, "metrics": {"f1": 0.7}})
    figure = views.metric_chart(versions, "f1")
    assert figure is not None
    assert figure["data"][0]["x"] == [1, 4] and figure["data"][0]["y"] == [0.5, 0.7]
    assert views.metric_keys(versions) == ["f1"]
    assert views.key_metrics({"b": 1, "a": 2, "c": 3}, "c") == [("c", 3), ("a", 2), ("b", 1)]
