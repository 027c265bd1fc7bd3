"""Registry: log, register, alias and load back, embedded and against a server."""

from __future__ import annotations

import numpy as np
import pytest

import passerelle as psl
from passerelle.core.errors import Conflict, InvalidInput, NotFound
from passerelle.registry import service
from passerelle.registry.signature import SignatureError
from passerelle.sdk.client import Client


def log_and_register(client: Client, model, X, name: str = "churn") -> psl.ModelVersion:
    with psl.start_run(experiment="churn", client=client) as run:
        run.log_metric("f1", 0.8)
        run.log_dataset(X, name="train")
        uri = psl.log_model(model, "model", input_example=X.head(20))
    return psl.register_model(uri, name=name, client=client)


def test_round_trip_predicts_exactly_like_the_original(sdk_client, pipeline, churn_data, workdir):
    X, _ = churn_data
    v = log_and_register(sdk_client, pipeline, X)
    assert (v.version, v.status, v.flavor) == (1, "READY", "sklearn")
    assert v.metrics == {"f1": 0.8}
    assert v.lineage["data"][0]["name"] == "train"
    assert [c["name"] for c in v.signature["inputs"]] == ["age", "income", "plan"]
    psl.set_alias("churn", "champion", v.version, client=sdk_client)

    for uri in ("models:/churn@champion", "models:/churn/1", "models:/churn/latest", v.source_uri):
        loaded = psl.load_model(uri, client=sdk_client)
        np.testing.assert_array_equal(loaded.predict(X), pipeline.predict(X))
        np.testing.assert_array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))


def test_python_flavor_round_trip(sdk_client, marker_model, churn_data, workdir):
    X, _ = churn_data
    v = log_and_register(sdk_client, marker_model, X, name="rule")
    assert v.flavor == "python"
    loaded = psl.load_model("models:/rule/1", client=sdk_client)
    np.testing.assert_array_equal(loaded.predict(X), marker_model.predict(X))


def test_versions_never_renumbered_and_alias_history(
    embedded_client, pipeline, churn_data, workdir
):
    X, _ = churn_data
    for _ in range(3):
        log_and_register(embedded_client, pipeline, X)
    psl.set_alias("churn", "champion", 2, reason="better f1", client=embedded_client)
    psl.set_alias("churn", "champion", 3, reason="retrained", client=embedded_client)
    embedded_client.request("DELETE", "/api/v1/models/churn/versions/2")
    v4 = log_and_register(embedded_client, pipeline, X)
    assert v4.version == 4
    versions = embedded_client.request("GET", "/api/v1/models/churn/versions")
    assert [v["version"] for v in versions] == [4, 3, 1]
    history = embedded_client.request("GET", "/api/v1/models/churn/alias-history")
    assert [(h["from_version"], h["to_version"], h["reason"]) for h in history] == [
        (2, 3, "retrained"),
        (None, 2, "better f1"),
    ]
    assert history[0]["actor"] == "anonymous" and history[0]["at"] > 0
    assert psl.get_model_version("models:/churn@champion", client=embedded_client).version == 3


def test_delete_refused_while_in_use(app, embedded_client, pipeline, churn_data, workdir):
    X, _ = churn_data
    log_and_register(embedded_client, pipeline, X)

    def guard(session, version):
        return "deployed on endpoint churn" if version.version == 1 else None

    service.DELETE_GUARDS.append(guard)
    try:
        with pytest.raises(Conflict, match="deployed on endpoint churn"):
            embedded_client.request("DELETE", "/api/v1/models/churn/versions/1")
    finally:
        service.DELETE_GUARDS.remove(guard)
    assert psl.get_model_version("models:/churn/1", client=embedded_client).version == 1


def test_bad_input_names_the_cause_and_changes_nothing(sdk_client, pipeline, churn_data, workdir):
    X, _ = churn_data
    v = log_and_register(sdk_client, pipeline, X)
    before = sdk_client.request("GET", "/api/v1/models/churn/versions")

    with pytest.raises(NotFound, match=r"run '0+' not found") as exc:
        psl.register_model("runs:/" + "0" * 32 + "/model", name="churn", client=sdk_client)
    assert exc.value.field == "run_id"
    with pytest.raises(InvalidInput, match="no model package") as exc:
        psl.register_model(f"runs:/{v.source_run_id}/nowhere", name="churn", client=sdk_client)
    assert exc.value.field == "source"
    with pytest.raises(InvalidInput, match="unsupported model source"):
        psl.register_model("s3://bucket/model", name="churn", client=sdk_client)
    with pytest.raises(NotFound, match="no version 7") as exc:
        psl.set_alias("churn", "champion", 7, client=sdk_client)
    assert exc.value.field == "version"
    with pytest.raises(InvalidInput):
        psl.set_alias("churn", "42", 1, client=sdk_client)
    with pytest.raises(NotFound, match="no alias 'ghost'"):
        psl.load_model("models:/churn@ghost", client=sdk_client)
    with pytest.raises(NotFound, match="model 'nobody' not found"):
        psl.load_model("models:/nobody/1", client=sdk_client)

    assert sdk_client.request("GET", "/api/v1/models/churn/versions") == before
    assert sdk_client.request("GET", "/api/v1/models/churn")["aliases"] == {}


def test_prediction_input_validated_against_signature(
    embedded_client, pipeline, churn_data, workdir
):
    X, _ = churn_data
    log_and_register(embedded_client, pipeline, X)
    model = psl.load_model("models:/churn/1", client=embedded_client)
    with pytest.raises(SignatureError) as exc:
        model.predict(X.drop(columns=["age"]))
    assert exc.value.details == [{"column": "age", "problem": "missing"}]
    with pytest.raises(SignatureError) as exc:
        model.predict(X.assign(income=X["income"].astype(str), plan=1))
    assert {d["column"] for d in exc.value.details} == {"income", "plan"}
    with pytest.raises(SignatureError, match="extra: unexpected column"):
        model.predict(X.assign(extra=1))
    dropped = model.predict(X.assign(extra=1), extra_columns="drop")
    np.testing.assert_array_equal(dropped, pipeline.predict(X))
    # integers are accepted where floats are expected, never the reverse
    np.testing.assert_array_equal(
        model.predict(X.assign(income=X["income"].round().astype(int))),
        pipeline.predict(X.assign(income=X["income"].round())),
    )
    with pytest.raises(SignatureError, match="age: expected integer, got float"):
        model.predict(X.assign(age=X["age"] + 0.5))


@pytest.mark.parametrize("alias", ["has space", "x" * 101, "7", "latest", "-dash"])
def test_bad_alias_names_refused(embedded_client, pipeline, churn_data, workdir, alias):
    X, _ = churn_data
    log_and_register(embedded_client, pipeline, X)
    with pytest.raises(InvalidInput) as exc:
        psl.set_alias("churn", alias, 1, client=embedded_client)
    assert exc.value.field == "alias"
    assert embedded_client.request("GET", "/api/v1/models/churn")["aliases"] == {}


def test_bad_model_name_refused_on_register(embedded_client, pipeline, churn_data, workdir):
    X, _ = churn_data
    v = log_and_register(embedded_client, pipeline, X)
    with pytest.raises(InvalidInput) as exc:
        psl.register_model(v.source_uri, name='odd"<b>name', client=embedded_client)
    assert exc.value.field == "name"
    assert [m["name"] for m in embedded_client.request("GET", "/api/v1/models")] == ["churn"]
