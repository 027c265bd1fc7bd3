"""Run search: every operator on every kind of field, ordering, and pagination."""

from __future__ import annotations

import pytest

from tests.api._helpers import assert_error, create_run

# name: (start_time, status, metrics, params, tags)
RUNS = {
    "alpha": (
        1000,
        "FINISHED",
        {"f1": 0.91, "loss": 0.2},
        {"model": "Forest", "C": "1"},
        {"env": "prod"},
    ),
    "beta": (2000, "FAILED", {"f1": 0.75}, {"model": "forest", "C": "10"}, {"env": "dev"}),
    "gamma": (3000, "RUNNING", {"f1": 0.83, "loss": 0.5}, {"model": "Linear"}, {"env": "prod-eu"}),
    "delta": (4000, "FINISHED", {}, {"model": "boost", "C": "2"}, {}),
}


@pytest.fixture(scope="module")
def runs(shared_client):
    """Four runs in experiment ``s``, plus one in another experiment that no search should see.

    Built once per backend for the whole module: the tests using it only read.
    """
    client = shared_client
    ids = {}
    for name, (start, status, metrics, params, tags) in RUNS.items():
        run = create_run(client, experiment="s", name=name, start_time=start, tags=tags)
        rid = run["id"]
        if metrics:
            batch = [{"key": k, "value": v} for k, v in metrics.items()]
            client.post(f"/api/v1/runs/{rid}/metrics/batch", json={"metrics": batch})
        client.post(f"/api/v1/runs/{rid}/params", json={"params": params})
        if status != "RUNNING":
            client.patch(f"/api/v1/runs/{rid}", json={"status": status, "end_time": start + 500})
        ids[name] = rid
    create_run(client, experiment="elsewhere", name="outsider")
    return ids


def names(client, filter=None, order_by=None, **extra):
    body = {"experiments": ["s"], **extra}
    if filter is not None:
        body["filter"] = filter
    if order_by is not None:
        body["order_by"] = order_by
    resp = client.post("/api/v1/runs/search", json=body)
    assert resp.status_code == 200, resp.text
    return [r["name"] for r in resp.json()["runs"]]


def test_default_order_is_newest_first(shared_client, runs):
    assert names(shared_client) == ["delta", "gamma", "beta", "alpha"]


def test_search_by_experiment_id_and_everything_visible(shared_client, runs):
    exp_id = shared_client.get("/api/v1/experiments/by-name/s").json()["id"]
    resp = shared_client.post("/api/v1/runs/search", json={"experiment_ids": [exp_id]})
    assert [r["name"] for r in resp.json()["runs"]] == ["delta", "gamma", "beta", "alpha"]
    everything = shared_client.post("/api/v1/runs/search", json={}).json()["runs"]
    assert sorted(r["name"] for r in everything) == ["alpha", "beta", "delta", "gamma", "outsider"]


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        # metrics (numbers)
        ("metrics.f1 = 0.75", {"beta"}),
        ("metrics.f1 != 0.75", {"alpha", "gamma"}),
        ("metrics.f1 < 0.83", {"beta"}),
        ("metrics.f1 <= 0.83", {"beta", "gamma"}),
        ("metrics.f1 > 0.83", {"alpha"}),
        ("metrics.f1 >= 0.83", {"alpha", "gamma"}),
        ("metrics.loss > 0", {"alpha", "gamma"}),
        # params (text)
        ("params.model = 'forest'", {"beta"}),
        ("params.model != 'forest'", {"alpha", "gamma", "delta"}),
        ("params.C < '2'", {"alpha", "beta"}),
        ("params.C <= '2'", {"alpha", "beta", "delta"}),
        ("params.C > '1'", {"beta", "delta"}),
        ("params.C >= '10'", {"beta", "delta"}),
        ("params.model LIKE 'For%'", {"alpha"}),
        ("params.model LIKE '%o%'", {"alpha", "beta", "delta"}),
        ("params.model LIKE 'fores_'", {"beta"}),
        ("params.model ILIKE 'FOR%'", {"alpha", "beta"}),
        ("params.C = 10", {"beta"}),
        # tags
        ("tags.env = 'prod'", {"alpha"}),
        ("tags.env != 'prod'", {"beta", "gamma"}),
        ("tags.env < 'e'", {"beta"}),
        ("tags.env <= 'dev'", {"beta"}),
        ("tags.env > 'dev'", {"alpha", "gamma"}),
        ("tags.env >= 'prod'", {"alpha", "gamma"}),
        ("tags.env LIKE 'prod%'", {"alpha", "gamma"}),
        ("tags.env LIKE 'PROD%'", set()),
        ("tags.env ILIKE 'PROD%'", {"alpha", "gamma"}),
        # attributes
        ("attributes.status = 'FINISHED'", {"alpha", "delta"}),
        ("status != 'FINISHED'", {"beta", "gamma"}),
        ("attributes.start_time < 2000", {"alpha"}),
        ("attributes.start_time <= 2000", {"alpha", "beta"}),
        ("attributes.start_time > 3000", {"delta"}),
        ("attributes.start_time >= 3000", {"gamma", "delta"}),
        ("attributes.end_time = 1500", {"alpha"}),
        ("run_name LIKE '%a'", {"alpha", "beta", "gamma", "delta"}),
        ("run_name LIKE 'AL%'", set()),
        ("run_name ILIKE 'AL%'", {"alpha"}),
        ("attributes.status ILIKE 'fail%'", {"beta"}),
        # AND
        ("metrics.f1 > 0.7 AND params.model ILIKE 'forest'", {"alpha", "beta"}),
        ("metrics.f1 > 0.7 and params.model ILIKE 'forest' and tags.env = 'dev'", {"beta"}),
        ("metrics.f1 > 0.9 AND metrics.f1 < 0.8", set()),
        # quoting of keys and values
        ("metrics.`f1` > 0.9", {"alpha"}),
        ('params."model" = "Linear"', {"gamma"}),
        # a missing key matches nothing, not everything
        ("metrics.absent > 0", set()),
        ("params.absent != 'x'", set()),
        ("", {"alpha", "beta", "gamma", "delta"}),
    ],
)
def test_filter(shared_client, runs, filter, expected):
    assert set(names(shared_client, filter)) == expected


def test_filter_by_run_id(shared_client, runs):
    rid = runs["gamma"]
    assert names(shared_client, f"attributes.run_id = '{rid}'") == ["gamma"]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["metrics.f1 ASC"], ["beta", "gamma", "alpha", "delta"]),
        (["metrics.f1 DESC"], ["alpha", "gamma", "beta", "delta"]),
        (["metrics.f1"], ["beta", "gamma", "alpha", "delta"]),
        (["metrics.loss DESC"], ["gamma", "alpha", "delta", "beta"]),
        (["params.C DESC"], ["delta", "beta", "alpha", "gamma"]),
        (["params.C ASC"], ["alpha", "beta", "delta", "gamma"]),
        (["tags.env ASC"], ["beta", "alpha", "gamma", "delta"]),
        (["tags.env DESC"], ["gamma", "alpha", "beta", "delta"]),
        (["attributes.start_time ASC"], ["alpha", "beta", "gamma", "delta"]),
        (["start_time DESC"], ["delta", "gamma", "beta", "alpha"]),
        (["run_name ASC"], ["alpha", "beta", "delta", "gamma"]),
        (["attributes.end_time DESC"], ["delta", "beta", "alpha", "gamma"]),
        (["attributes.status ASC", "metrics.f1 DESC"], ["beta", "alpha", "delta", "gamma"]),
    ],
)
def test_order_by_with_nulls_last(shared_client, runs, order_by, expected):
    assert names(shared_client, order_by=order_by) == expected


def test_pagination_covers_every_row_exactly_once(client):
    created = set()
    for i in range(23):
        run = create_run(client, experiment="paged", name=f"r{i:02d}", start_time=1000 + i % 5)
        client.post(f"/api/v1/runs/{run['id']}/metrics", json={"key": "m", "value": i % 4})
        created.add(run["id"])
    for order_by in ([], ["metrics.m DESC"], ["attributes.start_time ASC"]):
        seen: list[str] = []
        token = None
        pages = 0
        while True:
            body = {"experiments": ["paged"], "max_results": 5, "order_by": order_by}
            if token:
                body["page_token"] = token
            resp = client.post("/api/v1/runs/search", json=body)
            assert resp.status_code == 200, resp.text
            page = resp.json()
            assert len(page["runs"]) <= 5
            seen += [r["id"] for r in page["runs"]]
            pages += 1
            token = page["next_page_token"]
            if token is None:
                break
        assert pages == 5
        assert len(seen) == len(set(seen)) == 23
        assert set(seen) == created
    one_page = client.post("/api/v1/runs/search", json={"experiments": ["paged"]}).json()
    assert one_page["next_page_token"] is None
    assert len(one_page["runs"]) == 23


def test_exact_multiple_of_the_page_size_ends_without_an_empty_page(client):
    for i in range(4):
        create_run(client, experiment="even", name=f"r{i}")
    first = client.post("/api/v1/runs/search", json={"experiments": ["even"], "max_results": 2})
    second = client.post(
        "/api/v1/runs/search",
        json={
            "experiments": ["even"],
            "max_results": 2,
            "page_token": first.json()["next_page_token"],
        },
    ).json()
    assert len(second["runs"]) == 2
    assert second["next_page_token"] is None


@pytest.mark.parametrize(
    "token",
    ["garbage!", "bm9wZQ==", "bzotMQ==", "bzphYmM=", "%%%", "bzo5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"],
)
def test_bad_page_token_is_422(shared_client, runs, token):
    resp = shared_client.post(
        "/api/v1/runs/search", json={"experiments": ["s"], "page_token": token}
    )
    assert_error(resp, 422, "invalid", field="page_token")


@pytest.mark.parametrize(
    ("filter", "hint"),
    [
        ("metrics.f1 >", "expected a value"),
        ("metrics.f1 0.5", "operator"),
        ("metrics.f1 > 'high'", "numeric"),
        ("metrics.f1 LIKE '0.%'", "numeric"),
        ("bogus.f1 = 1", "unknown prefix"),
        ("colour = 'red'", "unknown attribute"),
        ("metrics.f1 > 0.5 OR metrics.f1 < 0.1", "OR is not supported"),
        ("metrics.f1 > 0.5 metrics.loss < 1", "AND"),
        ("params.model = 'unterminated", "unexpected character"),
        ("metrics.f1 > 0.5 AND", "expected"),
        ("metrics.f1 ~ 1", "unexpected character"),
        ("; DROP TABLE runs", "unexpected character"),
    ],
)
def test_malformed_filter_is_422_and_explains(shared_client, runs, filter, hint):
    resp = shared_client.post("/api/v1/runs/search", json={"experiments": ["s"], "filter": filter})
    assert_error(resp, 422, "invalid", field="filter", contains=hint)
    assert len(names(shared_client)) == 4


@pytest.mark.parametrize("order_by", ["metrics.f1 SIDEWAYS", "nope DESC", "metrics.f1 DESC x"])
def test_malformed_order_by_is_422(shared_client, runs, order_by):
    resp = shared_client.post(
        "/api/v1/runs/search", json={"experiments": ["s"], "order_by": [order_by]}
    )
    assert_error(resp, 422, "invalid", field="order_by")


def test_unknown_experiment_in_search_is_404(shared_client, runs):
    resp = shared_client.post("/api/v1/runs/search", json={"experiments": ["nope"]})
    assert_error(resp, 404, "not_found", field="experiment")
    resp = shared_client.post("/api/v1/runs/search", json={"experiment_ids": [987654]})
    assert_error(resp, 404, "not_found", field="experiment_id")


def test_max_results_bounds(shared_client, runs):
    resp = shared_client.post("/api/v1/runs/search", json={"max_results": 0})
    assert_error(resp, 422, "invalid", field="max_results")
    resp = shared_client.post("/api/v1/runs/search", json={"max_results": 50_001})
    assert_error(resp, 422, "invalid", field="max_results")


def test_include_lineage(shared_client, runs):
    resp = shared_client.post(
        "/api/v1/runs/search", json={"experiments": ["s"], "include_lineage": True}
    )
    assert all("lineage" in r and r["lineage"] is not None for r in resp.json()["runs"])
    plain = shared_client.post("/api/v1/runs/search", json={"experiments": ["s"]}).json()["runs"]
    assert all(r.get("lineage") is None for r in plain)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("C:\\data%", {"win"}),
        ("%\\x.csv", {"win"}),
        ("a*%", {"star"}),
        ("a?%", {"question"}),
        ("a[1]%", {"bracket"}),
        ("a%", {"star", "question", "bracket"}),
        ("_:%", {"win"}),
    ],
)
def test_like_matches_only_percent_and_underscore_as_wildcards(client, pattern, expected):
    values = {"win": "C:\\data\\x.csv", "star": "a*b", "question": "a?c", "bracket": "a[1]"}
    for name, value in values.items():
        run = create_run(client, experiment="chars", name=name)
        client.post(f"/api/v1/runs/{run['id']}/params", json={"params": {"p": value}})
    escaped = pattern.replace("'", "''")
    for op in ("LIKE", "ILIKE"):
        assert set(names_in(client, "chars", f"params.p {op} '{escaped}'")) == expected, op


def names_in(client, experiment, filter):
    resp = client.post("/api/v1/runs/search", json={"experiments": [experiment], "filter": filter})
    assert resp.status_code == 200, resp.text
    return [r["name"] for r in resp.json()["runs"]]
