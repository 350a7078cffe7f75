"""Builds the retrieval path from the settings: the one place that reads configuration for
the library (which itself takes everything as arguments).

The action server, the console and the CLI each used to assemble their own embedder, cache path
and retriever handle; they now call :func:`open_retriever`, so a new setting reaches all three.
Importing this module loads no model: the embedder loads on first use.
"""

from __future__ import annotations

from collections.abc import Iterable

from askagency.config import Settings
from knowledge_base.embedder import Embedder, get_embedder
from knowledge_base.index import IndexOptions, build_bundle
from knowledge_base.retriever import LanguageOptions, Retriever, RetrieverHandle
from knowledge_base.types import FaqRecord


def embedder_for(settings: Settings, model_path: str | None = None) -> Embedder:
    """The process's embedder of ``model_path`` (default: the main ``embedding_model``)."""
    return get_embedder(
        model_path or settings.embedding_model,
        settings.embedding_cache,
        settings.embedding_batch_size,
        settings.embedding_int8,
        settings.embedding_runtime,
        settings.embedding_export_dir,
    )


def language_options(settings: Settings) -> LanguageOptions:
    return LanguageOptions(
        main_language=settings.default_language,
        language_models=dict(settings.embedding_models),
        dictionary_dirs=tuple(str(d) for d in settings.dictionary_dirs),
        normalise=settings.query_normalisation,
    )


def index_options(settings: Settings) -> IndexOptions:
    return IndexOptions(
        kind=settings.index_kind,
        flat_max_rows=settings.index_flat_max_rows,
        large_kind=settings.index_large_kind,
    )


def open_retriever(settings: Settings, embedder: Embedder | None = None) -> RetrieverHandle:
    """A handle on the live index of ``settings.index_dir`` that follows new versions.
    ``embedder``: one the caller already holds (default: :func:`embedder_for`)."""
    assert settings.index_dir is not None  # filled in by Settings
    return RetrieverHandle(
        settings.index_dir,
        embedder or embedder_for(settings),
        max_chars=settings.max_message_chars,
        languages=language_options(settings),
    )


def retriever_over(
    records: Iterable[FaqRecord], settings: Settings, embedder: Embedder | None = None
) -> Retriever:
    """A retriever over an index of ``records`` built in memory as ``kb build-index`` builds
    one (nothing is saved or made live): what ``kb calibrate`` asks its held-out questions of."""
    embedder = embedder or embedder_for(settings)
    return Retriever(
        build_bundle(list(records), embedder, options=index_options(settings)),
        embedder,
        max_chars=settings.max_message_chars,
        languages=language_options(settings),
    )
