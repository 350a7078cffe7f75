"""Embedder: normalised float32 vectors, lazy loading, persistent cache."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_base.embedder import Embedder, EmbedderError, EmbeddingCache
from tests.unit.kb_tiny import fresh_embedder, shared_embedder


def test_constructing_does_not_load_the_model(tmp_path):
    embedder = Embedder("/definitely/not/a/model", cache_path=tmp_path / "c.sqlite")
    assert not embedder.loaded
    with pytest.raises(EmbedderError, match="Cannot load embedding model"):
        embedder.encode(["hello"])


def test_empty_model_path_is_a_clear_error():
    with pytest.raises(EmbedderError, match="No embedding model configured"):
        Embedder("")


def test_vectors_are_normalised_float32():
    embedder = shared_embedder()
    vectors = embedder.encode(["can I bring a laptop", "liquids in carry-on", "pets"])
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = embedder.encode_query("can I bring a laptop")
    assert query.shape == (embedder.dim,)
    assert float(query @ vectors[0]) > 0.99


def test_second_encode_hits_the_cache_not_the_model(tmp_path):
    embedder = fresh_embedder(tmp_path / "cache.sqlite")
    texts = ["is a water bottle allowed", "can I pack a knife", "is a water bottle allowed"]
    first = embedder.encode(texts)
    assert embedder.model_calls == 2  # duplicates embedded once
    second = embedder.encode(texts)
    assert embedder.model_calls == 2
    np.testing.assert_array_equal(first, second)
    # The cache is persistent: a new process (new embedder) reuses it too.
    again = fresh_embedder(tmp_path / "cache.sqlite")
    np.testing.assert_allclose(again.encode(texts[:2]), first[:2])
    assert again.model_calls == 0
    # Only the new text goes through the model.
    again.encode([*texts, "a brand new question"])
    assert again.model_calls == 1


def test_queries_are_never_persisted(tmp_path):
    embedder = fresh_embedder(tmp_path / "cache.sqlite")
    embedder.encode_query("my phone number is 555 0100")
    embedder.encode(["citizen text"], use_cache=False)
    assert embedder.cache is not None and embedder.cache.count() == 0


def test_cache_ignores_vectors_of_another_dimension(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.put_many("m", [(b"k" * 32, np.ones(3, dtype=np.float32))])
    assert cache.get_many("m", [b"k" * 32], dim=3)[b"k" * 32].tolist() == [1, 1, 1]
    assert cache.get_many("m", [b"k" * 32], dim=384) == {}
    assert cache.get_many("other-model", [b"k" * 32], dim=3) == {}


def test_bad_input():
    embedder = shared_embedder()
    with pytest.raises(TypeError):
        embedder.encode("a single string")
    assert embedder.encode([]).shape == (0, embedder.dim)


def test_recent_citizen_texts_are_embedded_once_and_kept_only_in_memory(tmp_path):
    embedder = fresh_embedder(tmp_path / "cache.sqlite")
    query = embedder.encode_query("can I take my cat on the plane")
    assert embedder.model_calls == 1
    # The rephrase check embeds the question again with earlier ones: only the new text runs.
    both = embedder.encode(
        ["can I take my cat on the plane", "is a dog allowed in the cabin"], use_cache=False
    )
    assert embedder.model_calls == 2 and embedder.recent_hits == 1
    np.testing.assert_array_equal(both[0], query)
    assert embedder.cache is not None and embedder.cache.count() == 0
    # Bounded: the oldest texts are forgotten.
    from knowledge_base import embedder as module

    embedder._remember((f"t{i}", query) for i in range(module.RECENT_TEXTS + 10))
    assert len(embedder._recent) == module.RECENT_TEXTS and "t0" not in embedder._recent
    # Forgotten on request (benchmarks): the same question runs through the model again.
    embedder.forget_recent()
    embedder.encode_query("can I take my cat on the plane")
    assert embedder.model_calls == 3


def int8_embedder(tmp_path, mode):
    """An int8-mode embedder reusing the loaded float model (quantised on a copy)."""
    shared = shared_embedder()
    embedder = Embedder(shared.model_path, cache_path=tmp_path / "cache.sqlite", int8=mode)
    embedder._model = shared._load()
    return embedder, shared


def test_int8_queries_keep_stored_vectors_float_and_never_share_cache_keys(tmp_path):
    embedder, float_embedder = int8_embedder(tmp_path, "queries")
    # Stored question vectors: the float model's, so an index built in float still loads.
    assert embedder.model_id == float_embedder.model_id
    assert embedder.query_model_id == f"{float_embedder.model_id}-int8pc"
    text = "can I bring a laptop in my hand luggage"
    stored = embedder.encode([text])
    np.testing.assert_allclose(stored, float_embedder.encode([text]), atol=1e-5)
    # Citizen queries: the int8 model, close to the float vector but not the same.
    query = embedder.encode_query(text)
    np.testing.assert_allclose(np.linalg.norm(query), 1.0, atol=1e-5)
    assert 0.85 < float(query @ stored[0]) < 0.9999
    # Labelled test queries may be cached, under the int8 id: the same text as a stored
    # question and as a query are two cache rows, each read back with its own precision.
    as_query = embedder.encode([text], query=True)
    np.testing.assert_allclose(as_query[0], query, atol=1e-5)
    assert embedder.cache.count(embedder.model_id) == 1
    assert embedder.cache.count(embedder.query_model_id) == 1
    again = Embedder(embedder.model_path, cache_path=tmp_path / "cache.sqlite", int8="queries")
    np.testing.assert_array_equal(again.encode([text]), stored)
    np.testing.assert_array_equal(again.encode([text], query=True), as_query)
    assert again.model_calls == 0 and not again.loaded


def test_int8_everywhere_changes_the_index_model_id(tmp_path):
    embedder, float_embedder = int8_embedder(tmp_path, "all")
    assert embedder.model_id == embedder.query_model_id != float_embedder.model_id
    stored = embedder.encode(["is a water bottle allowed"])
    np.testing.assert_allclose(
        stored[0], embedder.encode_query("is a water bottle allowed"), atol=1e-5
    )


def test_int8_query_model_alone_is_quantised_in_place_not_copied(tmp_path):
    embedder = Embedder(shared_embedder().model_path, int8="queries")
    embedder.encode_query("where is my refund")
    assert embedder._int8_model is not None and embedder._model is None  # one copy in memory
    assert embedder.encode(["where is my refund"], use_cache=False, query=False).shape == (
        1,
        embedder.dim,
    )
    assert embedder._model is not None  # stored-question vectors load the float model


def test_few_texts_take_the_direct_path_with_the_same_vectors():
    embedder = shared_embedder()
    texts = ["how do I renew my passport", "lost card"]
    direct = embedder._run_model(texts)
    reference = embedder._load().encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(direct, reference, atol=1e-5)


def test_unknown_int8_mode_is_a_clear_error():
    with pytest.raises(EmbedderError, match="int8 mode"):
        Embedder(shared_embedder().model_path, int8="fp16")


def test_data_folders_may_share_one_vector_cache(tmp_path):
    """``embedding_cache_file``: vectors are keyed by model and text, so two data folders (the
    test stacks of ``make test``) can share one cache and the second build embeds nothing."""
    from askagency.config import Settings

    shared = tmp_path / "shared" / "vectors.sqlite"
    first, second = (Settings(data_dir=tmp_path / n, embedding_cache_file=shared) for n in "ab")
    assert first.embedding_cache == second.embedding_cache == shared
    own = Settings(data_dir=tmp_path / "c").embedding_cache
    assert own == tmp_path / "c" / "cache" / "embeddings.sqlite"
    texts = ["is a water bottle allowed", "can I pack a knife"]
    shared.parent.mkdir()
    vectors = fresh_embedder(first.embedding_cache).encode(texts)
    again = fresh_embedder(second.embedding_cache)
    np.testing.assert_allclose(again.encode(texts), vectors)
    assert again.model_calls == 0
