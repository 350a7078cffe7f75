"""deploy/docker-compose.yml, checked without a Docker engine: every long-running service has a
health check and waits for healthy dependencies, only the public paths are published (edge:
/webhooks/ and /socket.io/; the console), Rasa's API port is never published, no secret has a
default value, and the security settings stay in place."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.deploy_static import DEPLOY

COMPOSE = DEPLOY / "docker-compose.yml"
EDGE_CONF = DEPLOY / "compose" / "edge.conf"
PUBLISHED = {"edge", "console"}
ONE_SHOT = {"init"}  # others wait for it with service_completed_successfully
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_every_long_running_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test != ["NONE"] and not service["healthcheck"].get("disable"), name


def test_dependencies_are_waited_for_until_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on without a condition"
        for dep, spec in depends.items():
            want = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert spec.get("condition") == want, f"{name} -> {dep}"
            assert dep in services


def test_only_the_public_paths_are_published(compose: dict[str, Any]) -> None:
    published = {n for n, s in compose["services"].items() if s.get("ports") or s.get("expose")}
    assert published == PUBLISHED
    assert "ports" not in compose["services"]["rasa"]
    assert compose["services"]["edge"]["image"].startswith("nginx:")
    conf = EDGE_CONF.read_text(encoding="utf-8")
    public = re.search(r"server \{\s*listen 5005;(.*?)\n\}", conf, re.S).group(1)
    locations = re.findall(r"location\s+(\S+)\s*\{", public)
    assert sorted(locations) == ["/", "/socket.io/", "/webhooks/"]
    catch_all = re.search(r"location / \{(.*?)\}", public, re.S).group(1)
    assert "return 404" in catch_all and "proxy_pass" not in catch_all
    assert "ip_hash" in conf  # socket.io affinity
    assert "proxy_next_upstream error;" in conf  # retries on refused connections only
    assert "$proxy_add_x_forwarded_for" in conf  # client address for the per-IP limits
    volume = compose["services"]["edge"]["volumes"][0]
    assert volume.startswith("./compose/edge.conf:")


def test_no_secret_has_a_default(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for match in re.finditer(r"\$\{(\w+):?-", text):
        assert not SECRET_NAME.search(match.group(1)), f"default for {match.group(1)}"
    for name, service in compose["services"].items():
        for key, value in env_of(service).items():
            if SECRET_NAME.search(key):
                assert "${" in value and ":?" in value, f"{name}.{key} is not from the environment"


def test_security_settings_reach_rasa_and_the_app(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("rasa", "actions", "console"):
        env = env_of(services[name])
        for key in (
            "ASKAGENCY_CONVERSATION_SECRET",
            "ASKAGENCY_ACTION_SECRET",
            "ASKAGENCY_TRUSTED_PROXIES",
            "ASKAGENCY_RASA_TOKEN",
        ):
            assert key in env, f"{name} lacks {key}"
    command = services["rasa"]["command"]
    assert "bot.serve" in command and "--auth-token" not in command
    assert "--cors ${WIDGET_ORIGINS:?" in command
