"""``GET /metrics`` on the console: Prometheus with ``ASKAGENCY_METRICS_TOKEN`` as a bearer
token, or a logged-in admin; nobody else (the console listens where citizens can reach it).

The console exports the delivery backlog: agent messages still waiting to reach the citizen
(handoff/delivery.py runs in this process)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import func, select

from askagency import metrics
from askagency.db import session_scope
from askagency.staff import Role
from console.auth import current_user
from console.keys import SETTINGS_KEY
from handoff.models import Delivery, TicketMessage

METRICS_PATH = "/metrics"


def delivery_backlog() -> float:
    """Ticket messages whose delivery is still pending (retries included)."""
    with session_scope() as session:
        count = session.scalar(
            select(func.count())
            .select_from(TicketMessage)
            .where(TicketMessage.delivery_status == Delivery.PENDING.value)
        )
    return float(count or 0)


async def serve_metrics(request: web.Request) -> web.Response:
    token = request.app[SETTINGS_KEY].metrics_token
    if not metrics.bearer_ok(request.headers.get("Authorization"), token):
        user = current_user(request)
        if user is None:
            return web.json_response({"error": "login or metrics token required"}, status=401)
        if user.role != Role.ADMIN:
            return web.json_response({"error": "your role may not do this"}, status=403)
    body = await asyncio.to_thread(metrics.render)
    # CONTENT_TYPE_LATEST carries a charset parameter, which aiohttp wants in its own argument.
    content_type, _, params = metrics.CONTENT_TYPE_LATEST.partition(";")
    charset = params.partition("charset=")[2].strip() or None
    return web.Response(body=body, content_type=content_type.strip(), charset=charset)


# For the route audit (tests/unit/console/test_security.py): of the console's users, only an
# admin; the bearer token is the one way in without a session.
serve_metrics.__dict__["required_roles"] = {Role.ADMIN}


def setup(app: web.Application) -> None:
    app.router.add_get(METRICS_PATH, serve_metrics)
    metrics.register_gauge(
        "askagency_delivery_backlog",
        "Agent messages waiting to be delivered to citizens (handoff/delivery.py).",
        delivery_backlog,
    )
