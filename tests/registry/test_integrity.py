"""A changed byte anywhere in a package stops the load before anything is deserialised."""

from __future__ import annotations

from pathlib import Path

import pytest

import passerelle as psl
from passerelle.core.errors import IntegrityFailure
from tests.registry.test_registry import log_and_register


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("target", ["model.pkl", "requirements.txt", "input_example.parquet"])
def test_tampered_blob_in_store_refused_naming_the_file(
    app, sdk_client, marker_model, churn_data, workdir, target
):
    X, _ = churn_data
    v = log_and_register(sdk_client, marker_model, X, name="rule")
    marker = Path(marker_model.marker)
    psl.load_model("models:/rule/1", client=sdk_client)
    assert marker.read_text() == "unpickled\n"  # the marker works
    marker.unlink()

    flip_byte(app.state.store.local_path(v.files[target]))
    with pytest.raises(IntegrityFailure, match=target) as exc:
        psl.load_model("models:/rule/1", client=sdk_client)
    assert exc.value.field == target
    assert not marker.exists()  # nothing was unpickled


@pytest.mark.parametrize("target", ["model.pkl", "requirements.txt", "passerelle-model.json"])
def test_tampered_local_folder_refused_naming_the_file(
    embedded_client, marker_model, churn_data, workdir, target
):
    X, _ = churn_data
    log_and_register(embedded_client, marker_model, X, name="rule")
    folder = psl.download_model("models:/rule/1", workdir / "pkg", client=embedded_client)
    marker = Path(marker_model.marker)
    flip_byte(folder / target)
    with pytest.raises(IntegrityFailure, match=target.replace(".", r"\.")):
        if target == "passerelle-model.json":
            # a rewritten manifest is caught against the digest the registry recorded
            from passerelle.registry.loaded import load_folder

            version = psl.get_model_version("models:/rule/1", client=embedded_client)
            load_folder(folder, version.manifest_sha256)
        else:
            psl.load_model(folder)
    assert not marker.exists()


def test_manifest_rewritten_with_matching_hashes_is_still_refused(
    app, embedded_client, marker_model, churn_data, workdir
):
    """Someone who edits a payload and fixes the manifest still fails the registry's record."""
    import json

    from passerelle.registry.loaded import load_folder
    from passerelle.registry.package import MANIFEST, package_files

    X, _ = churn_data
    log_and_register(embedded_client, marker_model, X, name="rule")
    folder = psl.download_model("models:/rule/1", workdir / "pkg", client=embedded_client)
    (folder / "requirements.txt").write_text("evil==1.0\n")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"] = package_files(folder)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    version = psl.get_model_version("models:/rule/1", client=embedded_client)
    with pytest.raises(IntegrityFailure, match=MANIFEST):
        load_folder(folder, version.manifest_sha256)
    assert not Path(marker_model.marker).exists()
