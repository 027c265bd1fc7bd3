"""A loaded model: the original object behind a ``predict`` that checks its input first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from passerelle.registry import flavors
from passerelle.registry.package import verify_package
from passerelle.registry.signature import validate_input


class LoadedModel:
    """Predicts like the original object, after validating input against the signature."""

    def __init__(self, model: Any, manifest: dict[str, Any], uri: str = "") -> None:
        self.model = model
        self.manifest = manifest
        self.uri = uri
        self.signature: dict[str, Any] | None = manifest.get("signature")
        self.schema_verdicts: dict[Any, list[dict[str, str]]] = {}  # see validate_input

    def __repr__(self) -> str:
        return f"<LoadedModel {self.manifest.get('model_class')} from {self.uri or 'a folder'}>"

    def _frame(self, data: Any, extra: str) -> Any:
        if self.signature is None:
            return data
        return validate_input(
            data, self.signature, extra=extra, cache=self.schema_verdicts
        ).to_pandas()

    def predict(self, data: Any, *, extra_columns: str = "reject") -> Any:
        """Validate ``data`` (a DataFrame, Arrow table or records), then predict."""
        return self.model.predict(self._frame(data, extra_columns))

    def predict_proba(self, data: Any, *, extra_columns: str = "reject") -> Any:
        if not self.manifest.get("predict_proba"):
            raise AttributeError(f"{self.manifest.get('model_class')} has no predict_proba")
        return self.model.predict_proba(self._frame(data, extra_columns))


def load_folder(
    folder: Path, expected_manifest_sha256: str | None = None, uri: str = ""
) -> LoadedModel:
    """Verify every file of a package folder, then (and only then) deserialise it."""
    manifest = verify_package(folder, expected_manifest_sha256)
    return LoadedModel(flavors.load(folder, manifest), manifest, uri)
