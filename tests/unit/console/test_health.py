"""Console readiness, database outages (503 with a clear message, never a 500) and the index
status read from the action server's /ready, over real HTTP."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from askagency.config import Settings
from askagency.db import get_engine
from console.app import create_app
from console.health import DB_UNAVAILABLE, fetch_index_status
from tests.console_helpers import login
from tests.net import closed_port
from tests.unit.console.test_auth import client as client  # noqa: F401 (fixture)
from tests.unit.console.test_auth import users  # noqa: F401 (fixture)


def _db_file(settings: Settings) -> Path:
    return Path(settings.database_url.removeprefix("sqlite:///"))


class DatabaseOutage:
    """Makes the SQLite file unopenable (a directory in its place), then puts it back."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = _db_file(settings)
        self.backup = self.path.with_suffix(".bak")

    def _close_connections(self) -> None:
        # get_engine() and get_engine(url) are separate cache entries; pooled SQLite
        # connections would keep the old file open.
        get_engine().dispose()
        get_engine(self.settings.database_url).dispose()
        get_engine.cache_clear()

    def start(self) -> None:
        self._close_connections()
        self.path.rename(self.backup)
        self.path.mkdir()

    def end(self) -> None:
        self._close_connections()
        self.path.rmdir()
        self.backup.rename(self.path)


async def test_ready_reports_the_database(
    client: TestClient,  # noqa: F811
    tmp_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    resp = await client.get("/ready")
    assert resp.status == 200
    assert (await resp.json()) == {"status": "ready", "database": {"ok": True}}

    outage = DatabaseOutage(tmp_settings)
    outage.start()
    try:
        with caplog.at_level(logging.ERROR):
            resp = await client.get("/ready")
        assert resp.status == 503
        body = await resp.json()
        # Public probe: ok / not ok only; the driver's message (file, host, user) is logged.
        assert body == {
            "status": "not_ready",
            "database": {"ok": False, "error": "database unavailable"},
        }
        assert "database unavailable: OperationalError" in caplog.text
    finally:
        outage.end()
    assert (await client.get("/ready")).status == 200


async def test_database_outage_gives_503_not_500(
    client: TestClient,  # noqa: F811
    tmp_settings: Settings,
) -> None:
    await login(client, "admin")
    outage = DatabaseOutage(tmp_settings)
    outage.start()
    try:
        api = await client.get("/api/kb/faqs", headers={"Accept": "application/json"})
        assert api.status == 503
        body = await api.json()
        assert body["error"] == DB_UNAVAILABLE
        page = await client.get("/console")
        assert page.status == 503
        assert page.headers["Retry-After"] == "30"
        assert "database is unavailable" in await page.text()
        assert "Content-Security-Policy" in page.headers  # security headers still applied
    finally:
        outage.end()
    assert (await client.get("/console")).status == 200  # same session works again


async def _action_server(body: object, status: int = 200) -> tuple[TestServer, str]:
    app = web.Application()

    async def ready(_: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    app.router.add_get("/ready", ready)
    server = TestServer(app)
    await server.start_server()
    return server, str(server.make_url("/ready"))


async def test_index_status_from_the_action_server() -> None:
    server, url = await _action_server(
        {"index": {"serving": "v2", "last_error": "vectors.npy: checksum mismatch"}}
    )
    try:
        status = await fetch_index_status(url)
    finally:
        await server.close()
    assert status == {
        "ok": False,
        "serving": "v2",
        "last_error": "vectors.npy: checksum mismatch",
        "error": None,
    }

    server, url = await _action_server({"index": {"serving": None, "last_error": None}}, 503)
    try:
        status = await fetch_index_status(url)
    finally:
        await server.close()
    assert status["ok"] is False and "no index is loaded" in status["error"]


async def test_index_status_when_the_action_server_is_down() -> None:
    with closed_port() as port:
        status = await fetch_index_status(f"http://127.0.0.1:{port}/ready")
    assert status["ok"] is False and "not reachable" in status["error"]


async def test_index_health_route_roles(
    tmp_settings: Settings,
    users: None,  # noqa: F811
) -> None:
    async with TestClient(TestServer(create_app(tmp_settings))) as test_client:
        json_headers = {"Accept": "application/json"}
        assert (await test_client.get("/api/health/index", headers=json_headers)).status == 401
        await login(test_client, "viewer")
        assert (await test_client.get("/api/health/index", headers=json_headers)).status == 403
    with closed_port() as port:
        settings = tmp_settings.model_copy(update={"action_server_port": port})
        async with TestClient(TestServer(create_app(settings))) as test_client:
            await login(test_client, "editor")
            resp = await test_client.get("/api/health/index", headers=json_headers)
            assert resp.status == 200  # the action server is down: reported, not raised
            assert (await resp.json())["ok"] is False
            page = await (await test_client.get("/console")).text()
            assert 'id="index-alert"' in page
