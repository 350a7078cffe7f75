"""deploy/kubernetes/, checked without a cluster: every manifest validates against the
Kubernetes 1.37 schemas shipped in kubernetes-validate (strict: unknown fields are errors), and
the invariants that schemas cannot see hold: probes, secrets through secretKeyRef, an ingress
that routes only the public paths with socket.io affinity, network policies."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy_static import DEPLOY
from tests.services import unavailable

K8S = DEPLOY / "kubernetes"
K8S_VERSION = "1.37.0"
APP_PORTS = {"actions": 5055, "console": 8080, "analytics": 8081}
SECRET_ENV = re.compile(r"PASSWORD|SECRET|TOKEN|DATABASE_URL|AMQP_URL")


def manifests() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def objects() -> list[dict[str, Any]]:
    return [doc for path in manifests() for doc in documents(path)]


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects() if o["kind"] == kind}


def validator() -> Any:
    """kubernetes_validate; skips without it, fails under CI (tests/services.py)."""
    try:
        import kubernetes_validate
    except ImportError:
        unavailable("kubernetes-validate is not installed (pip install -e '.[test]')")
    return kubernetes_validate


@pytest.mark.parametrize("path", manifests(), ids=lambda p: p.name)
def test_manifest_validates_against_the_kubernetes_schema(path: Path) -> None:
    kubernetes_validate = validator()
    for doc in documents(path):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_schema_validation_can_fail() -> None:
    kubernetes_validate = validator()
    deployment = of_kind("Deployment")["actions"]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    expected = {p.name for p in manifests()} - {"secret.template.yaml"}
    assert set(kustomization["resources"]) == expected


def test_deployments_exist_with_services_for_what_is_called() -> None:
    deployments, services = of_kind("Deployment"), of_kind("Service")
    assert set(deployments) == {"rasa", "actions", "console", "analytics"}
    assert set(services) == {"rasa", "actions", "console"}
    for name, service in services.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()


@pytest.mark.parametrize("name", ["rasa", "actions", "console", "analytics"])
def test_probes_secrets_and_non_root(name: str) -> None:
    pod = of_kind("Deployment")[name]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    ready, live = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
    if name == "rasa":  # Rasa 3.6 has no /health or /ready; its root answers once loaded
        assert ready["path"] == live["path"] == "/"
    else:
        assert (ready["path"], live["path"]) == ("/ready", "/health")
        port = {p["name"]: p["containerPort"] for p in container["ports"]}[ready["port"]]
        assert port == APP_PORTS[name]
    secret_names = set()
    for env in container.get("env", []):
        if SECRET_ENV.search(env["name"]):
            assert "value" not in env, f"{name}: {env['name']} written in the manifest"
            ref = env["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "askagency-secrets"
            secret_names.add(ref["key"])
    template = of_kind("Secret")["askagency-secrets"]["stringData"]
    assert secret_names <= set(template), secret_names - set(template)
    config = of_kind("ConfigMap")["askagency-config"]["data"]
    assert not [k for k in config if SECRET_ENV.search(k) and "DATA_DIR" not in k]


def test_secret_template_holds_placeholders_only() -> None:
    template = of_kind("Secret")["askagency-secrets"]["stringData"]
    assert all("REPLACE_ME" in value for value in template.values())
    assert {"rasa-token", "action-secret", "conversation-secret"} <= set(template)


def test_ingress_routes_only_the_public_paths_with_socketio_affinity_over_tls() -> None:
    ingresses = of_kind("Ingress")
    routed: list[tuple[str, str]] = []
    bot: dict[str, Any] = {}
    for ingress in ingresses.values():
        assert ingress["spec"]["tls"], ingress["metadata"]["name"]
        for rule in ingress["spec"]["rules"]:
            assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
            for path in rule["http"]["paths"]:
                routed.append((path["backend"]["service"]["name"], path["path"]))
                if routed[-1][0] == "rasa":
                    bot = ingress
    rasa_paths = sorted(p for service, p in routed if service == "rasa")
    assert rasa_paths == ["/socket.io/", "/webhooks/"]
    assert {service for service, _ in routed} == {"rasa", "console"}
    annotations = bot["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert annotations["nginx.ingress.kubernetes.io/session-cookie-name"]


def test_network_policies_let_only_the_ingress_reach_rasa_and_only_rasa_reach_actions() -> None:
    policies = of_kind("NetworkPolicy")
    default = policies["default-deny-ingress"]["spec"]
    assert default["podSelector"] == {} and "ingress" not in default

    def sources(component: str) -> list[dict[str, Any]]:
        (policy,) = [
            p["spec"]
            for p in policies.values()
            if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component")
            == component
        ]
        return [peer for rule in policy["ingress"] for peer in rule["from"]]

    actions = sources("actions")
    assert actions == [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "askagency",
                    "app.kubernetes.io/component": "rasa",
                }
            }
        }
    ]
    rasa = sources("rasa")
    namespaces = [p["namespaceSelector"]["matchLabels"] for p in rasa if "namespaceSelector" in p]
    assert namespaces == [{"kubernetes.io/metadata.name": "ingress-nginx"}]
    pods = [
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for p in rasa
        if "namespaceSelector" not in p
    ]
    assert pods == ["console"]  # the console uses Rasa's HTTP API with the token
