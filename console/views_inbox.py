"""The agent inbox pages: the ticket list and one ticket's conversation.

The pages are shells: ``static/console/inbox.js`` fills them from the JSON API
(``console.api_tickets``), refreshes the list, streams new messages with server-sent events and
posts the presence heartbeat. No inline script: the CSP forbids it, so the page hands the
script its data through ``data-`` attributes.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from askagency.db import session_scope
from askagency.numbers import row_id
from askagency.staff import Role
from console.auth import require_role
from console.keys import SETTINGS_KEY
from console.nav import page_context
from handoff.models import Ticket


@require_role(Role.AGENT)
async def inbox_page(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    return aiohttp_jinja2.render_template(
        "inbox.html",
        request,
        page_context(request, presence_window_s=settings.handoff_presence_window_s),
    )


@require_role(Role.AGENT)
async def ticket_page(request: web.Request) -> web.Response:
    raw = request.match_info["ticket_id"]
    ticket_id = row_id(raw)
    if ticket_id is None:
        raise web.HTTPNotFound(text=f"No ticket {raw}.")
    with session_scope() as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise web.HTTPNotFound(text=f"No ticket {raw}.")
        ticket_id, conversation_id = ticket.id, ticket.conversation_id
    return aiohttp_jinja2.render_template(
        "inbox_ticket.html",
        request,
        page_context(request, ticket_id=ticket_id, conversation_id=conversation_id),
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/console/inbox", inbox_page)
    app.router.add_get("/console/inbox/{ticket_id}", ticket_page)
