"""The action server's single, lazily created connection to the knowledge base.

Created on first use (or by :func:`warm_up` when the server starts), never at import time:
loading torch and the model during import crashes Sanic's worker start (see actions/server.py)
and would make importing the actions for tests slow. The :class:`RetrieverHandle` itself notices
new index versions, so staff edits reach the bot without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from askagency import metrics
from askagency.config import Settings, get_settings
from knowledge_base.types import Decision, FaqHit, FaqRetrieverHandle

logger = logging.getLogger(__name__)


class KnowledgeBaseUnavailable(RuntimeError):
    """The index or the model cannot be loaded (missing, corrupt, still building)."""


_handle: FaqRetrieverHandle | None = None
_lock = threading.Lock()


def set_handle(handle: FaqRetrieverHandle | None) -> None:
    """Replace the process-wide handle (tests inject a fake; ``None`` recreates it lazily)."""
    global _handle
    with _lock:
        _handle = handle


def _create_handle(settings: Settings) -> FaqRetrieverHandle:
    from knowledge_base.factory import open_retriever  # loads faiss and sklearn: not at import

    return open_retriever(settings)


def get_handle(settings: Settings | None = None) -> FaqRetrieverHandle:
    """The shared handle, created on first call. A failed creation is not cached, so the next
    request retries (e.g. after the model files appear)."""
    global _handle
    with _lock:
        if _handle is None:
            _handle = _create_handle(settings or get_settings())
        return _handle


def _decide(hits: list[FaqHit], settings: Any) -> Decision:
    from knowledge_base.decision import decide

    return decide(hits, settings)


def _for_index(settings: Settings, retriever: Any) -> Any:
    """The thresholds for ``retriever``'s index: a language without out-of-scope entries has
    its own defaults (decision.for_retriever)."""
    from knowledge_base.decision import for_retriever

    return for_retriever(settings, retriever)


def lookup(text: str, language: str, settings: Settings | None = None) -> Decision:
    """Search the index and apply the answer/clarify/handoff thresholds.

    Blocking (embedding + FAISS); call it from a worker thread. Raises
    :class:`KnowledgeBaseUnavailable` for anything that prevents a lookup.
    """
    settings = settings or get_settings()
    started = time.perf_counter()
    try:
        retriever = get_handle(settings).get()
        hits = retriever.search(text, k=settings.search_top_k, language=language)
    except Exception as exc:  # the index/model may fail in many ways; none may crash a turn
        raise KnowledgeBaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
    decision = _decide(list(hits), _for_index(settings, retriever))
    metrics.RETRIEVAL_SECONDS.observe(time.perf_counter() - started)
    return decision


def lookup_in_language(
    text: str, language: str, settings: Settings | None = None, exclude: str | None = None
) -> Any:
    """Like :func:`lookup`, but answers in the citizen's ``language`` when the knowledge base
    has the FAQ in it, else in the default language marked as not translated
    (``knowledge_base.multilingual``). ``exclude``: an FAQ that is not a candidate (the answer a
    follow-up question came after). Returns a ``LanguageDecision``."""
    from knowledge_base import multilingual
    from knowledge_base.followup import candidates

    settings = settings or get_settings()
    started = time.perf_counter()

    try:
        retriever = get_handle(settings).get()
        thresholds = _for_index(settings, retriever)

        def decide_kept(hits: list[FaqHit]) -> Decision:
            return _decide(candidates(hits, exclude, settings.search_top_k), thresholds)

        result = multilingual.lookup(
            retriever,
            text,
            language,
            main_language=settings.default_language,
            k=settings.search_top_k + (exclude is not None),
            decide=decide_kept,
        )
        metrics.RETRIEVAL_SECONDS.observe(time.perf_counter() - started)
        return result
    except KnowledgeBaseUnavailable:
        raise
    except Exception as exc:  # the index/model may fail in many ways; none may crash a turn
        raise KnowledgeBaseUnavailable(f"{type(exc).__name__}: {exc}") from exc


def warm_up(settings: Settings | None = None) -> bool:
    """Load the model and the index now so the first citizen question is fast.

    Returns False (and logs) when the knowledge base is not available yet; the server still
    starts and answers with the "can't look that up" fallback until it is.
    """
    settings = settings or get_settings()
    try:
        retriever = get_handle(settings).get()
        # One real query pays the first-encode cost (about 0.6 s) before a citizen does.
        retriever.search("warm up", k=1, language=settings.default_language)
    except Exception as exc:
        logger.warning("knowledge base not available at start-up: %s: %s", type(exc).__name__, exc)
        return False
    logger.info("knowledge base loaded")
    from knowledge_base.tuning import thresholds_model_warning

    warning = thresholds_model_warning(settings, retriever.model_id)
    if warning:
        logger.warning(warning)
    return True


def current_handle() -> FaqRetrieverHandle | None:
    """The handle if one was created (metrics read it without loading anything)."""
    return _handle


def status() -> dict[str, object]:
    """What ``GET /ready`` reports about the index, without loading anything.

    ``serving`` is the version answering questions; ``last_error`` is set when a newer index
    could not be loaded (missing or corrupt file) and the previous one keeps serving.
    """
    handle = _handle
    version = getattr(handle, "version", None) if handle is not None else None
    last_error = getattr(handle, "last_error", None) if handle is not None else None
    return {"serving": version, "last_error": last_error, "ok": version is not None}
