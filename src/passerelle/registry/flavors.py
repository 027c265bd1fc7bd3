"""Flavors: how a model object becomes package files, and back.

- ``sklearn``: estimators and pipelines, persisted with skops, which rebuilds objects from an
  allow-list of types instead of executing pickle bytecode. The types beyond skops' defaults are
  recorded in the manifest at save time and nothing else is accepted on load.
- ``python``: any object with ``predict(dataframe)`` (and optionally ``predict_proba``), persisted
  with cloudpickle. Unpickling runs code, so these packages must only come from a registry you
  trust; their bytes are verified against the registry's record before they are unpickled.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

from passerelle.core.errors import InvalidInput

SKLEARN_FILE = "model.skops"
PYTHON_FILE = "model.pkl"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _requirements(*dists: str) -> list[str]:
    return [f"{d}=={v}" for d in dists if (v := _version(d))]


def is_sklearn(model: Any) -> bool:
    return any(c.__module__.startswith("sklearn.") for c in type(model).__mro__)


def save(model: Any, folder: Path, flavor: str | None = None) -> dict[str, Any]:
    """Write the payload into ``folder``; return the manifest fields of the flavor."""
    flavor = flavor or ("sklearn" if is_sklearn(model) else "python")
    if not callable(getattr(model, "predict", None)):
        raise InvalidInput(
            f"a {type(model).__name__} has no predict method: it cannot be packaged",
            field="model",
        )
    has_proba = callable(getattr(model, "predict_proba", None))
    if flavor == "sklearn":
        import skops.io as sio

        path = folder / SKLEARN_FILE
        sio.dump(model, path)
        return {
            "flavor": "sklearn",
            "payload": SKLEARN_FILE,
            "skops_trusted_types": sorted(sio.get_untrusted_types(file=path)),
            "requirements": _requirements("scikit-learn", "skops", "numpy", "scipy", "pandas"),
            "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
            "predict_proba": has_proba,
        }
    if flavor == "python":
        import cloudpickle

        (folder / PYTHON_FILE).write_bytes(cloudpickle.dumps(model))
        return {
            "flavor": "python",
            "payload": PYTHON_FILE,
            "requirements": _requirements("cloudpickle", "numpy", "pandas"),
            "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
            "predict_proba": has_proba,
        }
    raise InvalidInput(f"unknown flavor '{flavor}': use 'sklearn' or 'python'", field="flavor")


def load(folder: Path, manifest: dict[str, Any]) -> Any:
    """Deserialise a package whose files were verified by the caller."""
    flavor = manifest["flavor"]
    if flavor == "sklearn":
        import skops.io as sio

        return sio.load(folder / manifest["payload"], trusted=manifest["skops_trusted_types"])
    if flavor == "python":
        import cloudpickle

        return cloudpickle.loads((folder / manifest["payload"]).read_bytes())
    raise InvalidInput(f"unknown flavor '{flavor}' in the package manifest", field="flavor")
