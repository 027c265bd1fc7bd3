"""The tracking pages in-process: status codes, content, escaping, errors and sign-in."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from passerelle.core.auth import ANONYMOUS_ADMIN
from passerelle.core.db import session_scope
from passerelle.tracking import artifacts, service
from passerelle.tracking.schemas import MetricIn, RunCreate
from tests.ui.conftest import COMMIT, NOTES, Seeded, parquet_bytes, tiny_png

XSS = "<script>alert('pwned')</script>"


def run_order(html: str) -> list[str]:
    """Run ids in the order the runs table shows them."""
    return re.findall(r'<tr data-run-id="([0-9a-f]{32})"', html)


def figures(html: str) -> dict[str, dict]:
    """The plotly figures a page embeds, by target element id."""
    found = re.findall(
        r'<script type="application/json" class="plotly-figure" data-target="([^"]+)">(.*?)'
        r"</script>",
        html,
        flags=re.S,
    )
    return {target: json.loads(body) for target, body in found}


# -- home and experiment pages -----------------------------------------------------------------
def test_home_lists_experiments_with_run_counts(client: TestClient, seeded: Seeded) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert f'<a href="/experiments/{seeded.experiment_id}">churn-model</a>' in html
    row = html[html.index("churn-model</a>") :]
    assert re.search(r'<td class="num">5</td>', row[:400])  # 4 runs and one child run
    assert "2024-05-29" in row[:600]  # last activity, in UTC
    assert "Content-Security-Policy" in response.headers


def test_home_without_experiments_explains_how_to_start(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "No experiments yet" in response.text


def test_experiment_page_has_a_column_per_param_and_metric(
    client: TestClient, seeded: Seeded
) -> None:
    html = client.get(f"/experiments/{seeded.experiment_id}").text
    for column in ("param:C", "param:penalty", "metric:f1", "metric:accuracy"):
        assert f'data-column="{column}"' in html
    for name, run_id in seeded.runs.items():
        assert f'<a href="/runs/{run_id}">{name}</a>' in html
    assert "42.0 s" in html  # duration
    # newest first by default: the child run started last
    assert run_order(html)[0] == seeded.child_id


def test_sorting_by_a_metric_header_orders_rows(client: TestClient, seeded: Seeded) -> None:
    page = client.get(f"/experiments/{seeded.experiment_id}").text
    link = re.search(r'<a class="sort" href="([^"]+)">f1', page)
    assert link is not None
    sorted_desc = client.get(link.group(1).replace("&amp;", "&"))
    assert sorted_desc.status_code == 200
    ids = seeded.runs
    by_f1 = [ids["lr-l2-c10"], ids["lr-l2-c1"], ids["lr-l1-c0.1"], ids["lr-l1-c1"]]
    assert run_order(sorted_desc.text)[:4] == by_f1
    assert run_order(sorted_desc.text)[4] == seeded.child_id  # no f1: last either way
    # the header now links to the other direction
    flip = re.search(r'<a class="sort" href="([^"]+)">f1', sorted_desc.text)
    assert flip is not None and "ASC" in flip.group(1)
    ascending = client.get(flip.group(1).replace("&amp;", "&")).text
    assert run_order(ascending)[:4] == by_f1[::-1]


def test_filter_keeps_only_matching_runs(client: TestClient, seeded: Seeded) -> None:
    response = client.get(
        f"/experiments/{seeded.experiment_id}",
        params={"filter": "metrics.f1 > 0.8 and params.penalty = 'l2'"},
    )
    assert response.status_code == 200
    assert set(run_order(response.text)) == {seeded.runs["lr-l2-c1"], seeded.runs["lr-l2-c10"]}
    assert 'value="metrics.f1 &gt; 0.8 and params.penalty = &#39;l2&#39;"' in response.text


def test_malformed_filter_is_a_400_page_with_the_message(
    client: TestClient, seeded: Seeded
) -> None:
    response = client.get(
        f"/experiments/{seeded.experiment_id}", params={"filter": "metrics.f1 > <b>"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert 'id="filter-error"' in response.text
    assert (
        "malformed filter: expected a number or a quoted string at position 13, "
        "found &#39;&lt;&#39;" in response.text
    )
    assert "<b>" not in response.text
    assert run_order(response.text) == []


def test_bad_sort_clause_is_a_400_page(client: TestClient, seeded: Seeded) -> None:
    response = client.get(
        f"/experiments/{seeded.experiment_id}", params={"order_by": "metrics.f1 sideways"}
    )
    assert response.status_code == 400
    assert "malformed order_by" in response.text


def test_pagination_walks_every_run_once(client: TestClient, seeded: Seeded) -> None:
    url = f"/experiments/{seeded.experiment_id}?limit=2"
    seen: list[str] = []
    pages = 0
    while url:
        html = client.get(url).text
        rows = run_order(html)
        assert len(rows) <= 2
        seen += rows
        pages += 1
        nxt = re.search(r'id="next-page" href="([^"]+)"', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else ""
        if pages > 1:
            assert 'id="prev-page"' in html
    assert pages == 3
    assert sorted(seen) == sorted([*seeded.runs.values(), seeded.child_id])


# -- run page ----------------------------------------------------------------------------------
def test_run_page_shows_header_params_metrics_and_lineage(
    client: TestClient, seeded: Seeded
) -> None:
    run_id = seeded.runs["lr-l2-c1"]
    response = client.get(f"/runs/{run_id}")
    assert response.status_code == 200
    html = response.text
    assert "<h1>lr-l2-c1" in html
    assert f'<a href="/experiments/{seeded.experiment_id}">churn-model</a>' in html
    assert f'<a href="/runs/{seeded.child_id}" class="chip link">fold-0</a>' in html
    assert "<tr><th>penalty</th><td>l2</td></tr>" in html
    assert re.search(r"<th>f1</th><td[^>]*>0\.81</td>", html)
    lineage = html[html.index('id="lineage"') :]
    assert COMMIT in lineage
    assert "https://git.example.com/ds/churn.git" in lineage
    assert "python train.py --penalty l2" in lineage
    assert "efefefefefefefef" in lineage  # uv.lock hash, shortened
    assert "9e9e9e9e9e9e9e9e" in lineage  # dataset fingerprint in the data part


def test_run_page_embeds_one_chart_per_metric(client: TestClient, seeded: Seeded) -> None:
    html = client.get(f"/runs/{seeded.runs['lr-l2-c10']}").text
    figs = figures(html)
    assert len(figs) == 2
    by_title = {f["layout"]["title"]["text"]: f for f in figs.values()}
    f1 = by_title["f1"]["data"][0]
    assert f1["x"] == list(range(10))
    assert f1["y"][-1] == pytest.approx(0.88)
    assert '<script src="/static/plotly.min.js" defer></script>' in html


def test_child_run_links_to_its_parent(client: TestClient, seeded: Seeded) -> None:
    html = client.get(f"/runs/{seeded.child_id}").text
    assert f'<a href="/runs/{seeded.runs["lr-l2-c1"]}" id="parent-link">lr-l2-c1</a>' in html


def test_artifacts_tree_and_text_preview(client: TestClient, seeded: Seeded) -> None:
    run_id = seeded.runs["lr-l2-c1"]
    html = client.get(f"/runs/{run_id}").text
    tree = html[html.index('id="artifacts"') : html.index('id="datasets"')]
    assert tree.index("data/") < tree.index("predictions.parquet") < tree.index("notes.txt")
    assert "Choose a file to preview it." in tree
    html = client.get(f"/runs/{run_id}", params={"artifact": "notes.txt"}).text
    preview = html[html.index('id="text-preview"') :]
    assert preview.startswith('id="text-preview">' + NOTES)


def test_parquet_artifact_preview_shows_the_first_twenty_rows(
    client: TestClient, seeded: Seeded
) -> None:
    html = client.get(
        f"/runs/{seeded.runs['lr-l2-c1']}", params={"artifact": "data/predictions.parquet"}
    ).text
    preview = html[html.index('id="preview"') : html.index('id="datasets"')]
    assert "<th>customer</th><th>tenure</th><th>churned</th>" in preview
    assert "<td>c019</td>" in preview and "<td>c020</td>" not in preview
    assert "First 20 of 50 rows." in preview


def test_image_artifacts_are_served_with_their_type(client: TestClient, seeded: Seeded) -> None:
    run_id = seeded.runs["lr-l2-c1"]
    html = client.get(f"/runs/{run_id}", params={"artifact": "plots/confusion.png"}).text
    assert (
        f'<img class="image-preview" src="/runs/{run_id}/artifacts/raw?path=plots%2Fconfusion.png"'
        in html
    )
    png = client.get(f"/runs/{run_id}/artifacts/raw", params={"path": "plots/confusion.png"})
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content == tiny_png()
    svg = client.get(f"/runs/{run_id}/artifacts/raw", params={"path": "plots/roc.svg"})
    assert svg.headers["content-type"] == "image/svg+xml"
    assert "sandbox" in svg.headers["content-security-policy"]
    assert "default-src 'none'" in svg.headers["content-security-policy"]
    text = client.get(f"/runs/{run_id}/artifacts/raw", params={"path": "notes.txt"})
    assert text.status_code == 400
    assert "not an image" in text.text


def test_downloads_are_attachments_with_the_stored_bytes(
    client: TestClient, seeded: Seeded
) -> None:
    run_id = seeded.runs["lr-l2-c1"]
    response = client.get(
        f"/runs/{run_id}/artifacts/download", params={"path": "data/predictions.parquet"}
    )
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith(
        'attachment; filename="predictions.parquet"'
    )
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == parquet_bytes()
    missing = client.get(f"/runs/{run_id}/artifacts/download", params={"path": "nope.bin"})
    assert missing.status_code == 404
    assert "artifact &#39;nope.bin&#39; not found" in missing.text


def test_datasets_show_fingerprint_schema_and_snapshot_head(
    client: TestClient, seeded: Seeded
) -> None:
    html = client.get(f"/runs/{seeded.runs['lr-l2-c1']}").text
    section = html[html.index('id="datasets"') : html.index('id="lineage"')]
    assert "customers" in section and "s3://lake/customers/2024-03" in section
    assert f'<code title="{seeded.dataset_digest}">{seeded.dataset_digest[:12]}</code>' in section
    assert 'tenure: <span class="muted">int64</span>' in section
    assert "Preview of the snapshot" in section
    assert "<td>c019</td>" in section and "First 20 of 30 rows." in section


def test_tampered_blob_is_never_shown(app: FastAPI, client: TestClient, seeded: Seeded) -> None:
    run_id = seeded.runs["lr-l2-c1"]
    with session_scope(app.state.sessions) as session:
        art = artifacts.get_artifact(session, ANONYMOUS_ADMIN, run_id, "notes.txt")
    Path(app.state.store.local_path(art.sha256)).write_bytes(b"forged content\n")
    html = client.get(f"/runs/{run_id}", params={"artifact": "notes.txt"}).text
    assert "does not match its hash" in html
    assert "forged content" not in html
    download = client.get(f"/runs/{run_id}/artifacts/download", params={"path": "notes.txt"})
    assert download.status_code == 500
    assert "does not match its hash" in download.text and "forged" not in download.text


def test_non_finite_metrics_show_as_text_and_chart_gaps(
    app: FastAPI, client: TestClient, seeded: Seeded
) -> None:
    run_id = seeded.runs["lr-l1-c1"]
    with session_scope(app.state.sessions) as session:
        points = [
            MetricIn(key="loss", value=0.5, step=0),
            MetricIn(key="loss", value="NaN", step=1),
        ]
        service.log_metrics(session, ANONYMOUS_ADMIN, run_id, points)
    html = client.get(f"/runs/{run_id}").text
    assert re.search(r"<th>loss</th><td[^>]*>NaN</td>", html)
    loss = next(f for f in figures(html).values() if f["layout"]["title"]["text"] == "loss")
    assert loss["data"][0]["y"] == [0.5, None]
    compare = client.get("/compare", params={"runs": f"{run_id},{seeded.runs['lr-l2-c1']}"})
    assert compare.status_code == 200
    labels = [d["label"] for d in figures(compare.text)["parcoords"]["data"][0]["dimensions"]]
    assert "loss" not in labels and "f1" in labels


# -- escaping ----------------------------------------------------------------------------------
@pytest.fixture
def hostile(app: FastAPI) -> tuple[int, str]:
    """An experiment, run, param, metric and tag whose names and values hold markup."""
    with session_scope(app.state.sessions) as session:
        exp = service.create_experiment(session, ANONYMOUS_ADMIN, f"exp {XSS}")
        run = service.create_run(
            session, ANONYMOUS_ADMIN, RunCreate(experiment_id=exp.id, name=f"run {XSS}")
        )
        service.log_params(session, ANONYMOUS_ADMIN, run.id, {"payload": XSS, XSS: "key"})
        service.set_tags(session, ANONYMOUS_ADMIN, run.id, {"note": XSS})
        return exp.id, run.id


def test_markup_in_names_and_values_is_escaped_everywhere(
    client: TestClient, hostile: tuple[int, str]
) -> None:
    exp_id, run_id = hostile
    for url in ("/", f"/experiments/{exp_id}", f"/runs/{run_id}", f"/compare?runs={run_id}"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert XSS not in response.text, url
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in response.text, url


# -- comparison --------------------------------------------------------------------------------
def test_compare_puts_runs_side_by_side_and_marks_differences(
    client: TestClient, seeded: Seeded
) -> None:
    a, b = seeded.runs["lr-l2-c1"], seeded.runs["lr-l2-c10"]
    response = client.get("/compare", params={"runs": f"{a},{b}"})
    assert response.status_code == 200
    html = response.text
    assert html.index(f'<a href="/runs/{a}">lr-l2-c1') < html.index(f'<a href="/runs/{b}">')
    assert '<tr class="param-row differs" data-key="C">' in html
    assert '<tr class="param-row" data-key="penalty">' in html  # both l2
    assert '<tr class="metric-row differs" data-key="f1">' in html
    figs = figures(html)
    parcoords = figs["parcoords"]["data"][0]
    assert parcoords["type"] == "parcoords"
    labels = [d["label"] for d in parcoords["dimensions"]]
    assert labels == ["run", "C", "penalty", "accuracy", "f1"]
    assert parcoords["dimensions"][1]["values"] == [1.0, 10.0]
    overlaid = [f for t, f in figs.items() if t.startswith("chart-")]
    assert {len(f["data"]) for f in overlaid} == {2}  # one line per run on each chart


def test_compare_accepts_repeated_runs_parameters(client: TestClient, seeded: Seeded) -> None:
    ids = list(seeded.runs.values())[:3]
    response = client.get("/compare", params=[("runs", i) for i in ids])
    assert response.status_code == 200
    assert "Compare 3 runs" in response.text


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/runs/0123456789abcdef0123456789abcdef", 404, "run &#39;0123456789abcdef"),
        ("/experiments/4242", 404, "experiment 4242 not found"),
        ("/experiments/not-a-number", 404, "experiment_id"),
        ("/compare?runs=missing", 404, "run &#39;missing&#39; not found"),
        ("/compare", 422, "choose at least one run"),
        ("/runs/nope/artifacts/raw?path=a.png", 404, "run &#39;nope&#39; not found"),
        ("/experiments/1?limit=0", 400, "limit"),
    ],
)
def test_unknown_ids_and_bad_parameters_get_an_html_error_page(
    client: TestClient, url: str, status: int, message: str
) -> None:
    response = client.get(url)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text
    assert '<a href="/">Back to experiments</a>' in response.text


# -- static files ------------------------------------------------------------------------------
def test_stylesheet_and_plotly_are_served_locally(client: TestClient) -> None:
    css = client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert js.content.startswith(b"/**\n* plotly.js v")
    assert client.get("/static/charts.js").status_code == 200
