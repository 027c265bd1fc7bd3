"""Models in the SDK: ``log_model``, ``register_model``, ``set_alias``, ``load_model``."""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from passerelle.core.errors import IntegrityFailure, InvalidInput, PasserelleError
from passerelle.sdk.client import Client, default_client
from passerelle.sdk.runs import ActiveRun, active_run

MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+|latest))$")
RUN_URI = re.compile(r"^runs:/(?P<run_id>[0-9a-fA-F]{32})(?:/(?P<path>.*))?$")


@dataclass
class ModelVersion:
    """A registered version: its number, package digest, lineage, signature and aliases."""

    model: str
    version: int
    status: str
    source_uri: str
    source_run_id: str | None
    manifest_sha256: str
    flavor: str
    signature: dict[str, Any] | None
    lineage: dict[str, Any]
    metrics: dict[str, Any]
    aliases: list[str]
    files: dict[str, str] = field(repr=False)
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> ModelVersion:
        names = (
            "model",
            "version",
            "status",
            "source_uri",
            "source_run_id",
            "manifest_sha256",
            "flavor",
            "signature",
            "lineage",
            "metrics",
            "aliases",
            "files",
        )
        return cls(**{n: body[n] for n in names}, raw=body)

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.version}"


def log_model(
    model: Any,
    artifact_path: str = "model",
    *,
    input_example: Any = None,
    signature: dict[str, Any] | None = None,
    flavor: str | None = None,
    run: ActiveRun | None = None,
) -> str:
    """Package ``model`` into the active run's artifacts; return its ``runs:/`` URI.

    The signature is inferred from ``input_example`` (columns, types, nullability, levels)
    unless given; the example is kept in the package as Parquet.
    """
    from passerelle.registry import flavors
    from passerelle.registry.package import write_manifest
    from passerelle.registry.signature import infer_signature, to_table

    run = run or active_run()
    if run is None:
        raise RuntimeError("log_model needs an active run: call it inside start_run()")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "package"
        folder.mkdir()
        fields = flavors.save(model, folder, flavor)
        example_file = None
        if input_example is not None:
            import pyarrow.parquet as pq

            table = to_table(input_example)
            example_file = "input_example.parquet"
            pq.write_table(table, folder / example_file)
            if signature is None:
                output = model.predict(table.to_pandas())
                signature = infer_signature(table, output)
        (folder / "requirements.txt").write_text("\n".join(fields["requirements"]) + "\n")
        write_manifest(folder, **fields, signature=signature, input_example=example_file)
        run.log_artifacts(folder, artifact_path=artifact_path)
    return f"runs:/{run.id}/{artifact_path.strip('/')}"


def register_model(
    model_uri: str, name: str, *, description: str = "", client: Client | None = None
) -> ModelVersion:
    """Register the package at ``runs:/<run_id>/<path>`` as the next version of ``name``."""
    client = client or default_client()
    body = client.request(
        "POST",
        f"/api/v1/models/{name}/versions",
        json={"source": model_uri, "description": description},
    )
    return ModelVersion.from_api(body)


def set_alias(
    name: str, alias: str, version: int, *, reason: str = "", client: Client | None = None
) -> ModelVersion:
    """Point ``alias`` at ``version`` (recorded with who, when and why)."""
    client = client or default_client()
    body = client.request(
        "PUT", f"/api/v1/models/{name}/aliases/{alias}", json={"version": version, "reason": reason}
    )
    return ModelVersion.from_api(body)


def get_model_version(model_uri: str, *, client: Client | None = None) -> ModelVersion:
    """Resolve ``models:/name/3``, ``models:/name@alias`` or ``models:/name/latest``."""
    client = client or default_client()
    match = MODEL_URI.match(model_uri)
    if match is None:
        raise InvalidInput(
            f"not a registry URI: {model_uri!r} (models:/NAME/VERSION or models:/NAME@ALIAS)",
            field="model_uri",
        )
    name = match["name"]
    if match["alias"]:
        body = client.request("GET", f"/api/v1/models/{name}/aliases/{match['alias']}")
    elif match["version"] == "latest":
        body = client.request("GET", f"/api/v1/models/{name}/aliases/latest")
    else:
        body = client.request("GET", f"/api/v1/models/{name}/versions/{match['version']}")
    return ModelVersion.from_api(body)


def _download(client: Client, url: str, params: dict[str, str], dest: Path, name: str) -> None:
    try:
        client.download(url, params, dest)
    except (httpx.TransportError, PasserelleError) as exc:
        if isinstance(exc, PasserelleError) and getattr(exc, "status", 500) < 500:
            raise
        raise IntegrityFailure(
            f"package file '{name}' could not be read intact from the store: {exc}",
            field=name,
        ) from exc


def download_model(model_uri: str, dest: str | Path, *, client: Client | None = None) -> Path:
    """Fetch every file of a package into ``dest`` (verified again when loaded)."""
    client = client or default_client()
    dest = Path(dest)
    run_match = RUN_URI.match(model_uri)
    if run_match:
        prefix = (run_match["path"] or "").strip("/")
        for art in client.list_artifacts(run_match["run_id"], prefix or None):
            rel = art["path"][len(prefix) + 1 :] if prefix else art["path"]
            _download(
                client,
                f"/api/v1/runs/{run_match['run_id']}/artifacts/content",
                {"path": art["path"]},
                dest / rel,
                rel,
            )
        return dest
    version = get_model_version(model_uri, client=client)
    for rel in version.files:
        _download(
            client,
            f"/api/v1/models/{version.model}/versions/{version.version}/files",
            {"path": rel},
            dest / rel,
            rel,
        )
    return dest


def load_model(model_uri: str | Path, *, client: Client | None = None) -> Any:
    """Load ``models:/churn@champion``, ``models:/churn/3``, ``runs:/<id>/model`` or a folder.

    Every file is checked against the package manifest (and, for registered versions, the
    manifest against the digest recorded at registration) before anything is deserialised.
    """
    from passerelle.registry.loaded import load_folder

    if isinstance(model_uri, Path) or not str(model_uri).startswith(("models:/", "runs:/")):
        return load_folder(Path(model_uri), uri=str(model_uri))
    uri = str(model_uri)
    client = client or default_client()
    expected = None
    if uri.startswith("models:/"):
        expected = get_model_version(uri, client=client).manifest_sha256
    tmp = Path(tempfile.mkdtemp(prefix="passerelle-model-"))
    try:
        download_model(uri, tmp, client=client)
        return load_folder(tmp, expected, uri=uri)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
