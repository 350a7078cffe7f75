"""Test doubles written once (in the spirit of ``haystack/testing``): where a real component
cannot run in a unit test, or a test needs to choose its answers, it uses these.

* :class:`FakeRetriever` / :class:`FakeHandle` implement ``knowledge_base.types.FaqRetriever``
  and ``FaqRetrieverHandle`` with canned hits (one list, per language, or per query text).
* :class:`FakeRasa` is Rasa 3.6's ``trigger_intent`` and ``tracker`` HTTP endpoints, for the
  handoff relay and the inbox.
* :func:`bag_of_words` is a deterministic stand-in for sentence embeddings, and
  :class:`DatabaseRetriever` ranks the database's FAQs with it.

The real stack (tests/stack.py) is used wherever the component itself can run.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from aiohttp import web
from aiohttp.test_utils import TestServer

from askagency.db import session_scope
from knowledge_base import store
from knowledge_base.types import FaqHit

if TYPE_CHECKING:
    import pytest


def hit(faq_id: str, score: float, **fields: Any) -> FaqHit:
    """An FAQ hit whose question, answer and language default to plain values."""
    values: dict[str, Any] = {
        "question": f"Question {faq_id}?",
        "answer": f"Answer {faq_id}.",
        "language": "en",
    }
    values.update(fields)
    return FaqHit(faq_id=faq_id, score=score, **values)


class FakeRetriever:
    """Canned hits: ``hits`` for every question, else ``by_language[language]``, else
    ``by_text[text]``. Records every ``(text, k, language)`` searched; raises ``error``."""

    version = "fake-version"
    scorer = "fake"
    model_id = ""  # no embedding model: no thresholds to warn about
    # Canned hits stand for a KB like the sample, with out-of-scope entries in both languages:
    # the default thresholds apply as they are (decision.for_index).
    out_of_scope_languages = frozenset({"en", "es"})

    def __init__(
        self,
        hits: list[FaqHit] | None = None,
        *,
        by_language: dict[str, list[FaqHit]] | None = None,
        by_text: dict[str, list[FaqHit]] | None = None,
        error: Exception | None = None,
        bundle: Any = None,
    ) -> None:
        self.hits = hits
        self.by_language = by_language or {}
        self.by_text = by_text or {}
        self.error = error
        self.bundle = bundle
        self.calls: list[tuple[str, int, str | None]] = []

    @property
    def languages_searched(self) -> list[str | None]:
        return [language for _, _, language in self.calls]

    def search(self, text: str, k: int = 5, language: str | None = None) -> list[FaqHit]:
        self.calls.append((text, k, language))
        if self.error is not None:
            raise self.error
        if self.hits is not None:
            return list(self.hits)
        if self.by_language:
            return list(self.by_language.get(language or "", []))[:k]
        return list(self.by_text.get(text, []))[:k]

    def out_of_scope_match(self, text: str, language: str | None = None) -> FaqHit | None:
        return None  # canned hits hold no out-of-scope entries

    def search_many(
        self,
        texts: list[str],
        k: int = 5,
        language: str | None = None,
        cache_queries: bool = False,
    ) -> list[list[FaqHit]]:
        return [self.search(text, k, language) for text in texts]


class FakeHandle:
    """A handle that serves one retriever, or raises ``error`` (index missing, model broken)."""

    def __init__(self, retriever: FakeRetriever | None = None, error: Exception | None = None):
        self.retriever = retriever or FakeRetriever([])
        self.error = error

    def get(self) -> FakeRetriever:
        if self.error is not None:
            raise self.error
        return self.retriever


class Trigger(NamedTuple):
    conversation: str
    name: str
    entities: dict[str, Any]


class FakeRasa:
    """Rasa 3.6's ``POST /conversations/{id}/trigger_intent`` and ``GET .../tracker``.

    ``mode``: ``ok`` (the bot message is added to the tracker), ``silent`` (accepted, no
    message), ``down`` (503) or ``unauthorized`` (401). Each conversation's tracker starts with
    a copy of ``seed_events``.
    """

    def __init__(self, token: str, seed_events: list[dict[str, Any]] | None = None) -> None:
        self.token = token
        self.mode = "ok"
        self.calls: list[Trigger] = []
        self.output_channels: list[str] = []
        self.events: dict[str, list[dict[str, Any]]] = {}
        self._seed = seed_events or []

    @property
    def conversations(self) -> list[str]:
        """The conversation of each trigger, in order."""
        return [call.conversation for call in self.calls]

    def events_of(self, conversation: str) -> list[dict[str, Any]]:
        return self.events.setdefault(conversation, copy.deepcopy(self._seed))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/conversations/{cid}/trigger_intent", self._trigger)
        app.router.add_get("/conversations/{cid}/tracker", self._tracker)
        return app

    async def _trigger(self, request: web.Request) -> web.Response:
        if self.mode == "down":
            return web.json_response({"status": "failure"}, status=503)
        if self.mode == "unauthorized" or request.query.get("token") != self.token:
            return web.json_response({"status": "failure"}, status=401)
        self.output_channels.append(request.query.get("output_channel", ""))
        body = await request.json()
        conversation = request.match_info["cid"]
        self.calls.append(Trigger(conversation, body["name"], body["entities"]))
        events = self.events_of(conversation)
        if self.mode == "ok":
            custom = {"type": body["name"], "message_id": body["entities"].get("handoff_message")}
            events.append({"event": "bot", "text": "x", "data": {"custom": custom}})
        return web.json_response({"tracker": {"sender_id": conversation, "events": events}})

    async def _tracker(self, request: web.Request) -> web.Response:
        if request.query.get("token") != self.token:
            return web.json_response({"status": "failure"}, status=401)
        return web.json_response({"events": self.events_of(request.match_info["cid"])})


def bag_of_words(texts: list[str], dim: int = 64) -> np.ndarray:
    """Deterministic stand-in for sentence embeddings: hashed word counts, L2-normalised."""
    rows = []
    for text in texts:
        vector = np.zeros(dim, dtype=np.float32)
        for word in re.findall(r"[a-z]+", text.lower()):
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % dim] += 1.0
        norm = np.linalg.norm(vector) or 1.0
        rows.append(vector / norm)
    return np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32)


class DatabaseRetriever:
    """Ranks the database's published FAQs with :func:`bag_of_words`: the console's knowledge-base
    pages without a model or an index."""

    version = "fake-1"
    model_id = ""  # bag of words, no embedding model

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def search(self, text: str, k: int = 5, language: str | None = None) -> list[FaqHit]:
        with session_scope(self.database_url) as session:
            records = store.published_records(session, language=language)
        query = bag_of_words([text])[0]
        hits = []
        for record in records:
            texts = list(record.question_texts())
            scores = bag_of_words(texts) @ query
            best = int(np.argmax(scores))
            hits.append(
                FaqHit(
                    faq_id=record.id,
                    score=float(scores[best]),
                    question=record.question,
                    answer=record.answer,
                    language=record.language,
                    category=record.category,
                    source_url=record.source_url,
                    matched_text=texts[best],
                )
            )
        hits.sort(key=lambda h: -h.score)
        return hits[:k]


@asynccontextmanager
async def console_fake_rasa(
    monkeypatch: pytest.MonkeyPatch, seed_events: list[dict[str, Any]] | None = None
) -> AsyncIterator[FakeRasa]:
    """A :class:`FakeRasa` on a local port with the console's settings pointed at it (token
    ``t0k``, the outbox polled every 50 ms): the inbox tests' stand-in for Rasa."""
    fake = FakeRasa("t0k", seed_events)
    async with TestServer(fake.app()) as server:
        monkeypatch.setenv("ASKAGENCY_RASA_URL", str(server.make_url("")).rstrip("/"))
        monkeypatch.setenv("ASKAGENCY_RASA_TOKEN", "t0k")
        monkeypatch.setenv("ASKAGENCY_HANDOFF_DELIVERY_POLL_S", "0.05")
        yield fake
