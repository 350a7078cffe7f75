"""Content health's "few variants" list: published FAQs with fewer wordings than advised."""

from __future__ import annotations

from sqlalchemy.orm import Session

from knowledge_base import store
from knowledge_base.health import content_health, few_variants
from knowledge_base.store import FaqInput


def add(session: Session, faq_id: str, n_variants: int, status: str = "published") -> None:
    store.create_faq(
        session,
        FaqInput(
            id=faq_id,
            language="en",
            category="security",
            question=f"Question about {faq_id}?",
            answer=f"Answer about {faq_id}.",
            variants=tuple(f"{faq_id} wording {i}" for i in range(n_variants)),
            status=status,  # type: ignore[arg-type]
        ),
        "test",
    )


def test_fewest_first_published_only_and_the_advice_itself_is_enough(db_session: Session) -> None:
    add(db_session, "three", 3)
    add(db_session, "none", 0)
    add(db_session, "enough", 4)
    add(db_session, "one", 1)
    add(db_session, "draft", 0, status="draft")
    listed = few_variants(db_session, advised=4)
    assert [(i.faq_id, i.detail, i.days) for i in listed] == [
        ("none", "0 question variants; 4 or more advised", 4),
        ("one", "1 question variant; 4 or more advised", 3),
        ("three", "3 question variants; 4 or more advised", 1),
    ]


def test_zero_turns_the_check_off(db_session: Session) -> None:
    add(db_session, "none", 0)
    assert few_variants(db_session, advised=0) == []
    report = content_health(db_session, {}, None)
    assert report.few_variants == [] and report.counts()["few_variants"] == 0
    report = content_health(db_session, {}, None, advised_variants=1)
    assert [i.faq_id for i in report.few_variants] == ["none"]
    assert report.counts()["few_variants"] == 1
