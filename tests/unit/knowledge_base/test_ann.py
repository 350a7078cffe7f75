"""knowledge_base.ann: flat up to a size, IVF above it with recall measured against flat,
memory-mapped loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge_base import ann


def clustered(n: int, dim: int = 64, centres: int = 200, seed: int = 0) -> np.ndarray:
    """FAQ-like data: variants scattered around their FAQ's centre."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.4 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_kind_is_chosen_by_size_and_can_be_forced() -> None:
    assert ann.choose_kind(10, flat_max_rows=100) == "flat"
    assert ann.choose_kind(100, flat_max_rows=100) == "flat"
    assert ann.choose_kind(101, flat_max_rows=100) == "ivf"
    assert ann.choose_kind(10, kind="ivf") == "ivf"
    assert ann.choose_kind(101, flat_max_rows=100, large_kind="hnsw") == "hnsw"
    assert ann.choose_kind(100, flat_max_rows=100, large_kind="hnsw") == "flat"
    assert ann.choose_kind(10, kind="hnsw") == "hnsw"
    with pytest.raises(ValueError, match="unknown index kind 'hnsw2'"):
        ann.choose_kind(10, kind="hnsw2")
    with pytest.raises(ValueError, match="unknown large index kind 'flat'"):
        ann.choose_kind(10, large_kind="flat")


def test_small_kbs_get_the_exact_flat_index() -> None:
    x = clustered(500)
    index, choice = ann.build_index(x, flat_max_rows=1000)
    assert choice.kind == "flat" and choice.recall_at_1 == 1.0 and index.ntotal == 500
    _, ids = index.search(x[:5], 1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_large_kbs_get_ivf_tuned_to_the_recall_target() -> None:
    x = clustered(8000)
    index, choice = ann.build_index(x, flat_max_rows=1000, recall_target=0.98)
    assert choice.kind == "ivf" and choice.n_rows == 8000 and index.ntotal == 8000
    assert choice.nlist == ann.ivf_nlist(8000) and 1 <= choice.nprobe <= choice.nlist
    assert choice.recall_at_1 >= 0.98
    # The recorded recall is what fresh paraphrase-like queries see, too.
    queries = ann.probe_queries(x, n=300, seed=7)
    assert ann.recall_at_1(index, queries, ann.exact_top1(x, queries)) >= 0.95
    assert choice.as_meta()["kind"] == "ivf"


def test_large_kbs_can_get_hnsw_tuned_to_the_recall_target() -> None:
    x = clustered(8000)
    index, choice = ann.build_index(x, flat_max_rows=1000, recall_target=0.98, large_kind="hnsw")
    assert choice.kind == "hnsw" and choice.n_rows == 8000 and index.ntotal == 8000
    assert choice.hnsw_m == ann.HNSW_M and choice.nlist == 0 and choice.nprobe == 0
    assert ann.EF_SEARCH_START <= choice.ef_search <= ann.MAX_EF_SEARCH
    assert index.hnsw.efSearch == choice.ef_search and choice.recall_at_1 >= 0.98
    queries = ann.probe_queries(x, n=300, seed=7)
    assert ann.recall_at_1(index, queries, ann.exact_top1(x, queries)) >= 0.95


def test_exact_top1_matches_brute_force_across_chunks() -> None:
    x = clustered(1000)
    q = ann.probe_queries(x, n=50)
    assert (ann.exact_top1(x, q, chunk=128) == (q @ x.T).argmax(axis=1)).all()


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_memory_mapped_index_answers_like_the_built_one(tmp_path: Path, kind: str) -> None:
    x = clustered(4000)
    index, choice = ann.build_index(x, kind=kind)
    path = tmp_path / "vectors.faiss"
    ann.write_index(index, path)
    q = ann.probe_queries(x, n=20)
    expected = index.search(q, 5)[1]
    for mmap in (True, False):
        loaded = ann.read_index(path, nprobe=choice.nprobe, mmap=mmap, ef_search=choice.ef_search)
        assert (loaded.search(q, 5)[1] == expected).all()
        if kind == "hnsw":  # the tuned search effort is restored, not FAISS's default
            assert loaded.hnsw.efSearch == choice.ef_search


def test_reading_a_missing_or_corrupt_index_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ann.IndexFileError, match="absent.faiss"):
        ann.read_index(tmp_path / "absent.faiss")
    broken = tmp_path / "broken.faiss"
    broken.write_bytes(b"not an index")
    for mmap in (True, False):
        with pytest.raises(ann.IndexFileError, match="broken.faiss"):
            ann.read_index(broken, mmap=mmap)
