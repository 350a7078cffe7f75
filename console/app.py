"""The console's aiohttp application factory.

Feature modules (widget API, agent inbox, KB editor, dashboard) each expose
``setup(app)`` and are wired here, so the app has one assembly point.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from askagency.config import Settings, get_settings
from askagency.location_codes import normalise_code
from console import (
    api_metrics,
    api_tickets,
    attachment_views,
    kb,
    openapi,
    prometheus,
    views_auth,
    views_dashboard,
    views_home,
    views_inbox,
    views_kb,
    widget_api,
)
from console import health as health_checks
from console.health import database_errors_middleware
from console.keys import SETTINGS_KEY
from console.login_limit import TRUSTED_KEY, login_limit_middleware, trusted_proxies
from console.middleware import auth_middleware, security_headers_middleware
from console.request_guard import request_guard_middleware

HERE = Path(__file__).resolve().parent


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@aiohttp_jinja2.template("demo.html")
async def demo_page(request: web.Request) -> dict[str, object]:
    """The demo agency page with the widget embedded by one script tag. ``?location=DEN``
    shows it as one airport's page (the widget's ``data-location``)."""
    settings = request.app[SETTINGS_KEY]
    location = normalise_code(request.query.get("location", "")) or ""
    return {"rasa_url": settings.rasa_url, "settings": settings, "location": location}


# aiohttp's default Server header names its and Python's versions: a free fingerprint.
SERVER_HEADER = "askagency"
HSTS = "max-age=31536000; includeSubDomains"


def transport_headers(settings: Settings):  # type: ignore[no-untyped-def]
    """``on_response_prepare`` hook: a version-less Server header on every response (errors
    and static files included), and HSTS when the console is served over HTTPS (cookie_secure),
    so a browser never again talks to it in clear text."""

    async def hook(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Server"] = SERVER_HEADER
        if settings.cookie_secure:
            response.headers.setdefault("Strict-Transport-Security", HSTS)

    return hook


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or get_settings()
    app = web.Application(
        client_max_size=25 * 1024 * 1024,  # CSV/JSONL imports; JSON bodies are checked per route
        middlewares=[
            security_headers_middleware(settings.rasa_url),
            database_errors_middleware,
            request_guard_middleware,
            login_limit_middleware(settings),
            auth_middleware,
        ],
    )
    app[SETTINGS_KEY] = settings
    app.on_response_prepare.append(transport_headers(settings))
    app[TRUSTED_KEY] = trusted_proxies(settings)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    app.router.add_get("/health", health)
    app.router.add_get("/", demo_page)
    app.router.add_static("/static/", HERE / "static", append_version=True)
    views_auth.setup(app)
    views_home.setup(app)
    openapi.setup(app)
    widget_api.setup(app)
    views_inbox.setup(app)
    api_tickets.setup(app)
    # Conversation files: staff-only under /console, agents' files by signed link under /media.
    attachment_views.setup(app)
    views_dashboard.setup(app)
    api_metrics.setup(app)
    views_kb.setup(app)
    kb.setup(app)
    health_checks.setup(app)
    prometheus.setup(app)
    return app
