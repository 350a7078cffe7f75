"""Index bundle: build, save, load, atomic CURRENT swap, pruning, corruption."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from knowledge_base.index import (
    CURRENT_FILE,
    IndexLoadError,
    build_bundle,
    list_versions,
    load_bundle,
    load_current,
    read_current,
    save_bundle,
)
from knowledge_base.types import FaqRecord
from tests.unit.kb_tiny import TINY_KB, shared_embedder


@pytest.fixture(scope="module")
def bundle():
    return build_bundle(TINY_KB, shared_embedder())


def test_build_has_one_row_per_question_text(bundle):
    n_texts = sum(len(r.question_texts()) for r in TINY_KB)
    assert bundle.n_rows == n_texts == bundle.index.ntotal
    assert bundle.meta["n_faqs"] == len(TINY_KB)
    assert bundle.meta["languages"] == ["en", "es"]
    # rows of each FAQ are contiguous and map back to it
    for pos, faq in enumerate(bundle.faqs):
        rows = range(bundle.faq_offsets[pos], bundle.faq_offsets[pos + 1])
        assert [bundle.row_texts[r] for r in rows] == list(faq.question_texts())
        assert all(bundle.row_faq[r] == pos for r in rows)
    np.testing.assert_allclose(np.linalg.norm(bundle.vectors, axis=1), 1, atol=1e-5)
    assert bundle.clf_coef is not None and bundle.clf_coef.shape == (len(TINY_KB), bundle.dim)


def test_duplicate_ids_and_blank_texts():
    with pytest.raises(ValueError, match="Duplicate FAQ ids"):
        build_bundle([TINY_KB[0], TINY_KB[0]], shared_embedder())
    messy = FaqRecord(
        id="x",
        language="en",
        question="  Can I   bring food? ",
        answer="Yes.",
        variants=("", "can i bring FOOD?", "snacks on the plane"),
    )
    built = build_bundle([messy], shared_embedder())
    assert built.row_texts == ["Can I bring food?", "snacks on the plane"]
    assert built.clf_coef is None  # one FAQ: nothing to classify


def test_empty_kb_builds_an_empty_bundle(tmp_path):
    empty = build_bundle([], shared_embedder())
    version = save_bundle(empty, tmp_path)
    loaded = load_current(tmp_path)
    assert loaded.n_rows == 0 and loaded.faqs == [] and loaded.version == version


def test_save_load_round_trip(bundle, tmp_path):
    version = save_bundle(bundle, tmp_path)
    assert read_current(tmp_path) == version
    loaded = load_current(tmp_path)
    assert loaded.version == version
    assert loaded.faqs == bundle.faqs  # answers and source URLs travel with the index
    assert loaded.row_texts == bundle.row_texts
    np.testing.assert_array_equal(loaded.vectors, bundle.vectors)
    np.testing.assert_array_equal(loaded.clf_coef, bundle.clf_coef)
    assert (loaded.lex_matrix != bundle.lex_matrix).nnz == 0
    assert not list(tmp_path.glob(".tmp-*")) and not list(tmp_path.glob(".CURRENT*"))


def test_keeps_last_three_versions(bundle, tmp_path):
    versions = [save_bundle(bundle, tmp_path) for _ in range(5)]
    assert len(set(versions)) == 5
    assert list_versions(tmp_path) == sorted(versions)[-3:]
    assert read_current(tmp_path) == versions[-1]


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexLoadError, match="build-index"):
        load_current(tmp_path)
    (tmp_path / CURRENT_FILE).write_text("../etc\n")
    with pytest.raises(IndexLoadError, match="valid index version"):
        load_current(tmp_path)
    (tmp_path / CURRENT_FILE).write_text("20990101T000000Z-gone\n")
    with pytest.raises(IndexLoadError, match="does not exist"):
        load_current(tmp_path)


@pytest.mark.parametrize("name", ["vectors.npy", "arrays.npz", "faqs.json", "lexical.npz"])
def test_corrupt_file_is_detected(bundle, tmp_path, name):
    version = save_bundle(bundle, tmp_path)
    path = tmp_path / version / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexLoadError, match="corrupt"):
        load_bundle(tmp_path / version)


def test_missing_file_and_bad_meta(bundle, tmp_path):
    version = save_bundle(bundle, tmp_path)
    (tmp_path / version / "lexical.npz").unlink()
    with pytest.raises(IndexLoadError):
        load_current(tmp_path)
    (tmp_path / version / "meta.json").write_text("{not json")
    with pytest.raises(IndexLoadError, match="Cannot load"):
        load_current(tmp_path)


def test_reader_never_sees_a_half_written_bundle(bundle, tmp_path):
    save_bundle(bundle, tmp_path)
    errors: list[Exception] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                loaded = load_current(tmp_path)
                assert loaded.n_rows == bundle.n_rows
            except IndexLoadError as exc:  # a version pruned between CURRENT read and load
                if "does not exist" not in str(exc):
                    errors.append(exc)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(8):
        save_bundle(bundle, tmp_path, keep=50)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []


def test_warm_start_from_previous(bundle):
    edited = [
        *TINY_KB[:3],
        FaqRecord(id="new", language="en", question="Lost and found?", answer="Call us."),
    ]
    rebuilt = build_bundle(edited, shared_embedder(), previous=bundle)
    assert rebuilt.meta["warm_started"] is True
    assert [f.id for f in rebuilt.faqs] == ["liquids", "knives", "id-docs", "new"]


def test_small_edit_reuses_the_lexical_model(bundle):
    first = TINY_KB[0]
    edited = [
        FaqRecord(**{**first.__dict__, "variants": (*first.variants, "tiny bottles of gel")}),
        *TINY_KB[1:],
    ]
    rebuilt = build_bundle(edited, shared_embedder(), previous=bundle)
    assert rebuilt.meta["lexical_stale_texts"] == 1
    assert rebuilt.lexical is bundle.lexical
    old_row = bundle.row_texts.index("Can I pack a pocket knife?")
    new_row = rebuilt.row_texts.index("Can I pack a pocket knife?")
    assert (rebuilt.lex_matrix[new_row] != bundle.lex_matrix[old_row]).nnz == 0
    assert rebuilt.lex_matrix[rebuilt.row_texts.index("tiny bottles of gel")].nnz > 0
    # A large change refits the lexical model from scratch.
    many = [
        FaqRecord(id=f"n{i}", language="en", question=f"new topic {i} about parking", answer="x")
        for i in range(30)
    ]
    refit = build_bundle([*TINY_KB, *many], shared_embedder(), previous=bundle)
    assert refit.meta["lexical_stale_texts"] == 0 and refit.lexical is not bundle.lexical


def test_query_weights_match_sklearn_transform(bundle):
    lexical = bundle.lexical
    queries = ["Can I bring liquids?", "", "¿Puedo llevar líquidos? 🙂", "zzzz qqqq", "a"]
    matrix = lexical.transform(queries)
    for i, query in enumerate(queries):
        cols, weights = lexical.query_weights(query)
        dense = np.zeros(lexical.n_features, dtype=np.float32)
        dense[cols] = weights
        np.testing.assert_allclose(dense, matrix[i].toarray().ravel(), atol=1e-6)
