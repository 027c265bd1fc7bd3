"""Params, metrics and tags of a run, and what happens when they are logged wrongly."""

from __future__ import annotations

import math

import pytest

from tests.api._helpers import assert_error, create_run, get_run


# -- params --------------------------------------------------------------------------------------
def test_params_are_stored_as_text(client):
    run = create_run(client)
    resp = client.post(
        f"/api/v1/runs/{run['id']}/params",
        json={"params": {"C": 1.0, "penalty": "l2", "max_iter": 100, "fit_intercept": True}},
    )
    assert resp.status_code == 204, resp.text
    assert get_run(client, run["id"])["params"] == {
        "C": "1.0",
        "penalty": "l2",
        "max_iter": "100",
        "fit_intercept": "True",
    }


def test_same_param_value_again_is_accepted(client):
    run = create_run(client)
    url = f"/api/v1/runs/{run['id']}/params"
    assert client.post(url, json={"params": {"C": 1.0}}).status_code == 204
    assert client.post(url, json={"params": {"C": 1.0, "new": "x"}}).status_code == 204
    assert get_run(client, run["id"])["params"] == {"C": "1.0", "new": "x"}


def test_param_relogged_with_another_value_is_409_and_nothing_changes(client):
    run = create_run(client)
    url = f"/api/v1/runs/{run['id']}/params"
    assert client.post(url, json={"params": {"C": 1.0, "penalty": "l2"}}).status_code == 204
    resp = client.post(url, json={"params": {"extra": "y", "C": 2.0}})
    assert_error(resp, 409, "conflict", field="params.C", contains=("'C'", "1.0", "2.0"))
    # neither the stored value nor the other params of the refused request were written
    assert get_run(client, run["id"])["params"] == {"C": "1.0", "penalty": "l2"}


def test_overlong_param_is_refused(client):
    run = create_run(client)
    resp = client.post(f"/api/v1/runs/{run['id']}/params", json={"params": {"big": "x" * 9000}})
    assert_error(resp, 422, "invalid", field="params.big", contains="8000")
    assert get_run(client, run["id"])["params"] == {}


def test_param_with_a_nested_value_is_refused(client):
    run = create_run(client)
    resp = client.post(f"/api/v1/runs/{run['id']}/params", json={"params": {"a": {"b": 1}}})
    assert_error(resp, 422, "invalid", contains="params.a")
    assert get_run(client, run["id"])["params"] == {}


# -- metrics -------------------------------------------------------------------------------------
def test_single_metric_and_history(client):
    run = create_run(client)
    url = f"/api/v1/runs/{run['id']}/metrics"
    for step, value in [(0, 0.5), (1, 0.7), (2, 0.9)]:
        resp = client.post(url, json={"key": "acc", "value": value, "step": step, "timestamp": 10})
        assert resp.status_code == 204, resp.text
    history = client.get(f"/api/v1/runs/{run['id']}/metrics/acc/history").json()
    assert history["key"] == "acc"
    assert [(p["step"], p["value"], p["timestamp"]) for p in history["points"]] == [
        (0, 0.5, 10),
        (1, 0.7, 10),
        (2, 0.9, 10),
    ]
    assert get_run(client, run["id"])["metrics"] == {"acc": 0.9}


def test_batch_history_is_ordered_by_step_then_time(client):
    run = create_run(client)
    batch = [
        {"key": "loss", "value": 0.3, "step": 2, "timestamp": 100},
        {"key": "loss", "value": 0.9, "step": 0, "timestamp": 300},
        {"key": "loss", "value": 0.5, "step": 1, "timestamp": 200},
        {"key": "loss", "value": 0.4, "step": 1, "timestamp": 150},
        {"key": "lr", "value": 0.01, "step": 0},
    ]
    resp = client.post(f"/api/v1/runs/{run['id']}/metrics/batch", json={"metrics": batch})
    assert resp.status_code == 204, resp.text
    points = client.get(f"/api/v1/runs/{run['id']}/metrics/loss/history").json()["points"]
    assert [(p["step"], p["timestamp"], p["value"]) for p in points] == [
        (0, 300, 0.9),
        (1, 150, 0.4),
        (1, 200, 0.5),
        (2, 100, 0.3),
    ]
    assert get_run(client, run["id"])["metrics"] == {"loss": 0.3, "lr": 0.01}


def test_latest_value_is_the_highest_step_not_the_last_logged(client):
    run = create_run(client)
    url = f"/api/v1/runs/{run['id']}/metrics"
    client.post(url, json={"key": "f1", "value": 0.8, "step": 5, "timestamp": 1})
    client.post(url, json={"key": "f1", "value": 0.1, "step": 2, "timestamp": 99})
    assert get_run(client, run["id"])["metrics"]["f1"] == 0.8
    # same step: the newer timestamp wins
    client.post(url, json={"key": "f1", "value": 0.85, "step": 5, "timestamp": 2})
    assert get_run(client, run["id"])["metrics"]["f1"] == 0.85
    client.post(url, json={"key": "f1", "value": 0.2, "step": 5, "timestamp": 0})
    assert get_run(client, run["id"])["metrics"]["f1"] == 0.85
    # every value is kept in the history
    history = client.get(f"/api/v1/runs/{run['id']}/metrics/f1/history").json()["points"]
    assert sorted(p["value"] for p in history) == [0.1, 0.2, 0.8, 0.85]


def test_latest_value_within_one_batch(client):
    run = create_run(client)
    batch = [
        {"key": "m", "value": 3.0, "step": 3, "timestamp": 1},
        {"key": "m", "value": 9.0, "step": 1, "timestamp": 5},
    ]
    client.post(f"/api/v1/runs/{run['id']}/metrics/batch", json={"metrics": batch})
    assert get_run(client, run["id"])["metrics"]["m"] == 3.0


def test_integer_metric_values_are_numbers(client):
    run = create_run(client)
    resp = client.post(f"/api/v1/runs/{run['id']}/metrics", json={"key": "n", "value": 7})
    assert resp.status_code == 204
    assert get_run(client, run["id"])["metrics"] == {"n": 7.0}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("NaN", math.nan), ("Infinity", math.inf), ("-Infinity", -math.inf)],
)
def test_non_finite_metric_values_round_trip(client, value, expected):
    run = create_run(client)
    resp = client.post(
        f"/api/v1/runs/{run['id']}/metrics", json={"key": "m", "value": value, "step": 1}
    )
    assert resp.status_code == 204, resp.text
    latest = get_run(client, run["id"])["metrics"]["m"]
    point = client.get(f"/api/v1/runs/{run['id']}/metrics/m/history").json()["points"][0]
    for got in (latest, point["value"]):
        got = float(got)
        assert got == expected or (math.isnan(expected) and math.isnan(got))


@pytest.mark.parametrize(
    "value", ["abc", "", None, True, [1.0], {"v": 1}, "1.5", "nan", "inf"], ids=repr
)
def test_metric_value_that_is_not_a_number_is_422(client, value):
    run = create_run(client)
    url = f"/api/v1/runs/{run['id']}/metrics"
    client.post(url, json={"key": "acc", "value": 0.5})
    resp = client.post(url, json={"key": "acc", "value": value, "step": 9})
    assert_error(resp, 422, "invalid", field="value", contains="number")
    assert get_run(client, run["id"])["metrics"] == {"acc": 0.5}
    points = client.get(f"/api/v1/runs/{run['id']}/metrics/acc/history").json()["points"]
    assert [p["value"] for p in points] == [0.5]


def test_one_bad_metric_in_a_batch_stores_none_of_it(client):
    run = create_run(client)
    batch = [
        {"key": "a", "value": 1.0},
        {"key": "b", "value": "oops"},
        {"key": "c", "value": 3.0},
    ]
    resp = client.post(f"/api/v1/runs/{run['id']}/metrics/batch", json={"metrics": batch})
    assert_error(resp, 422, "invalid", field="metrics.1.value")
    assert get_run(client, run["id"])["metrics"] == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "", "value": 1.0}, "key"),
        ({"key": "a\nb", "value": 1.0}, "key"),
        ({"key": "k" * 251, "value": 1.0}, "key"),
        ({"key": "m", "value": 1.0, "step": 1.5}, "step"),
        ({"key": "m", "value": 1.0, "step": "3"}, "step"),
        ({"key": "m", "value": 1.0, "timestamp": "yesterday"}, "timestamp"),
        ({"value": 1.0}, "key"),
        ({"key": "m"}, "value"),
    ],
)
def test_malformed_metric_fields_are_422(client, body, field):
    run = create_run(client)
    resp = client.post(f"/api/v1/runs/{run['id']}/metrics", json=body)
    assert_error(resp, 422, "invalid", field=field)
    assert get_run(client, run["id"])["metrics"] == {}


def test_metrics_on_a_finished_run_are_still_accepted(client):
    # late metrics (evaluation after training) belong to the run they describe
    run = create_run(client)
    client.patch(f"/api/v1/runs/{run['id']}", json={"status": "FINISHED"})
    resp = client.post(f"/api/v1/runs/{run['id']}/metrics", json={"key": "late", "value": 1})
    assert resp.status_code == 204
    assert get_run(client, run["id"])["metrics"] == {"late": 1.0}


def test_history_of_an_unknown_key_is_empty(client):
    run = create_run(client)
    resp = client.get(f"/api/v1/runs/{run['id']}/metrics/none/history")
    assert resp.json() == {"key": "none", "points": []}


# -- tags ----------------------------------------------------------------------------------------
def test_tags_set_overwrite_and_delete(client):
    run = create_run(client, tags={"a": "1"})
    url = f"/api/v1/runs/{run['id']}/tags"
    assert client.post(url, json={"tags": {"a": "2", "b": "x"}}).status_code == 204
    assert get_run(client, run["id"])["tags"] == {"a": "2", "b": "x"}
    assert client.delete(f"{url}/a").status_code == 204
    assert get_run(client, run["id"])["tags"] == {"b": "x"}
    assert_error(client.delete(f"{url}/a"), 404, "not_found", field="key")
    assert get_run(client, run["id"])["tags"] == {"b": "x"}


def test_tag_values_must_be_text(client):
    run = create_run(client, tags={"a": "1"})
    resp = client.post(f"/api/v1/runs/{run['id']}/tags", json={"tags": {"a": 2, "b": "ok"}})
    assert_error(resp, 422, "invalid", field="tags.a")
    assert get_run(client, run["id"])["tags"] == {"a": "1"}


def test_empty_tag_key_is_refused(client):
    run = create_run(client)
    resp = client.post(f"/api/v1/runs/{run['id']}/tags", json={"tags": {"": "x"}})
    assert_error(resp, 422, "invalid", field="tags")
    assert get_run(client, run["id"])["tags"] == {}
