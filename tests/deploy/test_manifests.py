"""The Kubernetes manifests under ``deploy/`` render, match the Kubernetes API schemas and keep
their promises: probes on the health routes, resources, unprivileged pods, settings that exist.

Rendering uses a real kustomize, offline: ``kustomize build`` or ``kubectl kustomize`` (kubectl
1.21+, which embeds kustomize v4+). Without one, the rendering tests skip and say so; the checks
of the files themselves still run. Objects are validated with ``kubernetes-validate`` (schemas
bundled in the package) in strict mode, so a misspelt field fails, against the oldest and the
newest Kubernetes version it knows.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from kubernetes_validate import utils as kv
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from passerelle.cli.main import app as cli_app
from passerelle.core.health import router as health_router
from passerelle.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZATIONS = {"base": DEPLOY / "base", "production": DEPLOY / "overlays" / "production"}
SECRET_EXAMPLE = DEPLOY / "overlays" / "production" / "secret.example.yaml"
SCHEMA_VERSIONS = ("1.25.0", kv.latest_version())
PLACEHOLDER = "CHANGE-ME"
SERVER_COMMAND = ["passerelle", "server", "--host", "0.0.0.0", "--port", "5050"]
SERVER_PORT = 5050

SETTING_ENV_NAMES = {f"PASSERELLE_{name.upper()}": name for name in Settings.model_fields}
SECRET_SETTINGS = {
    f"PASSERELLE_{name.upper()}"
    for name, field in Settings.model_fields.items()
    if "SecretStr" in repr(field.annotation)
}
SECRET_LOOKING = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|ACCESS_KEY|API_KEY|ADMIN_KEY")
NEEDS_KUSTOMIZE_4 = (
    "kustomize 4+ or kubectl 1.21+ (Debian's kubernetes-client, kubectl 1.20 with kustomize "
    "v2.0.3, is too old for these kustomizations)"
)


# -- rendering -----------------------------------------------------------------------------------
def _major(version: str) -> int:
    found = re.search(r"v?(\d+)\.\d+", version)
    return int(found.group(1)) if found else 0


def _version_output(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout + done.stderr


@functools.cache
def renderer() -> tuple[list[str] | None, str]:
    """The command that renders a kustomization folder, or None and why there is none."""
    found: list[str] = []
    kustomize = shutil.which("kustomize")
    if kustomize:
        version = _version_output([kustomize, "version"]).strip()
        if _major(version) >= 4:
            return [kustomize, "build"], f"kustomize {version}"
        found.append(f"kustomize {version or '(version unknown)'}")
    kubectl = shutil.which("kubectl")
    if kubectl:
        output = _version_output([kubectl, "version", "--client", "-o", "json"])
        try:
            embedded = json.loads(output).get("kustomizeVersion", "")
        except ValueError:
            embedded = ""
        if _major(embedded) >= 4:
            return [kubectl, "kustomize"], f"kubectl kustomize ({embedded})"
        found.append(f"kubectl with kustomize {embedded or 'v2 or older'}")
    seen = f"found only {', '.join(found)}" if found else "neither kustomize nor kubectl on PATH"
    return None, f"cannot render the kustomizations offline: {seen}; install {NEEDS_KUSTOMIZE_4}"


@functools.cache
def _render(name: str) -> tuple[dict[str, Any], ...]:
    command, description = renderer()
    if command is None:
        pytest.skip(description)
    done = subprocess.run(
        [*command, str(KUSTOMIZATIONS[name])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{description} failed on {name}:\n{done.stderr}"
    objects = tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)
    assert objects, f"{description} rendered nothing for {name}"
    return objects


def render(name: str) -> list[dict[str, Any]]:
    """A fresh copy of the rendered objects, so that a test may not change another's."""
    return copy.deepcopy(list(_render(name)))


@pytest.fixture(params=list(KUSTOMIZATIONS))
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_templates(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict]]:
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield obj, obj["spec"]["template"]
    # CronJobs nest the template one level deeper.
    for obj in of_kind(objects, "CronJob"):
        yield obj, obj["spec"]["jobTemplate"]["spec"]["template"]


def containers(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict, dict]]:
    """(where, pod spec, container) for every container and init container."""
    for owner, template in pod_templates(objects):
        spec = template["spec"]
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            yield f"{owner['kind']}/{owner['metadata']['name']}/{c['name']}", spec, c


def server(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(
        o for o in of_kind(objects, "Deployment") if o["metadata"]["name"].endswith("server")
    )


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_port(container: dict[str, Any], port: int | str) -> int:
    """The number a probe or a Service's targetPort names, by number or by port name."""
    if isinstance(port, int):
        return port
    named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    assert port in named, f"port {port!r} is not a port of container {container['name']}"
    return named[port]


UNITS = {
    "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}  # fmt: skip


def quantity(value: str | int | float) -> float:
    """A Kubernetes resource quantity ("250m", "2Gi", 1) as a number."""
    found = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert found and found.group(2) in ("", *UNITS), f"not a quantity: {value!r}"
    return float(found.group(1)) * UNITS.get(found.group(2), 1)


def kustomization(name: str) -> dict[str, Any]:
    return yaml.safe_load((KUSTOMIZATIONS[name] / "kustomization.yaml").read_text())


def secret_example() -> dict[str, Any]:
    return yaml.safe_load(SECRET_EXAMPLE.read_text())


def configmap_data(objects: list[dict[str, Any]]) -> dict[str, str]:
    return one(objects, "ConfigMap")["data"]


# -- the rendering and the schemas ----------------------------------------------------------------
@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_kustomizations_render_the_expected_objects(name: str) -> None:
    kinds = sorted(o["kind"] for o in render(name))
    expected = [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    if name == "production":
        expected = sorted([*expected, "Namespace"])
    assert kinds == expected


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_every_object_matches_the_kubernetes_schema(name: str, version: str) -> None:
    errors = []
    for obj in render(name):
        try:
            kv.validate(obj, version, strict=True)
        except (kv.ValidationError, kv.SchemaNotFoundError) as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_the_secret_example_matches_the_kubernetes_schema(version: str) -> None:
    kv.validate(secret_example(), version, strict=True)


def test_strict_validation_refuses_a_misspelt_field() -> None:
    """The schema check is not a formality: a typo in a field name fails it."""
    deployment = server(render("base"))
    spec = deployment["spec"]["template"]["spec"]["containers"][0]
    spec["readinesProbe"] = spec.pop("readinessProbe")
    with pytest.raises(kv.ValidationError, match="readinesProbe"):
        kv.validate(deployment, SCHEMA_VERSIONS[-1], strict=True)


# -- the files ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_every_manifest_file_is_part_of_its_kustomization(name: str) -> None:
    spec = kustomization(name)
    used = {*spec.get("resources", [])}
    used |= {p["path"] for p in spec.get("patches", []) if "path" in p}
    used |= {env for gen in spec.get("configMapGenerator", []) for env in gen.get("envs", [])}
    folder = KUSTOMIZATIONS[name]
    files = {p.name for p in folder.iterdir() if p.suffix in (".yaml", ".yml", ".env")}
    unused = files - used - {"kustomization.yaml", SECRET_EXAMPLE.name}
    assert not unused, f"files of {folder.relative_to(ROOT)} that nothing uses: {sorted(unused)}"
    for entry in used:
        assert (folder / entry).exists(), f"{name} names {entry}, which does not exist"


def test_the_secret_example_is_never_applied() -> None:
    for name in KUSTOMIZATIONS:
        listed = yaml.safe_dump(kustomization(name))
        assert SECRET_EXAMPLE.name not in listed, f"{name} would apply the placeholder Secret"


def test_the_secret_example_holds_placeholders_only() -> None:
    secret = secret_example()
    assert secret["kind"] == "Secret" and secret["type"] == "Opaque"
    assert "data" not in secret, "use stringData with placeholders, never encoded values"
    values = secret["stringData"]
    assert values, "the example names no key"
    assert all(v == PLACEHOLDER for v in values.values()), values
    unknown = [k for k in values if k.startswith("PASSERELLE_") and k not in SETTING_ENV_NAMES]
    assert not unknown, f"not settings: {unknown}"
    # The server needs the bootstrap key, the database password and the bucket credentials.
    assert {"PASSERELLE_ADMIN_KEY", "PGPASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= (
        values.keys()
    )


def test_the_placeholder_admin_key_is_refused_by_the_server() -> None:
    """Applied unchanged, the example cannot start a server with a key anyone can read here."""
    with pytest.raises(ValidationError, match="at least 24 characters"):
        Settings(admin_key=secret_example()["stringData"]["PASSERELLE_ADMIN_KEY"])


def test_the_secret_example_is_the_one_the_server_reads() -> None:
    deployment = yaml.safe_load((KUSTOMIZATIONS["base"] / "deployment.yaml").read_text())
    env_from = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    secret_refs = [e["secretRef"]["name"] for e in env_from if "secretRef" in e]
    assert secret_refs == [secret_example()["metadata"]["name"]]
    assert secret_example()["metadata"]["namespace"] == kustomization("production")["namespace"]


def test_the_health_routes_the_probes_call_exist() -> None:
    paths = {route.path for route in health_router.routes}
    assert {"/healthz", "/readyz"} <= paths


def test_the_server_command_takes_the_flags_the_manifests_pass() -> None:
    command = typer.main.get_command(cli_app)
    serve = command.commands["server"]  # type: ignore[attr-defined]
    flags = {opt for param in serve.params for opt in getattr(param, "opts", [])}
    passed = {arg for arg in SERVER_COMMAND[2:] if arg.startswith("--")}
    assert passed <= flags


# -- the server's pods ---------------------------------------------------------------------------
def test_the_container_runs_the_server_on_its_port(objects: list[dict[str, Any]]) -> None:
    container = server(objects)["spec"]["template"]["spec"]["containers"][0]
    assert [*container["command"], *container["args"]] == SERVER_COMMAND
    assert container_port(container, "http") == SERVER_PORT


def test_every_container_has_probes_on_the_health_routes(objects: list[dict[str, Any]]) -> None:
    checked = 0
    for where, _, container in containers(objects):
        probes = {kind: container.get(f"{kind}Probe") for kind in ("readiness", "liveness")}
        assert probes["readiness"], f"{where}: no readiness probe"
        assert probes["liveness"], f"{where}: no liveness probe"
        assert probes["readiness"]["httpGet"]["path"] == "/readyz", where
        assert probes["liveness"]["httpGet"]["path"] == "/healthz", where
        startup = container.get("startupProbe")
        assert startup and startup["httpGet"]["path"] == "/healthz", f"{where}: no startup probe"
        for probe in (*probes.values(), startup):
            assert container_port(container, probe["httpGet"]["port"]) == SERVER_PORT, where
        # Start-up (migrations, waiting for the lock) may take minutes, not seconds.
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, where
        checked += 1
    assert checked, "no container found"


def test_every_container_has_requests_and_limits(objects: list[dict[str, Any]]) -> None:
    for where, _, container in containers(objects):
        resources = container.get("resources", {})
        for resource in ("cpu", "memory"):
            request = resources.get("requests", {}).get(resource)
            limit = resources.get("limits", {}).get(resource)
            assert request is not None and limit is not None, f"{where}: {resource} unbounded"
            assert quantity(request) <= quantity(limit), f"{where}: {resource} request > limit"


def test_pods_run_unprivileged(objects: list[dict[str, Any]]) -> None:
    for where, pod, container in containers(objects):
        pod_context = pod.get("securityContext", {})
        context = container.get("securityContext", {})
        assert pod_context.get("runAsNonRoot") is True, f"{where}: may run as root"
        assert context.get("runAsNonRoot") is not False, where
        user = context.get("runAsUser", pod_context.get("runAsUser"))
        assert user is not None and user != 0, f"{where}: runs as user {user}"
        assert context.get("allowPrivilegeEscalation") is False, where
        assert context.get("privileged") is not True, where
        assert context.get("readOnlyRootFilesystem") is True, where
        assert context.get("capabilities", {}).get("drop") == ["ALL"], where
        assert not context.get("capabilities", {}).get("add"), where
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
        assert seccomp.get("type") == "RuntimeDefault", f"{where}: no seccomp profile"


def test_the_writable_folders_are_volumes(objects: list[dict[str, Any]]) -> None:
    """With a read-only root, the home (spool) and /tmp must be mounted volumes."""
    home = configmap_data(objects)["PASSERELLE_HOME"]
    for where, pod, container in containers(objects):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
        for path in (home, "/tmp"):
            assert path in mounts, f"{where}: {path} is not mounted"
            assert not mounts[path].get("readOnly"), f"{where}: {path} is read-only"
            assert "emptyDir" in volumes[mounts[path]["name"]], f"{where}: {path} not an emptyDir"


def test_the_service_account_mounts_no_token(objects: list[dict[str, Any]]) -> None:
    account = one(objects, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    for owner, template in pod_templates(objects):
        spec = template["spec"]
        assert spec.get("serviceAccountName") == account["metadata"]["name"], owner["kind"]
        assert spec.get("automountServiceAccountToken") is False, owner["kind"]


def test_a_rolling_update_never_lowers_capacity(objects: list[dict[str, Any]]) -> None:
    strategy = server(objects)["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] in (0, "0%")
    assert strategy["rollingUpdate"]["maxSurge"] not in (0, "0%")


def test_replicas_spread_across_nodes(objects: list[dict[str, Any]]) -> None:
    template = server(objects)["spec"]["template"]
    labels, spec = template["metadata"]["labels"], template["spec"]
    spreads = [
        c
        for c in spec.get("topologySpreadConstraints", [])
        if c["topologyKey"] == "kubernetes.io/hostname"
        and matches(c["labelSelector"]["matchLabels"], labels)
    ]
    anti = spec.get("affinity", {}).get("podAntiAffinity", {})
    preferred = anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])
    terms = [
        *anti.get("requiredDuringSchedulingIgnoredDuringExecution", []),
        *[t["podAffinityTerm"] for t in preferred],
    ]
    anti_terms = [
        t
        for t in terms
        if t["topologyKey"] == "kubernetes.io/hostname"
        and matches(t["labelSelector"]["matchLabels"], labels)
    ]
    assert spreads or anti_terms, "nothing spreads the server's pods across nodes"


def test_the_disruption_budget_covers_the_server_and_lets_nodes_drain(
    objects: list[dict[str, Any]],
) -> None:
    deployment = server(objects)
    budget = one(objects, "PodDisruptionBudget")["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert matches(budget["selector"]["matchLabels"], labels)
    floor = one(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"]
    if "maxUnavailable" in budget:
        assert budget["maxUnavailable"] not in (0, "0%"), "a drain could never evict a pod"
    else:
        assert budget["minAvailable"] < floor, "a drain could never evict a pod"


def test_the_autoscaler_targets_the_server(objects: list[dict[str, Any]]) -> None:
    deployment = server(objects)
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert spec["minReplicas"] == deployment["spec"]["replicas"], (
        "the Deployment's replicas and the autoscaler's floor disagree: each apply would "
        "resize the Deployment before the autoscaler corrects it"
    )
    assert 2 <= spec["minReplicas"] <= spec["maxReplicas"]
    cpu = [
        m["resource"]["target"]
        for m in spec["metrics"]
        if m["type"] == "Resource" and m["resource"]["name"] == "cpu"
    ]
    assert cpu and cpu[0]["type"] == "Utilization" and 0 < cpu[0]["averageUtilization"] <= 100


def test_the_service_selects_the_server_pods(objects: list[dict[str, Any]]) -> None:
    service = one(objects, "Service")["spec"]
    assert service.get("type", "ClusterIP") == "ClusterIP"
    selected = [
        (owner, template)
        for owner, template in pod_templates(objects)
        if matches(service["selector"], template["metadata"]["labels"])
    ]
    assert [owner["metadata"]["name"] for owner, _ in selected] == [
        server(objects)["metadata"]["name"]
    ]
    container = selected[0][1]["spec"]["containers"][0]
    (port,) = service["ports"]
    assert port["port"] == 80
    assert container_port(container, port["targetPort"]) == SERVER_PORT


def test_no_service_variable_collides_with_a_setting(objects: list[dict[str, Any]]) -> None:
    """Kubernetes gives pods ``<SERVICE>_PORT=tcp://...`` variables for every Service of the
    namespace (unless ``enableServiceLinks: false``): a Service named ``passerelle`` would set
    ``PASSERELLE_PORT`` in every pod there and break the CLI and the SDK."""
    for svc in of_kind(objects, "Service"):
        prefix = svc["metadata"]["name"].upper().replace("-", "_")
        names = {f"{prefix}_SERVICE_HOST", f"{prefix}_SERVICE_PORT", f"{prefix}_PORT"}
        for port in svc["spec"]["ports"]:
            proto, number = port.get("protocol", "TCP"), port["port"]
            base = f"{prefix}_PORT_{number}_{proto}"
            names |= {base, f"{base}_PROTO", f"{base}_PORT", f"{base}_ADDR"}
            if port.get("name"):
                names.add(f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}")
        assert not names & SETTING_ENV_NAMES.keys(), sorted(names & SETTING_ENV_NAMES.keys())
    for owner, template in pod_templates(objects):
        assert template["spec"].get("enableServiceLinks") is False, owner["metadata"]["name"]


# -- settings ------------------------------------------------------------------------------------
def test_settings_come_from_the_configmap_then_the_secret(objects: list[dict[str, Any]]) -> None:
    configmap = one(objects, "ConfigMap")["metadata"]["name"]
    for where, _, container in containers(objects):
        sources = [
            ("configmap", e["configMapRef"]["name"])
            if "configMapRef" in e
            else ("secret", e["secretRef"]["name"])
            for e in container["envFrom"]
        ]
        # The last source wins a key both define: the Secret may override the ConfigMap.
        expected = [("configmap", configmap), ("secret", secret_example()["metadata"]["name"])]
        assert sources == expected, where
        assert not any(e.get("configMapRef", {}).get("optional") for e in container["envFrom"])


def test_every_passerelle_key_of_the_configmap_is_a_setting(
    objects: list[dict[str, Any]],
) -> None:
    keys = [k for k in configmap_data(objects) if k.startswith("PASSERELLE_")]
    assert keys
    unknown = [k for k in keys if k not in SETTING_ENV_NAMES]
    assert not unknown, f"not fields of passerelle.core.settings.Settings: {unknown}"


def test_the_configmap_is_a_valid_scale_out_configuration(
    objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in configmap_data(objects).items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.auth_required
    assert make_url(settings.resolved_database_url).get_backend_name() == "postgresql"
    assert settings.resolved_artifact_root.startswith("s3://")
    assert settings.s3_endpoint_url


def test_the_configmap_holds_no_secret(objects: list[dict[str, Any]]) -> None:
    data = configmap_data(objects)
    assert not SECRET_SETTINGS & data.keys(), "secret settings belong in the Secret"
    assert not [k for k in data if SECRET_LOOKING.search(k)], "secret-looking keys"
    for key, value in data.items():
        if "://" in value and "@" in value:
            assert make_url(value).password is None, f"{key} carries a password"
    secret_values = set(secret_example()["stringData"].values())
    assert not [k for k, v in data.items() if any(s in v for s in secret_values)]
    assert not set(secret_example()["stringData"]) & data.keys()


# -- the production overlay ----------------------------------------------------------------------
def test_the_base_runs_the_default_image() -> None:
    container = server(render("base"))["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "passerelle:latest"


def test_the_production_overlay_pins_image_replicas_and_sizes() -> None:
    spec = kustomization("production")
    base, production = server(render("base")), server(render("production"))
    (image,) = spec["images"]
    container = production["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{image['newName']}:{image['newTag']}"
    assert image["newTag"] != "latest"
    (replicas,) = spec["replicas"]
    assert replicas["name"] == production["metadata"]["name"]
    assert production["spec"]["replicas"] == replicas["count"] > base["spec"]["replicas"]
    base_resources = base["spec"]["template"]["spec"]["containers"][0]["resources"]
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            assert quantity(container["resources"][kind][resource]) > quantity(
                base_resources[kind][resource]
            ), f"{kind}.{resource} is not larger in production"


def test_production_lives_in_a_restricted_namespace() -> None:
    objects = render("production")
    namespace = one(objects, "Namespace")
    name = namespace["metadata"]["name"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == name, obj["kind"]


def test_a_settings_change_rolls_the_pods() -> None:
    """The ConfigMap's name carries a hash of its content, so new settings mean new pods."""
    names = {n: one(render(n), "ConfigMap")["metadata"]["name"] for n in KUSTOMIZATIONS}
    assert all(re.fullmatch(r"passerelle-config-[a-z0-9]{10}", n) for n in names.values())
    assert names["base"] != names["production"]


# -- the guide -----------------------------------------------------------------------------------
def _env_keys(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line.split("=", 1)[0] for line in lines if line and not line.startswith("#")]


def test_the_guide_documents_every_setting_and_secret_key() -> None:
    guide = (ROOT / "docs" / "kubernetes.md").read_text()
    keys = {
        *_env_keys(KUSTOMIZATIONS["base"] / "settings.env"),
        *_env_keys(KUSTOMIZATIONS["production"] / "settings.env"),
        *secret_example()["stringData"],
    }
    missing = sorted(k for k in keys if f"`{k}`" not in guide)
    assert not missing, f"docs/kubernetes.md does not mention {missing}"


def test_the_guide_gives_the_production_scaling_range() -> None:
    guide = (ROOT / "docs" / "kubernetes.md").read_text()
    patch = yaml.safe_load((KUSTOMIZATIONS["production"] / "autoscaling.yaml").read_text())
    assert (
        f"{patch['spec']['minReplicas']} to {patch['spec']['maxReplicas']} in production" in guide
    )
