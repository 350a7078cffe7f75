"""Index bundles at scale: the vector index kind follows the KB size, its recall against flat
is recorded, and saved bundles are loaded memory-mapped (several action servers share pages)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from knowledge_base.factory import index_options
from knowledge_base.index import (
    INDEX_FILE,
    IndexOptions,
    build_bundle,
    load_bundle,
    load_current,
    save_bundle,
)
from knowledge_base.retriever import Retriever
from tests.unit.kb_tiny import TINY_KB, shared_embedder


@pytest.fixture(scope="module")
def ivf_bundle():
    # A threshold of 1 row forces the large-KB path on the tiny KB.
    return build_bundle(
        TINY_KB, shared_embedder(), options=IndexOptions(kind="auto", flat_max_rows=1)
    )


def test_small_kb_gets_a_flat_index_by_default():
    bundle = build_bundle(TINY_KB, shared_embedder())
    assert bundle.meta["index"]["kind"] == "flat"
    assert bundle.meta["index"]["recall_at_1"] == 1.0


def test_above_the_threshold_the_index_is_ivf_with_measured_recall(ivf_bundle):
    meta = ivf_bundle.meta["index"]
    assert meta["kind"] == "ivf" and meta["n_rows"] == ivf_bundle.n_rows
    assert meta["nprobe"] >= 1 and meta["recall_at_1"] >= 0.99
    assert ivf_bundle.index.ntotal == ivf_bundle.n_rows


def test_ivf_bundle_answers_like_the_flat_one(ivf_bundle):
    flat = Retriever(
        build_bundle(TINY_KB, shared_embedder(), options=IndexOptions(kind="flat")),
        shared_embedder(),
    )
    ivf = Retriever(ivf_bundle, shared_embedder())
    for record in TINY_KB:
        question = record.question_texts()[0]
        assert [h.faq_id for h in ivf.search(question, k=3)] == [
            h.faq_id for h in flat.search(question, k=3)
        ]


def test_saved_bundle_loads_memory_mapped_with_its_index(ivf_bundle, tmp_path):
    version = save_bundle(ivf_bundle, tmp_path)
    folder = tmp_path / version
    assert (folder / INDEX_FILE).is_file()
    loaded = load_current(tmp_path)
    assert isinstance(loaded.vectors.base, np.memmap) or isinstance(loaded.vectors, np.memmap)
    assert loaded.index.ntotal == ivf_bundle.n_rows
    assert loaded.index.nprobe == ivf_bundle.meta["index"]["nprobe"]
    q = ivf_bundle.vectors[:3]
    np.testing.assert_array_equal(loaded.index.search(q, 3)[1], ivf_bundle.index.search(q, 3)[1])


def test_bundle_written_before_the_index_file_still_loads(ivf_bundle, tmp_path):
    version = save_bundle(build_bundle(TINY_KB, shared_embedder()), tmp_path)
    folder = tmp_path / version
    (folder / INDEX_FILE).unlink()
    meta = json.loads((folder / "meta.json").read_text())
    del meta["files"][INDEX_FILE]
    (folder / "meta.json").write_text(json.dumps(meta))
    loaded = load_bundle(folder)
    assert loaded.index.ntotal == loaded.n_rows  # flat index rebuilt from vectors.npy


def test_a_corrupt_index_file_is_refused(tmp_path):
    from knowledge_base.index import IndexLoadError

    version = save_bundle(build_bundle(TINY_KB, shared_embedder()), tmp_path)
    path = tmp_path / version / INDEX_FILE
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IndexLoadError, match="corrupt"):
        load_bundle(tmp_path / version)


def test_unknown_index_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown index kind"):
        build_bundle(TINY_KB, shared_embedder(), options=IndexOptions(kind="lsh", flat_max_rows=10))


def test_hnsw_chosen_by_the_large_kind_setting_is_saved_and_reloaded_tuned(tmp_path, monkeypatch):
    from askagency.config import get_settings

    monkeypatch.setenv("ASKAGENCY_INDEX_LARGE_KIND", "hnsw")
    monkeypatch.setenv("ASKAGENCY_INDEX_FLAT_MAX_ROWS", "1")
    get_settings.cache_clear()
    try:
        bundle = build_bundle(TINY_KB, shared_embedder(), options=index_options(get_settings()))
    finally:
        get_settings.cache_clear()
    meta = bundle.meta["index"]
    assert meta["kind"] == "hnsw" and meta["ef_search"] >= 16 and meta["recall_at_1"] >= 0.99
    version = save_bundle(bundle, tmp_path)
    loaded = load_current(tmp_path)
    assert loaded.version == version and loaded.index.hnsw.efSearch == meta["ef_search"]
    q = bundle.vectors[:3]
    np.testing.assert_array_equal(loaded.index.search(q, 3)[1], bundle.index.search(q, 3)[1])
