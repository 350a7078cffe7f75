"""The launcher's process plan (embedded and scale profile, the environment its children get)
and the scale profile's round-robin proxy (deploy/proxy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from askagency.launcher import (
    EMBEDDED_ENDPOINTS,
    SCALE_ENDPOINTS,
    ScaleConfig,
    StackConfig,
    free_port,
    service_specs,
)
from deploy.proxy import create_app, parse_listen

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/askagency"


def _cfg(
    tmp_path: Path, scale: ScaleConfig | None, extra_env: dict[str, str] | None = None
) -> StackConfig:
    return StackConfig(
        data_dir=tmp_path,
        rasa_port=5005,
        action_port=5055,
        console_port=8080,
        rasa_token="t",
        model_path=tmp_path / "models",
        log_dir=tmp_path / "logs",
        with_console=False,
        scale=scale,
        extra_env=extra_env or {},
    )


def test_embedded_profile_is_unchanged(tmp_path: Path) -> None:
    specs = service_specs(_cfg(tmp_path, None))
    assert [s.name for s in specs] == ["actions", "analytics", "rasa"]
    rasa = specs[-1]
    assert (
        str(EMBEDDED_ENDPOINTS) in rasa.argv and rasa.argv[rasa.argv.index("--port") + 1] == "5005"
    )
    assert "--source" not in specs[1].argv
    assert "ASKAGENCY_DATABASE_URL" not in specs[0].env


def test_scale_profile_runs_replicas_behind_proxies(tmp_path: Path) -> None:
    scale = ScaleConfig(database_url=PG, rasa_ports=[7001, 7002, 7003], action_ports=[7101, 7102])
    specs = {s.name: s for s in service_specs(_cfg(tmp_path, scale))}
    assert list(specs) == [
        "actions-1",
        "actions-2",
        "actions-lb",
        "analytics",
        "rasa-1",
        "rasa-2",
        "rasa-3",
        "rasa-lb",
    ]
    for i, port in enumerate([7001, 7002, 7003], 1):
        argv = specs[f"rasa-{i}"].argv
        assert argv[argv.index("--port") + 1] == str(port)
        assert argv[argv.index("--endpoints") + 1] == str(SCALE_ENDPOINTS)
    # Channels and Rasa's action endpoint see one address each, as in the embedded profile.
    assert specs["rasa-lb"].argv[-7:] == [
        "--upstream",
        "http://127.0.0.1:7001",
        "--upstream",
        "http://127.0.0.1:7002",
        "--upstream",
        "http://127.0.0.1:7003",
        "--allow-all",  # internal (loopback): the console reaches Rasa's HTTP API through it
    ]
    assert specs["actions-lb"].argv[-6:] == [
        "--allow",
        "/webhook",
        "--allow",
        "/health",
        "--allow",
        "/ready",
    ]
    assert "127.0.0.1:5005" in specs["rasa-lb"].argv
    assert "127.0.0.1:5055" in specs["actions-lb"].argv
    env = specs["rasa-1"].env
    assert env["ASKAGENCY_ACTION_URL"] == "http://127.0.0.1:5055/webhook"
    assert env["ASKAGENCY_DATABASE_URL"] == PG and env["ASKAGENCY_PG_DB"] == "askagency_tracker"
    assert env["ASKAGENCY_REDIS_PORT"] == "6379" and env["ASKAGENCY_AMQP_QUEUE"]
    assert specs["analytics"].argv[-2:] == ["--source", "rabbitmq"]


def test_every_variable_of_the_scale_endpoints_file_is_set(tmp_path: Path) -> None:
    """Rasa stops at start-up on an unset ${VAR}: the launcher must provide each one."""
    import re

    lines = [
        ln for ln in SCALE_ENDPOINTS.read_text().splitlines() if not ln.lstrip().startswith("#")
    ]
    wanted = set(re.findall(r"\$\{(\w+)\}", "\n".join(lines)))
    scale = ScaleConfig(database_url=PG, rasa_ports=[1], action_ports=[2])
    env = next(s for s in service_specs(_cfg(tmp_path, scale)) if s.name == "rasa-1").env
    assert wanted and wanted <= set(env), wanted - set(env)


def test_scale_config_from_env_and_validation() -> None:
    cfg = ScaleConfig.from_env(
        3,
        1,
        environ={
            "ASKAGENCY_PG_HOST": "db",
            "ASKAGENCY_PG_PASSWORD": "pw",
            "ASKAGENCY_RABBITMQ_USER": "u",
        },
    )
    assert len(cfg.rasa_ports) == 3 and len(cfg.action_ports) == 1
    assert cfg.database_url == "postgresql+psycopg://postgres:pw@db:5432/askagency"
    assert cfg.amqp_url.startswith("amqp://u:guest@127.0.0.1:5672/")
    with pytest.raises(ValueError, match="lower-case"):
        ScaleConfig(database_url=PG, rasa_ports=[1], action_ports=[2], tracker_db="Bad-Name")
    with pytest.raises(ValueError, match="PostgreSQL"):
        ScaleConfig(database_url="sqlite:///x.db", rasa_ports=[1], action_ports=[2])


def _upstream(name: str, seen: list[str]) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        seen.append(name)
        body = await request.read()
        return web.json_response(
            {
                "upstream": name,
                "path": request.path_qs,
                "method": request.method,
                "body": body.decode(),
                "xff": request.headers.get("X-Forwarded-For"),
            },
            status=201 if request.method == "POST" else 200,
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def test_proxy_round_robins_and_passes_requests_through() -> None:
    seen: list[str] = []
    servers = [TestServer(_upstream(n, seen)) for n in ("a", "b")]
    for server in servers:
        await server.start_server()
    proxy = TestClient(TestServer(create_app([str(s.make_url("")) for s in servers])))
    await proxy.start_server()
    try:
        for i in range(4):
            resp = await proxy.post(f"/webhooks/rest/webhook?x={i}", data=f'{{"n": {i}}}')
            assert resp.status == 201
            data = await resp.json()
            assert data["path"] == f"/webhooks/rest/webhook?x={i}"
            assert data["body"] == f'{{"n": {i}}}' and data["xff"] == "127.0.0.1"
        assert seen in (["a", "b", "a", "b"], ["b", "a", "b", "a"])
        health = await (await proxy.get("/_proxy/health")).json()
        assert [u["requests"] for u in health["upstreams"]] == [2, 2]
    finally:
        await proxy.close()
        for server in servers:
            await server.close()


async def test_proxy_skips_an_upstream_that_refuses_and_reports_when_all_do() -> None:
    seen: list[str] = []
    live = TestServer(_upstream("live", seen))
    await live.start_server()
    dead = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    proxy = TestClient(TestServer(create_app([dead, str(live.make_url(""))])))
    await proxy.start_server()
    try:
        for _ in range(3):
            resp = await proxy.get("/health")
            assert resp.status == 200 and (await resp.json())["upstream"] == "live"
        health = await (await proxy.get("/_proxy/health")).json()
        assert health["upstreams"][0]["failures"] >= 1
        assert health["upstreams"][0]["available"] is False
    finally:
        await proxy.close()
        await live.close()
    all_dead = TestClient(TestServer(create_app([dead])))
    await all_dead.start_server()
    try:
        resp = await all_dead.post("/webhooks/rest/webhook", data="{}")
        assert resp.status == 502
        assert "no upstream accepted" in (await resp.json())["error"]
    finally:
        await all_dead.close()


def test_proxy_rejects_bad_arguments() -> None:
    import argparse

    assert parse_listen("127.0.0.1:5005") == ("127.0.0.1", 5005)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_listen("5005")
    with pytest.raises(ValueError, match="at least one upstream"):
        create_app([])


def test_scale_config_for_a_database_takes_the_server_from_its_url() -> None:
    url = "postgresql+psycopg://app:secret@db.internal:6543/askagency_app"
    scale = ScaleConfig.for_database(url, "askagency_tracker_x", "queue_x", replicas=3)
    assert (scale.pg_host, scale.pg_port, scale.pg_user, scale.pg_password) == (
        "db.internal",
        6543,
        "app",
        "secret",
    )
    assert (scale.database_url, scale.tracker_db, scale.amqp_queue) == (
        url,
        "askagency_tracker_x",
        "queue_x",
    )
    assert (len(scale.rasa_ports), len(scale.action_ports)) == (3, 3)


# The launcher bounds glibc's malloc arenas for its children (docs/scale.md, action-server
# memory), unless the operator set MALLOC_ARENA_MAX explicitly.


def test_children_get_two_malloc_arenas_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    specs = {s.name: s for s in service_specs(_cfg(tmp_path, None))}
    assert specs["actions"].env["MALLOC_ARENA_MAX"] == "2"
    assert {s.env.get("MALLOC_ARENA_MAX") for s in specs.values()} == {"2"}


def test_an_explicit_malloc_arena_value_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert service_specs(_cfg(tmp_path, None))[0].env["MALLOC_ARENA_MAX"] == "4"
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    cfg = _cfg(tmp_path, None, {"MALLOC_ARENA_MAX": "1"})
    assert service_specs(cfg)[0].env["MALLOC_ARENA_MAX"] == "1"


async def test_proxy_forwards_only_the_public_paths_of_rasa() -> None:
    """H3/L9: the proxy published on every host interface forwarded every path, so Rasa's HTTP
    API (transcripts, trigger_intent, DELETE /model), ``/`` and ``/version`` were public."""
    paths: list[str] = []

    async def record(request: web.Request) -> web.Response:
        paths.append(request.raw_path)
        return web.json_response({"ok": True})

    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", record)
    upstream = TestServer(upstream_app)
    await upstream.start_server()
    proxy = TestClient(TestServer(create_app([str(upstream.make_url(""))])))
    await proxy.start_server()
    try:
        refused = [
            ("GET", "/conversations/sms-15551234567/tracker?token=askagency-dev-token"),
            ("POST", "/conversations/x/trigger_intent?output_channel=latest"),
            ("GET", "/model"),
            ("DELETE", "/model"),
            ("GET", "/status"),
            ("GET", "/version"),
            ("GET", "/"),
            ("GET", "/domain"),
            ("GET", "/webhooks/../conversations/x/tracker"),
            ("GET", "/webhooks/rest/%2e%2e/%2e%2e/conversations/x/tracker"),
            ("GET", "/webhooks%2f..%2fconversations/x/tracker"),
            ("GET", "/socket.io/..%5c..%5cstatus"),
            ("GET", "/webhooksX/rest"),
            ("GET", "/healthz"),
        ]
        for method, path in refused:
            resp = await proxy.request(method, path)
            assert resp.status == 404, (method, path, resp.status)
        assert paths == [], f"reached Rasa: {paths}"
        allowed = [
            ("POST", "/webhooks/rest/webhook"),
            ("POST", "/webhooks/telegram/webhook"),
            ("GET", "/socket.io/?EIO=4&transport=polling"),
            ("GET", "/health"),
        ]
        for method, path in allowed:
            resp = await proxy.request(method, path, data=b"{}" if method == "POST" else None)
            assert resp.status == 200, (method, path, resp.status)
        assert paths == [p for _m, p in allowed]
        health = await proxy.get("/_proxy/health")
        text = await health.text()
        assert str(upstream.port) not in text and "127.0.0.1" not in text  # no upstream URLs
        assert health.headers["Server"] == "askagency-proxy"  # no aiohttp/Python versions
    finally:
        await proxy.close()
        await upstream.close()


def test_proxy_command_line_chooses_what_it_forwards() -> None:
    from deploy.proxy import PUBLIC_PREFIXES, path_allowed

    assert PUBLIC_PREFIXES == ("/webhooks/", "/socket.io/", "/health")
    assert path_allowed("/conversations/x/tracker", None)  # --allow-all: internal balancers
    assert path_allowed("/webhook", ("/webhook", "/health")) and not path_allowed(
        "/webhooks/rest/webhook", ("/webhook",)
    )
