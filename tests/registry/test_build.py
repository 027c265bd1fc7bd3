"""``passerelle build`` and the platform's own Dockerfile: their content, since no container
engine runs here. The base image, the pins, the copied package's hashes, the user, the health
check; both Dockerfiles linted by hadolint."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import passerelle as psl
from passerelle.registry.build import build_context
from passerelle.sdk.client import Client
from tests.cli._helpers import Invoke, make_invoke

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = {"UV_OFFLINE": "1"}
PIN = re.compile(r"^[a-z0-9][a-z0-9._-]*==[A-Za-z0-9.+!_-]+$")


def register(client: Client, model, X, name: str = "churn") -> psl.ModelVersion:
    with psl.start_run(experiment="churn", client=client) as run:
        run.log_metric("f1", 0.8)
        uri = psl.log_model(model, "model", input_example=X.head(20), run=run)
    return psl.register_model(uri, name=name, client=client)


@dataclass
class Built:
    home: Path
    cli: Invoke
    folder: Path
    version: dict
    result: dict


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, pipeline, churn_data) -> Built:
    """One registered model and its build context (building passerelle's wheel takes seconds)."""
    base = tmp_path_factory.mktemp("build")
    home = base / "home"
    client = Client(home=home)
    try:
        register(client, pipeline, churn_data[0])
        version = client.request("GET", "/api/v1/models/churn/versions/1")
    finally:
        client.close()
    cli = make_invoke(home)
    folder = base / "context"
    # passerelle's wheel is built by uv from this checkout, with no package index needed.
    result = cli("build", "models:/churn@latest", "-o", str(folder), "--json", env=OFFLINE)
    assert result.exit_code == 0, result.output
    return Built(home, cli, folder, version, json.loads(result.stdout))


def dockerfile(folder: Path) -> str:
    return (folder / "Dockerfile").read_text()


def instructions(text: str, keyword: str) -> list[str]:
    """The arguments of every ``keyword`` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [
        line.split(None, 1)[1]
        for line in joined.splitlines()
        if line.split(None, 1)[:1] == [keyword] and len(line.split(None, 1)) == 2
    ]


# -- the model's build context -----------------------------------------------------------------
def test_the_package_is_copied_with_the_registered_hashes(built: Built) -> None:
    package = built.folder / "model"
    files = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
    assert files == set(built.version["files"])
    for name, digest in built.version["files"].items():
        assert hashlib.sha256((package / name).read_bytes()).hexdigest() == digest, name
    manifest = (package / "passerelle-model.json").read_bytes()
    assert hashlib.sha256(manifest).hexdigest() == built.version["manifest_sha256"]
    # The image checks the package again while it is built, against the same digest.
    verify = [r for r in instructions(dockerfile(built.folder), "RUN") if "verify_package" in r]
    assert len(verify) == 1 and built.version["manifest_sha256"] in verify[0]


def test_the_base_image_matches_the_recorded_python(built: Built) -> None:
    manifest = json.loads((built.folder / "model" / "passerelle-model.json").read_text())
    major, minor = manifest["python_version"].split(".")[:2]
    assert instructions(dockerfile(built.folder), "FROM") == [f"python:{major}.{minor}-slim"]
    assert built.result["base_image"] == f"python:{major}.{minor}-slim"


def test_every_requirement_is_pinned(built: Built) -> None:
    lines = (built.folder / "requirements.lock").read_text().splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    assert pins and all(PIN.match(p) for p in pins), [p for p in pins if not PIN.match(p)]
    versions = dict(p.split("==") for p in pins)
    manifest = json.loads((built.folder / "model" / "passerelle-model.json").read_text())
    for requirement in manifest["requirements"]:  # the model's own pins, unchanged
        name, version = requirement.split("==")
        assert versions[name] == version
    # The server's dependencies and theirs, transitively.
    for name in ("fastapi", "starlette", "uvicorn", "sqlalchemy", "pydantic-core", "threadpoolctl"):
        assert name in versions, name
    # passerelle itself comes from the wheel in the context, installed without touching the pins.
    assert "passerelle" not in versions
    [wheel] = (built.folder / "wheels").glob("passerelle-*.whl")
    runs = instructions(dockerfile(built.folder), "RUN")
    assert any(f"--no-deps /opt/passerelle/wheels/{wheel.name}" in r for r in runs)
    assert any("--requirement /opt/passerelle/requirements.lock" in r for r in runs)


def test_the_image_runs_passerelle_as_a_non_root_user_with_a_health_check(built: Built) -> None:
    text = dockerfile(built.folder)
    [user] = instructions(text, "USER")
    assert user.split(":")[0] not in ("root", "0")
    [health] = instructions(text, "HEALTHCHECK")
    assert "http://127.0.0.1:8080/healthz" in health
    assert instructions(text, "EXPOSE") == ["8080"]
    assert instructions(text, "ENTRYPOINT") == ['["passerelle", "server"]']
    env = " ".join(instructions(text, "ENV"))
    assert 'PASSERELLE_MODEL_URI="models:/churn/1"' in env  # the alias was pinned to its version
    assert "PASSERELLE_MODEL_PATH=/opt/passerelle/model" in env
    assert 'io.passerelle.model.uri="models:/churn/1"' in " ".join(instructions(text, "LABEL"))


def test_the_cli_summary_names_the_image_and_the_next_step(built: Built, tmp_path: Path) -> None:
    [wheel] = (built.folder / "wheels").glob("passerelle-*.whl")
    out = built.cli(
        "build", "models:/churn/1", "-o", str(tmp_path / "ctx"), "--passerelle-wheel", str(wheel)
    )
    assert out.exit_code == 0, out.output
    assert "python:3." in out.stdout and "requirements.lock" in out.stdout
    assert f"next: docker build -t churn:1 {tmp_path / 'ctx'}" in out.stdout
    assert (tmp_path / "ctx" / "wheels" / wheel.name).read_bytes() == wheel.read_bytes()


def test_build_on_every_backend_with_a_given_wheel_and_base_image(
    built: Built, embedded_client, pipeline, churn_data, workdir, tmp_path
) -> None:
    register(embedded_client, pipeline, churn_data[0], name="rule")
    [wheel] = (built.folder / "wheels").glob("passerelle-*.whl")
    image = "python:3.11-slim@sha256:" + "0" * 64
    result = build_context(
        embedded_client,
        "models:/rule/1",
        tmp_path / "ctx",
        base_image=image,
        port=9000,
        passerelle_wheel=wheel,
    )
    text = dockerfile(tmp_path / "ctx")
    assert instructions(text, "FROM") == [image]
    assert instructions(text, "EXPOSE") == ["9000"]
    assert result.passerelle == f"wheel {wheel.name} (given)"


def test_refusals(built: Built, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    result = built.cli("build", "models:/churn/1", "-o", str(busy))
    assert result.exit_code == 1 and "exists and is not an empty folder" in result.stderr
    assert (busy / "keep.txt").read_text() == "mine"
    assert built.cli("build", "runs:/0123/model", "-o", str(tmp_path / "a")).exit_code == 2
    missing = built.cli("build", "models:/nope/1", "-o", str(tmp_path / "b"))
    assert missing.exit_code == 1 and "model 'nope' not found" in missing.stderr


def test_a_tampered_package_file_is_not_written(tmp_path: Path, pipeline, churn_data) -> None:
    home = tmp_path / "home"
    client = Client(home=home)
    try:
        version = register(client, pipeline, churn_data[0])
    finally:
        client.close()
    digest = version.files["model.skops"]
    blob = next((home / "artifacts" / "blobs").rglob(digest))
    raw = bytearray(blob.read_bytes())
    raw[10] ^= 0xFF
    blob.write_bytes(bytes(raw))
    out = tmp_path / "ctx"
    result = make_invoke(home)("build", "models:/churn/1", "-o", str(out))
    assert result.exit_code == 1
    assert "model.skops" in result.stderr
    assert not (out / "Dockerfile").exists()


# -- the platform's Dockerfile -----------------------------------------------------------------
def test_the_platform_dockerfile_is_multi_stage_locked_and_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = instructions(text, "FROM")
    assert len(stages) >= 3 and stages[0].startswith("ghcr.io/astral-sh/uv:")
    assert not any(s.split()[0].endswith(":latest") for s in stages)
    runs = instructions(text, "RUN")
    assert any("uv sync --frozen --no-dev" in r for r in runs)
    [user] = instructions(text, "USER")
    assert user.split(":")[0] not in ("root", "0")
    assert "/healthz" in instructions(text, "HEALTHCHECK")[0]
    assert instructions(text, "EXPOSE") == ["5050"]
    env = " ".join(instructions(text, "ENV"))
    for setting in ("PASSERELLE_HOME=", "PASSERELLE_HOST=0.0.0.0", "PASSERELLE_PORT=5050"):
        assert setting in env
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for folder in (".git", ".venv", ".passerelle", "tests"):
        assert folder in ignored
    for needed in ("pyproject.toml", "uv.lock", "README.md", "src"):
        assert needed not in ignored


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.skip("hadolint is not installed: uv sync (it is in the dev group)")
    return found


def test_hadolint_accepts_both_dockerfiles(built: Built) -> None:
    for path in (ROOT / "Dockerfile", built.folder / "Dockerfile"):
        out = subprocess.run([hadolint(), str(path)], capture_output=True, text=True)
        assert out.returncode == 0, f"{path}:\n{out.stdout}{out.stderr}"
