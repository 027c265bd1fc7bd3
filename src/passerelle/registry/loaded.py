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
        # Class probabilities are logged with every prediction of a classifier (see serve).
        self.has_proba = bool(manifest.get("predict_proba"))
        classes = getattr(model, "classes_", None)
        self.classes: np.ndarray | None = None if classes is None else np.asarray(classes)
        self._labels_from_proba: bool | None = None if self.classes is not None else False

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

    def serve(self, data: Any) -> tuple[Any, np.ndarray | None]:
        """Labels and, for a classifier with ``predict_proba``, the class probabilities, which
        the inference log keeps for monitoring (ROC AUC, log loss, performance estimated while
        labels are pending).

        Most classifiers' ``predict`` is the class of highest probability. That is verified on
        the first call, by calling both and comparing; from then on one ``predict_proba`` call
        gives both. A model whose labels differ (a support vector machine's Platt scaling)
        keeps being asked both.
        """
        if not self.has_proba:
            return self.model.predict(data), None
        if self._labels_from_proba:
            assert self.classes is not None
            proba = np.asarray(self.model.predict_proba(data), dtype=np.float64)
            return self.classes[proba.argmax(axis=1)], proba
        labels = self.model.predict(data)
        try:
            proba = np.asarray(self.model.predict_proba(data), dtype=np.float64)
        except Exception:  # not a classifier after all (a pipeline ending in a regressor)
            self.has_proba = False
            return labels, None
        if proba.ndim != 2 or len(proba) != len(labels):
            self.has_proba = False
            return labels, None
        if self._labels_from_proba is None:
            assert self.classes is not None
            self._labels_from_proba = proba.shape[1] == len(self.classes) and bool(
                np.array_equal(self.classes[proba.argmax(axis=1)], np.asarray(labels))
            )
        return labels, proba

    def proba_keys(self, width: int) -> list[str]:
        """The name of each probability column: the class labels, or their positions."""
        if self.classes is not None and len(self.classes) == width:
            return [_label_text(c) for c in self.classes.tolist()]
        return [str(i) for i in range(width)]

    def predict_matrix(self, matrix: np.ndarray) -> tuple[Any, np.ndarray | None]:
        """Predict from the matrix of the numeric fast path (``matrix_plan`` is set).

        A scikit-learn estimator fitted on a DataFrame only uses the column names to check
        them, so a matrix in the signature's order gives the same answer at a fraction of the
        cost. That is verified on the first call, by predicting both ways and comparing; a
        model that needs the names (a column transformer that selects by name) or answers
        differently keeps getting the DataFrame.
        """
        assert self.matrix_plan is not None
        if self._takes_matrix:
            return self.serve(matrix)
        frame = self.matrix_plan.frame(matrix)
        expected = self.serve(frame)
        if self._takes_matrix is None:
            warnings.filterwarnings("ignore", message=_NAMES_WARNING, category=UserWarning)
            try:
                direct = self.model.predict(matrix)
                self._takes_matrix = bool(
                    np.array_equal(np.asarray(direct), np.asarray(expected[0]))
                )
            except Exception:  # the model needs the DataFrame
                self._takes_matrix = False
        return expected

    def predict_proba(self, data: Any, *, extra_columns: str = "reject") -> Any:
        if not self.manifest.get("predict_proba"):
            raise AttributeError(f"{self.manifest.get('model_class')} has no predict_proba")
        return self.model.predict_proba(self._frame(data, extra_columns))


def _label_text(value: Any) -> str:
    """A class label as text, one spelling per class: ``1`` for 1, 1.0 and True."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def load_folder(
    folder: Path, expected_manifest_sha256: str | None = None, uri: str = ""
) -> LoadedModel:
    """Verify every file of a package folder, then (and only then) deserialise it."""
    manifest = verify_package(folder, expected_manifest_sha256)
    return LoadedModel(flavors.load(folder, manifest), manifest, uri)
