"""The console landing page: sends each role to where its work is."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from askagency.staff import Role
from console.auth import require_role
from console.nav import page_context


@require_role(Role.VIEWER, Role.AGENT, Role.EDITOR)
async def home(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("console_home.html", request, page_context(request))


def setup(app: web.Application) -> None:
    app.router.add_get("/console", home)
