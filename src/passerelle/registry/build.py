"""``passerelle build``: a container build context that serves one registered model version.

The context holds everything an image needs and nothing it must fetch unpinned:

- ``model/``: the version's package, downloaded and verified against the manifest digest the
  registry recorded, so the image carries exactly the registered bytes (the Dockerfile checks
  them again at build time, so a context edited afterwards does not build);
- ``requirements.lock``: the model's pinned requirements (from its manifest) and everything
  passerelle's server needs, each pinned with ``==`` to the version installed where the context
  is written, which is a version known to work with this passerelle;
- ``wheels/``: passerelle itself when it is installed from a source checkout (built with
  ``uv build``) or given with ``--passerelle-wheel``; otherwise ``passerelle==VERSION`` is
  pinned in the lock and comes from the package index;
- ``Dockerfile``: a Python base image of the minor version the model was saved with, a non-root
  user, a health check on ``/healthz`` and ``passerelle server`` as the entry point.

No container engine is needed to write the context; any engine (docker, podman, buildah) builds it.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from passerelle import __version__
from passerelle.core.errors import InvalidInput
from passerelle.registry.package import MANIFEST, verify_package

if TYPE_CHECKING:
    from passerelle.sdk.client import Client

MODEL_DIR = "/opt/passerelle/model"
APP_USER_ID = 10001
DEFAULT_PORT = 8080


@dataclass
class BuildContext:
    """What ``build_context`` wrote, for the CLI to report."""

    folder: Path
    model_uri: str
    manifest_sha256: str
    python_version: str
    base_image: str
    requirements: list[str]
    passerelle: str
    port: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "model_uri": self.model_uri,
            "manifest_sha256": self.manifest_sha256,
            "python_version": self.python_version,
            "base_image": self.base_image,
            "requirements": self.requirements,
            "passerelle": self.passerelle,
            "port": self.port,
            "notes": self.notes,
        }


def python_minor(version: str) -> str:
    """``3.11.7`` -> ``3.11``; refuses anything that is not a CPython-style version."""
    parts = version.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise InvalidInput(f"cannot read a Python version from {version!r}", field="python")
    return ".".join(parts[:2])


def default_base_image(python_version: str) -> str:
    return f"python:{python_minor(python_version)}-slim"


# -- requirements ------------------------------------------------------------------------------
def pinned_requirements(
    model_requirements: list[str], python_version: str, *, include_passerelle: bool
) -> tuple[list[str], list[str]]:
    """Every distribution the server and the model need, as sorted ``name==version`` lines.

    Walks the requirements of passerelle and of the model's own requirements through the
    installed distributions' metadata, evaluating environment markers for the image's Python
    (not this one's). The model's ``==`` pins win over what is installed here. Returns the lines
    and notes about anything that could not be pinned.
    """
    from packaging.markers import default_environment
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    env: dict[str, str] = dict(default_environment())
    env.update(python_version=python_minor(python_version), python_full_version=python_version)
    pins: dict[str, str] = {}
    notes: list[str] = []
    roots: list[Any] = [Requirement("passerelle")]
    for text in model_requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            raise InvalidInput(
                f"the model's manifest lists an invalid requirement {text!r}", field="requirements"
            ) from None
        exact = [s.version for s in req.specifier if s.operator in ("==", "===")]
        if exact:
            pins[canonicalize_name(req.name)] = exact[0]
        roots.append(req)
    seen: set[tuple[str, frozenset[str]]] = set()
    queue = list(roots)
    while queue:
        req = queue.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            if name not in pins:
                notes.append(f"{name} is needed but not installed here: pip will choose a version")
            continue
        if name in pins and pins[name] != dist.version:
            notes.append(f"{name}=={pins[name]} pinned by the model ({dist.version} here)")
        pins.setdefault(name, dist.version)
        extras = ["", *sorted(req.extras)]
        for text in dist.requires or []:
            dep = Requirement(text)
            if dep.marker is None or any(dep.marker.evaluate({**env, "extra": e}) for e in extras):
                queue.append(dep)
    if include_passerelle:
        pins["passerelle"] = __version__
    else:
        pins.pop("passerelle", None)
    return [f"{n}=={v}" for n, v in sorted(pins.items())], notes


# -- passerelle itself -------------------------------------------------------------------------
def passerelle_source() -> Path | None:
    """The source checkout passerelle is installed from (editable or local path), if any."""
    try:
        raw = metadata.distribution("passerelle").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not raw:
        return None
    info = json.loads(raw)
    url = urlparse(info.get("url", ""))
    if url.scheme != "file" or "dir_info" not in info:
        return None
    path = Path(unquote(url.path))
    return path if (path / "pyproject.toml").is_file() else None


def build_wheel(source: Path, dest: Path) -> Path:
    """``uv build --wheel`` of a passerelle checkout into ``dest``; returns the wheel."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        out = subprocess.run(
            ["uv", "build", "--wheel", "--quiet", "--out-dir", str(dest), str(source)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        out = None
        error = str(exc)
    else:
        error = (out.stderr or out.stdout).strip()[-2000:]
    wheels = sorted(dest.glob("passerelle-*.whl"))
    if out is None or out.returncode != 0 or not wheels:
        raise InvalidInput(
            f"cannot build a wheel of passerelle from {source} with uv ({error}): give one with "
            "--passerelle-wheel",
            field="passerelle_wheel",
        )
    return wheels[-1]


# -- the context -------------------------------------------------------------------------------
def render_dockerfile(
    *,
    model_uri: str,
    model: str,
    version: int,
    flavor: str,
    manifest_sha256: str,
    base_image: str,
    wheel: str | None,
    port: int,
) -> str:
    """The model image's Dockerfile; every value comes from the registry's record."""
    uid = APP_USER_ID
    install_wheel = (
        f"COPY wheels/{wheel} /opt/passerelle/wheels/{wheel}\n"
        f"RUN pip install --no-cache-dir --no-deps /opt/passerelle/wheels/{wheel} \\\n"
        " && pip check\n"
        if wheel
        else "RUN pip check\n"
    )
    verify = (
        "from pathlib import Path; from passerelle.registry.package import verify_package; "
        f"verify_package(Path('{MODEL_DIR}'), '{manifest_sha256}')"
    )
    health = (
        "import urllib.request; "
        f"urllib.request.urlopen('http://127.0.0.1:{port}/healthz', timeout=4)"
    )
    return f"""\
# syntax=docker/dockerfile:1
# Serves {model_uri} with passerelle's server. Written by `passerelle build`: the package in
# model/ is the registered one (sha256 of its manifest below), checked again while building.
FROM {base_image}

LABEL org.opencontainers.image.title="{model}" \\
      org.opencontainers.image.version="{version}" \\
      org.opencontainers.image.description="passerelle model {model_uri}" \\
      io.passerelle.model.uri="{model_uri}" \\
      io.passerelle.model.flavor="{flavor}" \\
      io.passerelle.model.manifest-sha256="{manifest_sha256}"

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PASSERELLE_HOME=/var/lib/passerelle \\
    PASSERELLE_HOST=0.0.0.0 \\
    PASSERELLE_PORT={port} \\
    PASSERELLE_MODEL_URI="{model_uri}" \\
    PASSERELLE_MODEL_PATH={MODEL_DIR} \\
    PASSERELLE_MODEL_MANIFEST_SHA256={manifest_sha256}

RUN groupadd --system --gid {uid} passerelle \\
 && useradd --system --uid {uid} --gid passerelle --home-dir /var/lib/passerelle \\
    --create-home --shell /usr/sbin/nologin passerelle

# Every requirement is pinned with ==: the image installs what the lock says, nothing newer.
COPY requirements.lock /opt/passerelle/requirements.lock
RUN pip install --no-cache-dir --requirement /opt/passerelle/requirements.lock
{install_wheel}
# The package belongs to root and is read-only for the server's user.
COPY model/ {MODEL_DIR}/
RUN python -c "{verify}"

USER {uid}:{uid}
WORKDIR /var/lib/passerelle
EXPOSE {port}
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \\
  CMD ["python", "-c", "{health}"]
ENTRYPOINT ["passerelle", "server"]
"""


DOCKERIGNORE = """\
**/__pycache__
**/*.pyc
**/*.part
"""


def build_context(
    client: Client,
    model_uri: str,
    out: Path,
    *,
    base_image: str | None = None,
    port: int = DEFAULT_PORT,
    passerelle_wheel: Path | None = None,
) -> BuildContext:
    """Write the build context of ``model_uri`` into ``out`` (which must be new or empty)."""
    from passerelle.sdk.registry import download_model, get_model_version

    version = get_model_version(model_uri, client=client)
    pinned = f"models:/{version.model}/{version.version}"
    if version.status != "READY":
        raise InvalidInput(f"{pinned} is {version.status}, not READY", field="model_uri")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"{out} exists and is not an empty folder", field="output")
    if passerelle_wheel is not None and not passerelle_wheel.is_file():
        raise InvalidInput(f"no wheel at {passerelle_wheel}", field="passerelle_wheel")
    out.mkdir(parents=True, exist_ok=True)
    package = out / "model"
    download_model(pinned, package, client=client)
    manifest = verify_package(package, version.manifest_sha256)
    on_disk = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
    if on_disk != set(version.files):
        raise InvalidInput(f"the downloaded package of {pinned} is incomplete", field="model_uri")
    recorded_env = (version.lineage or {}).get("environment") or {}
    python_version = manifest.get("python_version") or recorded_env.get("python_version")
    early_notes = []
    if not python_version:
        python_version = platform.python_version()
        early_notes.append(f"no Python version recorded: assuming this one ({python_version})")
    image = base_image or default_base_image(python_version)

    wheel_name = None
    if passerelle_wheel is not None:
        (out / "wheels").mkdir()
        wheel_name = passerelle_wheel.name
        shutil.copy2(passerelle_wheel, out / "wheels" / wheel_name)
        how = f"wheel {wheel_name} (given)"
    elif (source := passerelle_source()) is not None:
        wheel_name = build_wheel(source, out / "wheels").name
        how = f"wheel {wheel_name} (built from {source})"
    else:
        how = f"passerelle=={__version__} from the package index"
    requirements, notes = pinned_requirements(
        list(manifest.get("requirements") or []),
        python_version,
        include_passerelle=wheel_name is None,
    )
    header = (
        f"# {pinned}: the model's requirements (from {MANIFEST}) and passerelle's server's,\n"
        f"# pinned for Python {python_minor(python_version)}. Written by `passerelle build`.\n"
    )
    (out / "requirements.lock").write_text(header + "\n".join(requirements) + "\n")
    (out / "Dockerfile").write_text(
        render_dockerfile(
            model_uri=pinned,
            model=version.model,
            version=version.version,
            flavor=version.flavor,
            manifest_sha256=version.manifest_sha256,
            base_image=image,
            wheel=wheel_name,
            port=port,
        )
    )
    (out / ".dockerignore").write_text(DOCKERIGNORE)
    return BuildContext(
        folder=out,
        model_uri=pinned,
        manifest_sha256=version.manifest_sha256,
        python_version=python_version,
        base_image=image,
        requirements=requirements,
        passerelle=how,
        port=port,
        notes=early_notes + notes,
    )
