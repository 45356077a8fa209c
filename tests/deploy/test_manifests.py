"""The Kubernetes manifests are valid against the Kubernetes API's schemas and name only real
settings; compose names only real settings too. (No cluster or Docker engine runs here.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES = "1.30.0"  # the oldest release we support; every field used exists there and since
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def walk(node: Any) -> list[dict[str, Any]]:
    """Every mapping inside `node`, depth first."""
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += walk(value)
    elif isinstance(node, list):
        for value in node:
            found += walk(value)
    return found


def setting_names(docs: list[dict[str, Any]]) -> set[str]:
    """Every TASKSGODZILLA_ variable the documents set (env lists and ConfigMap data)."""
    names = {m["name"] for doc in docs for m in walk(doc) if isinstance(m.get("name"), str) and "value" in m}
    names |= {m["name"] for doc in docs for m in walk(doc) if "valueFrom" in m}
    for doc in docs:
        if doc.get("kind") == "ConfigMap":
            names |= set(doc.get("data", {}))
        for service in (doc.get("services") or {}).values():  # compose
            names |= set(service.get("environment") or {})
    return {name for name in names if name.startswith(ENV_PREFIX)}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
@pytest.mark.parametrize("version", [KUBERNETES, kubernetes_validate.latest_version()])
def test_each_manifest_is_valid_strictly(path, version):
    for doc in documents(path):
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any unknown or wrong field


def test_the_kustomization_lists_every_manifest_but_the_example_secret():
    (kustomization,) = documents(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in MANIFESTS} - {"secret.example.yaml"}


def test_manifests_and_compose_name_only_real_settings():
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    docs = [doc for path in MANIFESTS for doc in documents(path)]
    docs += documents(ROOT / "deploy" / "compose.yaml")
    used = setting_names(docs)
    assert {"TASKSGODZILLA_DATABASE_URL", "TASKSGODZILLA_RUN_WORKER"} <= used
    assert used <= known, sorted(used - known)


def test_a_misspelt_setting_is_seen():
    doc = {"kind": "ConfigMap", "data": {"TASKSGODZILLA_RUN_WORKERS": "false"}}
    assert setting_names([doc]) == {"TASKSGODZILLA_RUN_WORKERS"}


def test_secrets_referenced_are_in_the_example_secret():
    (secret,) = documents(K8S / "secret.example.yaml")
    refs = [
        m["secretKeyRef"]
        for path in MANIFESTS
        for doc in documents(path)
        for m in walk(doc)
        if "secretKeyRef" in m
    ]
    required = {
        ref["key"] for ref in refs if ref["name"] == secret["metadata"]["name"] and not ref.get("optional")
    }
    assert required
    assert required <= set(secret["stringData"]), sorted(required - set(secret["stringData"]))


def test_the_api_is_probed_on_health_and_runs_no_jobs():
    (deployment, _service) = documents(K8S / "api.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["TASKSGODZILLA_RUN_WORKER"] == "false"
