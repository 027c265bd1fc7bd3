"""A loaded model: the original object behind a ``predict`` that checks its input first."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from passerelle.registry import flavors
from passerelle.registry.matrix import MatrixPlan
from passerelle.registry.package import verify_package
from passerelle.registry.signature import validate_input

# A scikit-learn model fitted on a DataFrame warns when it is given an array with the same
# columns in the same order; the matrix path checks the order itself (see predict_matrix).
_NAMES_WARNING = "X does not have valid feature names"


class LoadedModel:
    """Predicts like the original object, after validating input against the signature."""

    def __init__(self, model: Any, manifest: dict[str, Any], uri: str = "") -> None:
        self.model = model
        self.manifest = manifest
        self.uri = uri
        self.signature: dict[str, Any] | None = manifest.get("signature")
        self.schema_verdicts: dict[Any, list[dict[str, str]]] = {}  # see validate_input
        self.matrix_plan = MatrixPlan.from_signature(self.signature)
        # Whether this model predicts the same from the bare matrix as from the DataFrame:
        # None until the first matrix call finds out (see predict_matrix).
        self._takes_matrix: bool | None = None if manifest.get("flavor") == "sklearn" else False

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

    def predict_matrix(self, matrix: np.ndarray) -> Any:
        """Predict from the matrix of the numeric fast path (``matrix_plan`` is set).

        A scikit-learn estimator fitted on a DataFrame only uses the column names to check
        them, so a matrix in the signature's order gives the same answer at a fraction of the
        cost. That is verified on the first call, by predicting both ways and comparing; a
        model that needs the names (a column transformer that selects by name) or answers
        differently keeps getting the DataFrame.
        """
        assert self.matrix_plan is not None
        if self._takes_matrix:
            return self.model.predict(matrix)
        frame = self.matrix_plan.frame(matrix)
        expected = self.model.predict(frame)
        if self._takes_matrix is None:
            warnings.filterwarnings("ignore", message=_NAMES_WARNING, category=UserWarning)
            try:
                direct = self.model.predict(matrix)
                self._takes_matrix = bool(np.array_equal(np.asarray(direct), np.asarray(expected)))
            except Exception:  # the model needs the DataFrame
                self._takes_matrix = False
        return expected

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
