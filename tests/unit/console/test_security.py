"""Console security as a matrix over EVERY route of ``app.router``: a route added without a role
check, or reachable by the wrong role, or changing state without the CSRF token, fails here.

* anonymous: 401 (JSON API) or a redirect to the login page, for every protected route;
* each role: 403 where its role is not allowed; for allowed GET routes, no 401/403;
* CSRF: every POST/PUT/PATCH/DELETE by a logged-in admin without the token gets 403;
* headers: CSP without inline script, X-Frame-Options DENY on /console, nosniff.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from askagency.config import Settings
from askagency.staff import Role
from console.app import create_app
from tests.console_helpers import login
from tests.unit.console.test_auth import users  # noqa: F401 (fixture)

# Routes that are public on purpose, each with the reason.
PUBLIC = {
    ("GET", "/health"): "liveness probe",
    ("GET", "/ready"): "readiness probe (no data beyond ok/not ok: test_ready_reveals_no_detail)",
    ("GET", "/"): "demo agency page with the widget",
    ("GET", "/static"): "static assets",
    ("GET", "/console/login"): "login form",
    ("POST", "/console/login"): "login (address limit, account+address pacing, own CSRF)",
    ("POST", "/console/logout"): "logout (ends the caller's own session only)",
    ("GET", "/api/widget/history"): "widget history (checks its own signed conversation token)",
    ("OPTIONS", "/api/widget/history"): "CORS preflight of the widget history (no data)",
    ("POST", "/api/widget/attachments"): "a citizen's file (own conversation token, rate limit)",
    ("OPTIONS", "/api/widget/attachments"): "CORS preflight of the widget upload (no data)",
    ("GET", "/media/{attachment_id}"): "an agent's file by signed, expiring link (no citizen's)",
    ("GET", "/console/attachments/{attachment_id}"): (
        "staff file: checks login and role itself, 404 to other roles (test_attachments.py)"
    ),
}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Routes whose decorator lets a role in but whose handler refuses it (a finer check).
FINER_CHECKS: set[tuple[str, str, str]] = {
    ("viewer", "GET", "/console/kb/new"),
}


def route_table(app: web.Application) -> list[tuple[str, str, set[str] | None]]:
    """(method, path with sample ids, required roles or None) for every route but HEAD."""
    table = []
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix") or ""
        roles = getattr(route.handler, "required_roles", None)
        table.append((route.method, path, {str(r) for r in roles} if roles else None))
    return table


def sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.fixture
def app(tmp_settings: Settings, users: None) -> web.Application:  # noqa: F811
    return create_app(tmp_settings)


def test_every_route_is_public_on_purpose_or_checks_a_role(app: web.Application) -> None:
    table = route_table(app)
    assert len(table) > 40  # the whole console, not an empty router
    unchecked = [(m, p) for m, p, roles in table if roles is None and (m, p) not in PUBLIC]
    assert unchecked == [], f"routes without require_role: {unchecked}"


async def _client(app: web.Application) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.fixture
async def anonymous(app: web.Application) -> AsyncIterator[TestClient]:
    async for client in _client(app):
        yield client


async def test_anonymous_gets_401_or_the_login_page_everywhere(
    app: web.Application, anonymous: TestClient
) -> None:
    for method, path, roles in route_table(app):
        if roles is None:
            continue
        resp = await anonymous.request(
            method, sample(path), headers={"Accept": "application/json"}, allow_redirects=False
        )
        assert resp.status == 401, (method, path, resp.status)
        page = await anonymous.request(method, sample(path), allow_redirects=False)
        if path.startswith("/console") and method == "GET":
            assert page.status == 302 and "/console/login" in page.headers["Location"]
        else:
            assert page.status in (302, 401, 403), (method, path, page.status)


@pytest.mark.parametrize("role", [r.value for r in Role])
async def test_role_matrix(app: web.Application, anonymous: TestClient, role: str) -> None:
    client = anonymous
    token = await login(client, role)
    headers = {"Accept": "application/json", "X-CSRF-Token": token}
    wrong = []
    for method, path, roles in route_table(app):
        if roles is None:
            continue
        allowed = role in roles and (role, method, path) not in FINER_CHECKS
        if method in UNSAFE and allowed:
            continue  # executing writes (publish, import) is other tests' job; denial is ours
        resp = await client.request(
            method, sample(path), headers=headers, json={}, allow_redirects=False
        )
        if (resp.status in (401, 403)) == allowed:
            wrong.append((method, path, resp.status))
    assert wrong == [], f"{role}: {wrong}"


async def test_every_state_change_needs_the_csrf_token(
    app: web.Application, anonymous: TestClient
) -> None:
    client = anonymous
    await login(client, "admin")
    checked = 0
    for method, path, _roles in route_table(app):
        if method not in UNSAFE or (method, path) in PUBLIC:
            continue
        for headers in ({"Accept": "application/json"}, {"X-CSRF-Token": "forged"}):
            resp = await client.request(
                method, sample(path), headers=headers, json={}, allow_redirects=False
            )
            assert resp.status == 403, (method, path, headers, resp.status)
            assert "CSRF" in await resp.text()
        checked += 1
    assert checked >= 15


async def test_security_headers(anonymous: TestClient) -> None:
    for path in ("/console/login", "/", "/api/openapi.json"):
        resp = await anonymous.get(path)
        csp = resp.headers["Content-Security-Policy"]
        script_src = csp.split("script-src")[1].split(";")[0]
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
        assert "object-src 'none'" in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    login_page = await anonymous.get("/console/login")
    assert login_page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'self'" in login_page.headers["Content-Security-Policy"]
    assert "no-store" in login_page.headers["Cache-Control"]


async def test_ready_reveals_no_detail_of_the_database(
    tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """L9: the public probe said ``database unavailable: OperationalError: connection ... to
    server at "<host>", port <n> failed`` (host, address, user); now ok / not ok only."""
    from askagency.config import get_settings
    from askagency.db import get_engine
    from askagency.ports import free_port

    port = free_port()  # nobody listens there: the database is down
    url = f"postgresql+psycopg://dbadmin:pw@127.0.0.1:{port}/askagency"
    monkeypatch.setenv("ASKAGENCY_DATABASE_URL", url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    app = create_app(get_settings())
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/ready")
        text = await resp.text()
    assert resp.status == 503
    assert await resp.json() == {
        "status": "not_ready",
        "database": {"ok": False, "error": "database unavailable"},
    }
    for secret in (str(port), "127.0.0.1", "dbadmin", "OperationalError", "psycopg"):
        assert secret not in text, secret
    assert str(port) in caplog.text  # the operator still sees why, in the log


async def test_api_description_needs_a_login(anonymous: TestClient) -> None:
    """L9: /api/openapi.json (every route, its roles and bodies) was public."""
    resp = await anonymous.get("/api/openapi.json", headers={"Accept": "application/json"})
    assert resp.status == 401
    await login(anonymous, "viewer")
    resp = await anonymous.get("/api/openapi.json")
    assert resp.status == 200 and "/api/tickets" in str((await resp.json())["paths"])


async def test_server_header_names_no_version(anonymous: TestClient) -> None:
    """L9: aiohttp announced ``Python/3.11 aiohttp/3.x`` on every response."""
    for path in ("/health", "/console/login", "/nope", "/static/widget/askagency-widget.js"):
        server = (await anonymous.get(path)).headers.get("Server", "")
        assert server == "askagency", (path, server)


async def test_cookie_secure_and_hsts_when_not_a_loopback_dev_server(
    tmp_settings: Settings,
    users: None,  # noqa: F811
) -> None:
    """L12: cookie_secure defaulted to False everywhere and no HSTS was sent; now a console
    that listens beyond loopback (``--host 0.0.0.0``, compose) sets both unless told not to."""
    assert tmp_settings.cookie_secure is False  # loopback development server: plain HTTP works
    public = tmp_settings.for_console_host("0.0.0.0")
    assert public.cookie_secure is True
    async with TestClient(TestServer(create_app(public))) as client:
        resp = await client.post(
            "/console/login",
            data={"username": "admin", "password": "correct horse battery"},
            allow_redirects=False,
        )
        assert resp.status == 302
        assert "Secure" in resp.headers["Set-Cookie"]
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    explicit = Settings(data_dir=tmp_settings.data_dir, console_host="0.0.0.0", cookie_secure=False)
    assert explicit.cookie_secure is False  # an explicit setting wins
    assert explicit.for_console_host("10.0.0.5").cookie_secure is False
    async with TestClient(TestServer(create_app(tmp_settings))) as client:
        assert "Strict-Transport-Security" not in (await client.get("/health")).headers


async def test_session_cookie_flags(anonymous: TestClient) -> None:
    resp = await anonymous.post(
        "/console/login",
        data={"username": "admin", "password": "correct horse battery"},
        allow_redirects=False,
    )
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie


async def test_bodies_found_by_fuzzing_get_400_not_500(anonymous: TestClient) -> None:
    client = anonymous
    token = await login(client, "admin")
    headers = {"Accept": "application/json", "X-CSRF-Token": token}
    # schemathesis: multipart without a boundary made request.post() raise -> 500.
    for path in ("/api/kb/faqs", "/console/login", "/api/kb/import/preview"):
        resp = await client.post(
            path, data=b"x", headers={**headers, "Content-Type": "multipart/form-data"}
        )
        assert resp.status == 400, (path, resp.status)
    # hypothesis: JSON nested thousands deep made json.loads raise RecursionError -> 500.
    resp = await client.post(
        "/api/kb/faqs", data=b"[" * 5000, headers={**headers, "Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert "nested too deeply" in (await resp.json())["error"]
    # schemathesis: a question id beyond 64 bits reached SQLite (OverflowError) -> 500.
    resp = await client.post(
        "/api/kb/unanswered/dismiss", json={"question_ids": [2**64]}, headers=headers
    )
    assert resp.status == 400
