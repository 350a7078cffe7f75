"""Related FAQs (issue 21, item 2): staff's list in the store (validation, audit, restore,
cascade on delete, import/export) and what the index bundle offers after an answer (staff's list,
else the nearest FAQs of the same category and language), on the real database and a real small
index."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from knowledge_base import io as kb_io
from knowledge_base import store
from knowledge_base.index import Bundle, build_bundle, load_bundle, save_bundle
from knowledge_base.lexical import CharTfidf
from knowledge_base.models import RelatedFaq
from knowledge_base.related import default_related, related_faqs
from knowledge_base.store import FaqInput
from knowledge_base.types import FaqRecord
from tests.unit.kb_tiny import TINY_KB, shared_embedder


def make(faq_id: str, **changes: object) -> FaqInput:
    values: dict[str, object] = {
        "id": faq_id,
        "language": "en",
        "category": "items",
        "question": f"What about {faq_id}?",
        "answer": f"About {faq_id}.",
        "status": "published",
    }
    values.update(changes)
    return FaqInput.model_validate(values)


def related_errors(**changes: object) -> str:
    with pytest.raises(ValidationError) as info:
        make("liquids", **changes)
    return "; ".join(str(e["msg"]) for e in info.value.errors())


@pytest.fixture
def kb(db_session: Session) -> Session:
    for faq_id in ("liquids", "knives", "batteries", "pets"):
        store.create_faq(db_session, make(faq_id), "alice")
    store.create_faq(db_session, make("liquidos", language="es"), "alice")
    return db_session


# --- validation ------------------------------------------------------------------------------


def test_related_input_is_an_ordered_list_of_ids_and_a_csv_cell_works_too() -> None:
    assert make("liquids", related=["knives", "pets"]).related == ("knives", "pets")
    assert make("liquids", related="knives | pets").related == ("knives", "pets")
    assert make("liquids", related="").related == ()


@pytest.mark.parametrize(
    ("related", "reason"),
    [
        (["knives", "pets", "batteries", "tools"], "at most 3 related questions"),
        (["liquids"], "is this FAQ itself"),
        (["knives", "knives"], "repeats 'knives'"),
        (["Not An Id"], "not a valid FAQ id"),
        ([3], "not a valid FAQ id"),
    ],
)
def test_bad_related_lists_are_refused_with_a_clear_reason(related: object, reason: str) -> None:
    assert reason in related_errors(related=related)


def test_unknown_and_other_language_related_faqs_are_refused(kb: Session) -> None:
    with pytest.raises(store.RelatedInvalid) as info:
        store.update_faq(kb, "liquids", make("liquids", related=["nope", "liquidos"]), "bob")
    assert info.value.problems == ["'nope' does not exist", "'liquidos' is in 'es', not 'en'"]
    assert store.get_faq(kb, "liquids").related_links == []


# --- storing, history, deletion --------------------------------------------------------------


def test_related_list_is_stored_in_order_versioned_and_in_the_record(kb: Session) -> None:
    faq = store.update_faq(kb, "liquids", make("liquids", related=["pets", "knives"]), "bob")
    assert [link.related_id for link in faq.related_links] == ["pets", "knives"]
    assert store.to_record(faq).related == ("pets", "knives")
    latest = store.faq_history(kb, "liquids")[0]
    assert latest.before["related"] == [] and latest.after["related"] == ["pets", "knives"]
    # Reordering is a change; saving the same list is not.
    version = faq.version
    store.update_faq(kb, "liquids", make("liquids", related=["knives", "pets"]), "bob")
    assert faq.version == version + 1
    store.update_faq(kb, "liquids", make("liquids", related=["knives", "pets"]), "bob")
    assert faq.version == version + 1
    assert [r.related for r in store.published_records(kb) if r.id == "liquids"] == [
        ("knives", "pets")
    ]


def test_deleting_an_faq_removes_the_links_to_and_from_it(kb: Session) -> None:
    store.update_faq(kb, "liquids", make("liquids", related=["knives", "pets"]), "bob")
    store.update_faq(kb, "knives", make("knives", related=["liquids"]), "bob")
    kb.commit()
    store.delete_faq(kb, "knives", "bob")
    kb.commit()
    kb.expire_all()
    assert [link.related_id for link in store.get_faq(kb, "liquids").related_links] == ["pets"]
    assert kb.scalar(select(func.count()).select_from(RelatedFaq)) == 1


def test_restoring_an_old_version_leaves_out_related_faqs_that_are_gone(kb: Session) -> None:
    store.update_faq(kb, "liquids", make("liquids", related=["knives", "pets"]), "bob")
    kb.commit()
    with_links = store.faq_history(kb, "liquids")[0].id
    store.update_faq(kb, "liquids", make("liquids"), "bob")
    store.delete_faq(kb, "pets", "bob")
    kb.commit()
    faq = store.restore_version(kb, "liquids", with_links, "carol")
    assert [link.related_id for link in faq.related_links] == ["knives"]


def test_history_written_before_related_faqs_existed_still_restores(kb: Session) -> None:
    entry = store.faq_history(kb, "liquids")[0]
    entry.after = {k: v for k, v in entry.after.items() if k != "related"}
    kb.flush()
    store.update_faq(kb, "liquids", make("liquids", related=["knives"]), "bob")
    faq = store.restore_version(kb, "liquids", entry.id, "carol")
    assert faq.related_links == []


# --- import and export -----------------------------------------------------------------------


def test_export_and_import_carry_the_related_list(kb: Session) -> None:
    store.update_faq(kb, "liquids", make("liquids", related=["pets", "knives"]), "bob")
    for exporter in (kb_io.export_csv, kb_io.export_jsonl):
        buffer = io.StringIO(newline="")
        exporter(kb, buffer)
        parsed = kb_io.parse_bytes(buffer.getvalue().encode(), name=f"x.{exporter.__name__[7:]}")
        assert not parsed.errors
        rows = {row.id: row for row in parsed.rows}
        assert rows["liquids"].related == ("pets", "knives")
        assert rows["knives"].related == ()


def test_import_may_link_faqs_created_later_in_the_same_file(db_session: Session) -> None:
    # More than one flush batch (200 rows), and the first row links to the last one.
    rows = [make(f"faq-{i:03d}") for i in range(1, 260)]
    rows[0] = make("faq-001", related=["faq-259", "faq-002"])
    summary = kb_io.import_rows(db_session, rows, "importer")
    assert summary.created == 259
    faq = store.get_faq(db_session, "faq-001")
    assert [link.related_id for link in faq.related_links] == ["faq-259", "faq-002"]


def test_import_refuses_unknown_related_faqs_and_names_them(kb: Session) -> None:
    with pytest.raises(kb_io.ImportRefused, match="'ghost' does not exist"):
        kb_io.import_rows(kb, [make("knives", related=["ghost"])], "importer")


# --- what the bundle offers ------------------------------------------------------------------

KB = [
    *TINY_KB,
    FaqRecord(
        id="batteries",
        language="en",
        question="Can I take spare lithium batteries on the plane?",
        answer="Only in carry-on bags.",
        category="items",
        variants=("power bank in hand luggage",),
    ),
    FaqRecord(
        id="aerosols",
        language="en",
        question="Are aerosol cans like hairspray allowed in my carry-on?",
        answer="Up to 100 ml, in the liquids bag.",
        category="items",
        variants=("can I bring deodorant spray",),
        related=("batteries", "gone", "liquidos", "aerosols"),
    ),
]


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return build_bundle(KB, shared_embedder(), classifier=False)


def ids(records: list[FaqRecord]) -> list[str]:
    return [r.id for r in records]


def test_default_is_the_nearest_faqs_of_the_same_category_and_language(bundle: Bundle) -> None:
    offered = ids(related_faqs(bundle, "liquids", 3))
    assert sorted(offered) == ["aerosols", "batteries", "knives"]
    assert offered[0] == "aerosols"  # hairspray is closest to liquids
    assert ids(related_faqs(bundle, "liquids", 1)) == ["aerosols"]
    assert ids(related_faqs(bundle, "id-docs", 3)) == ["pets"]  # the only other "screening"
    assert related_faqs(bundle, "liquidos", 3) == []  # no category: no neighbours known
    assert related_faqs(bundle, "liquids", 0) == []
    assert related_faqs(bundle, "unknown", 3) == []


def test_staff_list_wins_keeping_only_faqs_in_the_bundle_in_the_same_language(
    bundle: Bundle,
) -> None:
    assert ids(related_faqs(bundle, "aerosols", 3)) == ["batteries"]
    assert ids(default_related(bundle, "aerosols", 2))[0] == "liquids"


def test_a_staff_list_of_faqs_all_gone_falls_back_to_the_neighbours(bundle: Bundle) -> None:
    records = [
        FaqRecord(**{**r.__dict__, "related": ("gone",)}) if r.id == "knives" else r for r in KB
    ]
    other = build_bundle(records, shared_embedder(), classifier=False)
    assert ids(related_faqs(other, "knives", 3)) == ids(default_related(other, "knives", 3))


def test_related_lists_survive_saving_and_loading_the_bundle(bundle: Bundle, tmp_path) -> None:
    loaded = load_bundle(tmp_path / save_bundle(bundle, tmp_path))
    assert loaded.faqs[loaded.faq_pos["aerosols"]].related == KB[-1].related
    assert ids(related_faqs(loaded, "liquids", 3)) == ids(related_faqs(bundle, "liquids", 3))


def test_neighbours_on_a_10k_faq_bundle_are_cheap_and_cached() -> None:
    """10,000 FAQs of 5 question vectors each (384 dims, like the bundled model) in 100
    categories: the first call pays for the centroids once per bundle, later calls are a
    100-row dot product, and a repeated FAQ is a dictionary hit."""
    rng = np.random.default_rng(7)
    n_faqs, per_faq, dim = 10_000, 5, 384
    vectors = rng.standard_normal((n_faqs * per_faq, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    faqs = [
        FaqRecord(id=f"faq-{i}", language="en", question="q", answer="a", category=f"c{i % 100}")
        for i in range(n_faqs)
    ]
    lexical, matrix = CharTfidf.fit_transform(["q"])
    big = Bundle(
        faqs=faqs,
        row_texts=["q"] * len(vectors),
        row_faq=np.repeat(np.arange(n_faqs, dtype=np.int32), per_faq),
        faq_offsets=np.arange(0, n_faqs * per_faq + 1, per_faq, dtype=np.int64),
        vectors=vectors,
        lexical=lexical,
        lex_matrix=matrix,
    )
    started = time.perf_counter()
    first = related_faqs(big, "faq-0", 3)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(1, 1001):
        related_faqs(big, f"faq-{i}", 3)
    per_call_s = (time.perf_counter() - started) / 1000
    started = time.perf_counter()
    assert related_faqs(big, "faq-0", 3) is first
    cached_s = time.perf_counter() - started
    print(
        f"10k FAQs: first {first_s * 1e3:.1f} ms, then {per_call_s * 1e6:.0f} us, cached "
        f"{cached_s * 1e6:.1f} us"
    )
    assert len(first) == 3 and {r.category for r in first} == {"c0"}
    assert first_s < 2.0 and per_call_s < 0.005


def test_a_file_without_the_related_column_keeps_the_lists_an_empty_cell_clears(
    kb: Session,
) -> None:
    store.update_faq(kb, "liquids", make("liquids", related=["pets"]), "bob")
    store.update_faq(kb, "knives", make("knives", related=["pets"]), "bob")
    header = "id,language,category,question,answer"
    old_format = f"{header}\nliquids,en,items,What about liquids?,New answer.\n"
    kb_io.import_rows(kb, kb_io.parse_bytes(old_format.encode(), name="a.csv").rows, "importer")
    assert store.to_record(store.get_faq(kb, "liquids")).related == ("pets",)
    assert store.get_faq(kb, "liquids").answer == "New answer."
    cleared = f"{header},related\nknives,en,items,What about knives?,About knives.,\n"
    kb_io.import_rows(kb, kb_io.parse_bytes(cleared.encode(), name="b.csv").rows, "importer")
    assert store.to_record(store.get_faq(kb, "knives")).related == ()
