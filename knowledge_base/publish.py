"""Go live: rebuild the index bundle from the published FAQs and swap it in.

The console calls this after every change that touches published content. The
action server notices the new ``CURRENT`` on its next request (one ``stat``) and
loads the new bundle beside the old one, so no request is dropped and Rasa is
never retrained. Only new or changed question texts are embedded: everything
else comes from the persistent embedding cache, and the classifier is
warm-started from the live bundle.

Publishing is serialised twice: an ``asyncio`` lock in the :class:`Publisher`
(one rebuild at a time per console process, and requests that arrive during a
rebuild share the next one) and a file lock in the index folder (the CLI's
``build-index`` or a second console process never interleave their swaps).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from askagency.clock import now_utc
from askagency.db import session_scope
from knowledge_base.embedder import Embedder
from knowledge_base.index import (
    CURRENT_FILE,
    DEFAULT_INDEX_OPTIONS,
    Bundle,
    IndexLoadError,
    IndexOptions,
    build_bundle,
    load_current,
    read_current,
    save_bundle,
)
from knowledge_base.store import published_records

logger = logging.getLogger(__name__)

LOCK_FILE = ".publish.lock"


@dataclass(frozen=True)
class PublishResult:
    ok: bool
    version: str | None = None
    faqs: int = 0
    vectors: int = 0
    embedded: int = 0  # texts that went through the model (cache misses)
    seconds: float = 0.0
    error: str | None = None
    at: str = field(default_factory=lambda: now_utc().isoformat())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    """Exclusive lock across processes on this index folder (POSIX flock)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / LOCK_FILE).open("a+") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - non-POSIX: the asyncio lock still applies
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _previous_bundle(index_dir: Path) -> Bundle | None:
    try:
        return load_current(index_dir)
    except IndexLoadError:
        return None  # first build, or a corrupt live bundle that this build replaces


def rebuild_index(
    index_dir: Path | str,
    embedder: Embedder,
    database_url: str | None = None,
    options: IndexOptions = DEFAULT_INDEX_OPTIONS,
) -> PublishResult:
    """Build a bundle from the database's published FAQs, save it and make it
    CURRENT. Blocking (embedding, classifier fit, fsync): run it in a thread."""
    index_dir = Path(index_dir)
    started = time.perf_counter()
    with index_lock(index_dir):
        with session_scope(database_url) as session:
            records = published_records(session)
        calls_before = embedder.model_calls
        bundle = build_bundle(
            records, embedder, previous=_previous_bundle(index_dir), options=options
        )
        version = save_bundle(bundle, index_dir)
    result = PublishResult(
        ok=True,
        version=version,
        faqs=len(bundle.faqs),
        vectors=bundle.n_rows,
        embedded=embedder.model_calls - calls_before,
        seconds=round(time.perf_counter() - started, 3),
    )
    logger.info(
        "published index %s: %d FAQs, %d texts (%d newly embedded) in %.2f s",
        version,
        result.faqs,
        result.vectors,
        result.embedded,
        result.seconds,
    )
    return result


def index_status(index_dir: Path | str) -> dict[str, Any] | None:
    """What is live, from ``meta.json`` only (cheap enough for every page view)."""
    index_dir = Path(index_dir)
    try:
        version = read_current(index_dir)
        meta = json.loads((index_dir / version / "meta.json").read_text("utf-8"))
    except (IndexLoadError, OSError, ValueError):
        return None
    return {
        "version": version,
        "created_at": meta.get("created_at"),
        "faqs": meta.get("n_faqs", 0),
        "vectors": meta.get("n_vectors", 0),
        "languages": meta.get("languages", []),
        "current_file": str(index_dir / CURRENT_FILE),
    }


class Publisher:
    """Runs rebuilds off the event loop, one at a time, coalescing requests.

    Each ``publish()`` call takes a ticket after its caller committed its change.
    A rebuild that starts after a ticket was taken reads that change from the
    database, so callers whose ticket it covers return its result instead of
    queueing another rebuild: ten quick edits cost at most two rebuilds.
    """

    def __init__(self, rebuild: Callable[[], PublishResult]) -> None:
        self._rebuild = rebuild
        self._lock = asyncio.Lock()
        self._requested = 0
        self._covered = 0
        self.last: PublishResult | None = None
        self.rebuilds = 0

    async def publish(self) -> PublishResult:
        self._requested += 1
        ticket = self._requested
        async with self._lock:
            if self._covered >= ticket and self.last is not None and self.last.ok:
                return self.last
            target = self._requested
            started = time.perf_counter()
            try:
                result = await asyncio.to_thread(self._rebuild)
            except Exception as exc:  # noqa: BLE001 - reported to staff, the old index stays live
                logger.exception("publishing the index failed")
                result = PublishResult(
                    ok=False,
                    error=f"{type(exc).__name__}: {exc}",
                    seconds=round(time.perf_counter() - started, 3),
                )
            else:
                self._covered = target
            self.rebuilds += 1
            self.last = result
            return result
