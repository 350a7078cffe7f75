"""The inbox routes tickets by the agent's languages (handoff tickets record the citizen's)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from askagency.db import session_scope
from askagency.staff import Role
from console.auth import create_user
from handoff import service
from tests.console_helpers import PASSWORD, login
from tests.unit.console.test_inbox import client, fake_rasa  # noqa: F401


def open_ticket(conversation: str, language: str) -> int:
    with session_scope() as session:
        return service.open_ticket(
            session,
            conversation_id=conversation,
            reason="requested",
            channel="rest",
            language=language,
            trigger_text="hola",
        ).ticket.id


async def listed(client: TestClient, query: str = "") -> list[tuple[int, str]]:  # noqa: F811
    resp = await client.get("/api/tickets" + query)
    assert resp.status == 200, await resp.text()
    return [(t["id"], t["language"]) for t in (await resp.json())["tickets"]]


async def test_tickets_in_the_agents_languages_come_first(client: TestClient) -> None:  # noqa: F811
    french = open_ticket("conv-fr", "fr")  # waited longest
    english = open_ticket("conv-en", "en")
    spanish = open_ticket("conv-es", "es")
    with session_scope() as session:
        create_user(session, "pierre", PASSWORD, Role.AGENT, "Pierre", ["fr"])

    await login(client, "ana")  # speaks en, es
    assert await listed(client) == [(english, "en"), (spanish, "es"), (french, "fr")]
    assert await listed(client, "?language=es") == [(spanish, "es")]
    assert await listed(client, "?language=ES") == [(spanish, "es")]

    await login(client, "pierre")
    assert await listed(client) == [(french, "fr"), (english, "en"), (spanish, "es")]


async def test_bad_language_filter_is_a_clear_error(client: TestClient) -> None:  # noqa: F811
    await login(client, "ana")
    resp = await client.get("/api/tickets?language=<script>")
    assert resp.status == 400
    assert "language must be a language code" in await resp.text()


def test_language_routing_keeps_queue_order_within_each_part(db_url: str) -> None:
    """The order is SQL's (handoff.service.list_page), so a page is cut after ordering."""
    ids = [open_ticket(f"conv-{code}", code) for code in ("fr", "en", "es")]
    with session_scope() as session:

        def order(languages: list[str]) -> list[int]:
            page = service.list_page(session, "open", limit=None, agent_languages=languages)
            return [t.id for t in page.tickets]

        assert order([]) == ids
        assert order(["ES"]) == [ids[2], ids[0], ids[1]]
