"""kubeflow/serving/: the TF Serving manifests parse and say what the deployment promises."""

from __future__ import annotations

import re
from pathlib import Path

import watchnext
from watchnext.core.config import Config

import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

SERVING = Path(watchnext.__file__).parent / "kubeflow" / "serving"
MODEL = Config().serving.model_name


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    """Every Kubernetes object in the folder, by kind."""
    objects: dict[str, dict] = {}
    for path in sorted(SERVING.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc.get("kind") != "Kustomization":
                assert doc["kind"] not in objects, f"two {doc['kind']}s"
                objects[doc["kind"]] = doc
    assert set(objects) == {"ConfigMap", "Deployment", "Service"}
    return objects


@pytest.fixture(scope="module")
def container(manifests: dict) -> dict:
    (only,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def test_every_field_is_a_kubernetes_api_field(manifests: dict) -> None:
    """A misspelt field would be dropped by the client's models, so the round trip would differ."""
    import json

    from kubernetes.client import ApiClient

    class Response:  # what ApiClient.deserialize reads
        def __init__(self, obj: dict) -> None:
            self.data = json.dumps(obj)

    api = ApiClient()
    for kind, obj in manifests.items():
        model = api.deserialize(Response(obj), f"V1{kind}")
        assert api.sanitize_for_serialization(model) == obj, kind


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((SERVING / "kustomization.yaml").read_text(encoding="utf-8"))
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in SERVING.glob("*.yaml") if p.name != "kustomization.yaml")


def test_the_image_is_a_pinned_tf_serving_2_16(container: dict) -> None:
    assert re.fullmatch(r"tensorflow/serving:2\.16\.\d+", container["image"]), container["image"]


def test_runs_as_non_root_with_a_read_only_root_filesystem(manifests: dict, container: dict) -> None:
    pod = manifests["Deployment"]["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]


def test_requests_and_limits_are_set(container: dict) -> None:
    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert set(resources[kind]) == {"cpu", "memory"}, kind
    assert _memory_bytes(resources["requests"]["memory"]) <= _memory_bytes(resources["limits"]["memory"])


def test_the_model_volume_is_mounted_read_only(manifests: dict, container: dict) -> None:
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["models"]["readOnly"] is True
    volumes = {v["name"]: v for v in manifests["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"]["readOnly"] is True
    assert mounts["config"]["readOnly"] is True
    assert volumes["config"]["configMap"]["name"] == manifests["ConfigMap"]["metadata"]["name"]


def test_probes_ask_the_rest_api_for_the_model(container: dict) -> None:
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == f"/v1/models/{MODEL}" and get["port"] == "http", probe
    # Liveness waits longer: a pod still loading its model is not ready, but not dead.
    delay = {probe: container[probe]["initialDelaySeconds"] for probe in ("readinessProbe", "livenessProbe")}
    assert delay["livenessProbe"] > delay["readinessProbe"]


def test_ports_and_service(manifests: dict, container: dict) -> None:
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"grpc": 8500, "http": 8501}
    flags = dict(a.split("=", 1) for a in container["args"])
    assert flags["--port"] == "8500" and flags["--rest_api_port"] == "8501"
    service = manifests["Service"]["spec"]
    assert {p["name"]: (p["port"], p["targetPort"]) for p in service["ports"]} == {
        "grpc": (8500, "grpc"), "http": (8501, "http")}
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    assert manifests["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_models_config_parses_and_points_at_the_mount(manifests: dict, container: dict) -> None:
    text = manifests["ConfigMap"]["data"]["models.config"]
    server_config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    (model,) = server_config.model_config_list.config
    assert model.name == MODEL and model.model_platform == "tensorflow"
    assert model.model_version_policy.latest.num_versions == 2
    flags = dict(a.split("=", 1) for a in container["args"])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    config_dir, config_file = flags["--model_config_file"].rsplit("/", 1)
    assert mounts[config_dir]["name"] == "config" and config_file in manifests["ConfigMap"]["data"]
    assert int(flags["--model_config_file_poll_wait_seconds"]) > 0
    # base_path lies inside the read-only models mount.
    (models_mount,) = [m for m in container["volumeMounts"] if m["name"] == "models"]
    assert model.base_path == f"{models_mount['mountPath']}/{MODEL}"


def test_the_readme_docker_command_serves_the_same_model_and_image(container: dict) -> None:
    readme = (SERVING / "README.md").read_text(encoding="utf-8")
    (command,) = re.findall(r"docker run [^`]*?tensorflow/serving:\S+", readme, flags=re.S)
    assert container["image"] in command
    assert f"source=\"$(realpath <output>/serving/{MODEL})\",target=/models/{MODEL},readonly" in command
    assert f"-e MODEL_NAME={MODEL}" in command
    assert "-p 8500:8500" in command and "-p 8501:8501" in command


def _memory_bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, scale in units.items():
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * scale
    return int(quantity)


def test_docker_compose_serves_with_the_deployments_image_flags_and_model_config(manifests, container):
    """`docker compose up` (the README's local TF Serving) runs what the Deployment runs."""
    compose = yaml.safe_load((SERVING.parents[1] / "docker-compose.yml").read_text(encoding="utf-8"))
    (service,) = compose["services"].values()
    assert service["image"] == container["image"]
    assert service["command"] == container["command"] + container["args"]
    assert service["entrypoint"] == []  # the binary, not the image's single-model script
    (mount,) = service["volumes"]
    assert mount["target"] == "/models" and mount["read_only"] is True
    (config_use,) = service["configs"]
    flag = next(a for a in container["args"] if a.startswith("--model_config_file="))
    assert config_use["target"] == flag.split("=", 1)[1]
    content = compose["configs"][config_use["source"]]["content"]
    assert content == manifests["ConfigMap"]["data"]["models.config"]
    ports = {int(p.split(":")[1]) for p in service["ports"]}
    assert ports == {p["containerPort"] for p in container["ports"]}
