"""The model package format: a folder with ``passerelle-model.json`` and its payload.

The manifest names the flavor, the Python version, the requirements with versions, the signature,
the input example and the sha256 of every file. Loading checks every hash before anything is
deserialised; the registry also records the manifest's own sha256 when a version is registered, so
a package whose files changed after registration is refused, with the offending file named.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

from passerelle.core.errors import IntegrityFailure, InvalidInput

MANIFEST = "passerelle-model.json"
FORMAT_VERSION = 1
CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def package_files(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` except the manifest, with its sha256."""
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def write_manifest(folder: Path, **fields: Any) -> dict[str, Any]:
    """Hash every payload file and write the manifest last, so it describes the finished folder."""
    manifest = {
        "format_version": FORMAT_VERSION,
        "python_version": platform.python_version(),
        **fields,
        "files": package_files(folder),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return manifest


def parse_manifest(data: bytes, *, where: str = MANIFEST) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(f"{where} is not valid JSON", field="manifest") from None
    if not isinstance(manifest, dict):
        raise InvalidInput(f"{where} must hold a JSON object", field="manifest")
    for key in ("format_version", "flavor", "files"):
        if key not in manifest:
            raise InvalidInput(f"{where} lacks '{key}'", field="manifest")
    if manifest["format_version"] > FORMAT_VERSION:
        raise InvalidInput(
            f"{where} has format version {manifest['format_version']}; this passerelle reads "
            f"up to {FORMAT_VERSION}: upgrade passerelle",
            field="manifest",
        )
    files = manifest["files"]
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) == 64 for k, v in files.items()
    ):
        raise InvalidInput(f"{where} 'files' must map paths to sha256 digests", field="manifest")
    for name in files:
        parts = name.split("/")
        if name.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in name:
            raise InvalidInput(f"{where} lists an unsafe path {name!r}", field="manifest")
    return manifest


def verify_package(folder: Path, expected_manifest_sha256: str | None = None) -> dict[str, Any]:
    """Check the manifest (against the registry's record, when given) and every file's hash.

    Raises ``IntegrityFailure`` naming the first file that differs; reads no payload as Python.
    """
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise InvalidInput(
            f"{folder} is not a passerelle model package: no {MANIFEST}", field="model_uri"
        )
    data = manifest_path.read_bytes()
    if expected_manifest_sha256 and hashlib.sha256(data).hexdigest() != expected_manifest_sha256:
        raise IntegrityFailure(
            f"{MANIFEST} does not match the digest recorded when the version was registered",
            field=MANIFEST,
        )
    manifest = parse_manifest(data)
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise IntegrityFailure(f"package file '{name}' is missing", field=name)
        if sha256_file(path) != digest:
            raise IntegrityFailure(
                f"package file '{name}' changed since the package was written "
                "(sha256 mismatch): refusing to load it",
                field=name,
            )
    return manifest
