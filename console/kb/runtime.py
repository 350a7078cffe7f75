"""What every knowledge-base handler shares: the runtime (embedder, retriever, publisher) the
app holds, the role decorators, and running store work off the event loop with one error
translation (store errors become the uniform JSON errors)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy.orm import Session

from askagency.config import Settings
from askagency.staff import Role
from console.auth import current_user, require_role
from console.jsonapi import in_transaction, json_error, json_model
from console.kb.schemas import FaqOut, FaqWriteOut, IndexOut
from console.keys import SETTINGS_KEY
from knowledge_base import io as kb_io
from knowledge_base import store
from knowledge_base import unanswered as queue
from knowledge_base.models import FaqStatus
from knowledge_base.publish import Publisher, PublishResult, rebuild_index
from knowledge_base.types import FaqHit, FaqRetriever, FaqRetrieverHandle, TextEmbedder

logger = logging.getLogger(__name__)


readers = require_role(Role.VIEWER, Role.EDITOR)


writers = require_role(Role.EDITOR)


T = TypeVar("T")


class KbRuntime:
    """Per-app access to the heavy parts: the embedder (loaded on first use), the
    retriever over the live bundle and the publisher. Tests replace ``rebuild``
    or the whole runtime to keep API tests free of the model."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._embedder: TextEmbedder | None = None
        self._handle: FaqRetrieverHandle | None = None
        self._memo: queue.QueryEmbeddingMemo | None = None
        self._warming: asyncio.Task[None] | None = None
        self.publisher = Publisher(self.rebuild)

    @property
    def index_dir(self) -> Path:
        assert self.settings.index_dir is not None
        return Path(self.settings.index_dir)

    def embedder(self) -> TextEmbedder:
        if self._embedder is None:
            from knowledge_base.factory import embedder_for

            self._embedder = embedder_for(self.settings)
        return self._embedder

    def warm_up(self) -> None:
        """Load torch and the model (seconds) before staff press Publish or Try it."""
        try:
            self.embedder().encode_query("warm up")
        except Exception as exc:  # noqa: BLE001 - reported when the model is really needed
            logger.warning("embedding model not available in the console: %s", exc)

    def warm_up_in_background(self) -> None:
        """Started when someone opens a knowledge-base page: by the time they save, the
        model is loaded and publishing takes about a second."""
        if self._warming is None:
            self._warming = asyncio.get_running_loop().create_task(asyncio.to_thread(self.warm_up))

    def rebuild(self) -> PublishResult:
        from knowledge_base.factory import index_options

        return rebuild_index(
            self.index_dir,
            self.embedder(),
            self.settings.database_url,
            options=index_options(self.settings),
        )

    def retriever(self) -> FaqRetriever:
        """The retriever over the live bundle (reloads when CURRENT moves)."""
        if self._handle is None:
            from knowledge_base.factory import open_retriever

            self._handle = open_retriever(self.settings, self.embedder())
        return self._handle.get()

    def search(self, text: str, language: str | None, k: int) -> list[FaqHit]:
        return list(self.retriever().search(text, k=k, language=language))

    def embed_faq_texts(self, texts: Sequence[str]) -> Any:
        """FAQ content: the persistent cache is fine (and shared with index builds)."""
        return self.embedder().encode(list(texts))

    def embed_citizen_texts(self, texts: Sequence[str]) -> Any:
        """Citizen questions: memoised in memory only, never in the persistent cache."""
        if self._memo is None:
            self._memo = queue.QueryEmbeddingMemo(
                lambda batch: self.embedder().encode(batch, use_cache=False)
            )
        return self._memo(texts)


RUNTIME_KEY = web.AppKey("kb_runtime", KbRuntime)


def runtime(request: web.Request) -> KbRuntime:
    return request.app[RUNTIME_KEY]


async def off_loop(func: Callable[..., T], *args: Any) -> T:
    """Blocking work (database, embeddings, FAISS) off the event loop."""
    return await asyncio.to_thread(func, *args)


def actor(request: web.Request) -> str:
    user = current_user(request)
    assert user is not None  # every route here is behind require_role
    return user.username


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "body",
            "reason": str(err["msg"]).removeprefix("Value error, "),
        }
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def store_error(exc: Exception) -> web.HTTPException:
    """The one mapping from store/queue errors to HTTP (uniform JSON bodies)."""
    if isinstance(exc, store.FaqNotFound | store.AuditEntryNotFound):
        return json_error(404, str(exc))
    if isinstance(exc, store.VersionConflict):
        details = {"expected": exc.expected, "actual": exc.actual}
        return json_error(409, str(exc), details)
    if isinstance(exc, store.RelatedInvalid):
        details = [{"field": "related", "reason": problem} for problem in exc.problems]
        return json_error(400, str(exc), details)
    if isinstance(exc, store.FaqExists):
        return json_error(409, str(exc), [{"field": "id", "reason": "already exists"}])
    if isinstance(exc, queue.QuestionsNotOpen):
        status = 404 if exc.missing and not exc.handled else 409
        return json_error(status, str(exc), {"missing": exc.missing, "handled": exc.handled})
    if isinstance(exc, ValidationError):
        return json_error(400, "invalid FAQ content", validation_details(exc))
    if isinstance(exc, kb_io.ImportRefused):
        return json_error(409, str(exc))
    if isinstance(exc, queue.UnansweredError | ValueError):
        return json_error(400, str(exc))
    raise exc


KNOWN_ERRORS = (store.StoreError, queue.UnansweredError, ValidationError, ValueError)


async def write(request: web.Request, work: Callable[[Session], T]) -> T:
    """Run a change in one transaction off the loop; store errors become 4xx."""
    url = request.app[SETTINGS_KEY].database_url
    return await in_transaction(work, url, KNOWN_ERRORS, store_error)


async def read(request: web.Request, work: Callable[[Session], T]) -> T:
    return await write(request, work)


async def publish_if(request: web.Request, needed: bool) -> IndexOut | None:
    if not needed:
        return None
    result = await runtime(request).publisher.publish()
    return IndexOut(**result.to_dict())


def is_published(status: str | None) -> bool:
    return status == FaqStatus.PUBLISHED.value


def model_unavailable(exc: Exception) -> web.HTTPException:
    return json_error(
        503,
        f"retrieval is not available: {type(exc).__name__}: {exc}",
        {"hint": "publish the knowledge base (or run `askagency kb build-index`)"},
    )


def faq_id_param(request: web.Request) -> str:
    return request.match_info["faq_id"]


def write_reply(faq: FaqOut | None, index: IndexOut | None, status: int = 200) -> web.Response:
    body = FaqWriteOut(faq=faq, index=index)
    return json_model(body, status)
