"""Spanish (and a language the knowledge base lacks) through the real stack.

Rasa's REST webhook, the action server and the sample KB (English + Spanish FAQs): Spanish
questions get the Spanish FAQ of their translation group, control responses come in Spanish
(the ``language`` slot is set before Rasa picks them), a French question gets a note in French
and the offer of a person, and handoff tickets record the language.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from askagency.bot_messages import FIELD_OUT_OF_SCOPE, MessageType
from tests.stack import RestClient, cli, custom_of

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def new_sender() -> str:
    return f"citizen-{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize(
    ("question", "group"),
    [
        ("¿puedo llevar un cuchillo en el avión?", "sharp-knives-carry-on"),
        ("¿necesito real id para volar?", "id-real-id"),
        ("¿puedo llevar mi laptop en el equipaje de mano?", "electronics-laptop-carry-on"),
        ("cuanta formula puedo llevar para mi bebe", "kids-baby-formula"),
    ],
)
def test_spanish_question_gets_the_spanish_faq_of_its_group(
    rest: RestClient, question: str, group: str
) -> None:
    messages = rest.send(new_sender(), question, language="es")
    assert len(messages) == 1, messages
    custom = messages[0]["custom"]
    assert custom["type"] == MessageType.FAQ_ANSWER, messages
    assert custom["faq_id"] == f"{group}-es"
    assert custom["language"] == "es"
    assert "translated" not in custom
    assert "Fuente:" in messages[0]["text"]


def test_a_spanish_question_a_spanish_entry_takes_names_it(rest: RestClient) -> None:
    """The sample's Spanish out-of-scope entries take Spanish questions the way the English ones
    take English questions: the fallback offers a person and names the entry (which files the
    question apart in the unanswered queue and shows its note to the agent)."""
    messages = rest.send(
        new_sender(), "quiero cancelar mi vuelo y que me devuelvan el dinero", language="es"
    )
    custom = messages[0]["custom"]
    assert custom["type"] == MessageType.FALLBACK and custom["reason"] == "low_confidence"
    assert custom[FIELD_OUT_OF_SCOPE] == "out-of-scope-flights-bookings-es", custom


def test_spanish_is_detected_without_the_widget_hint(rest: RestClient) -> None:
    messages = rest.send(new_sender(), "¿puedo llevar un cuchillo en mi equipaje de mano?")
    custom = custom_of(messages)[0]
    assert custom["type"] == MessageType.FAQ_ANSWER, messages
    assert custom["faq_id"].endswith("-es")
    assert custom["language"] == "es"


def test_control_responses_follow_the_language(rest: RestClient) -> None:
    sender = new_sender()
    greeting = rest.send(sender, "hola", language="es")
    assert custom_of(greeting)[0]["type"] == MessageType.GREETING
    assert greeting[0]["text"].startswith("¡Hola!"), greeting
    thanks = rest.send(sender, "muchas gracias", language="es")
    assert thanks[0]["text"].startswith("¡De nada!"), thanks
    english = rest.send(new_sender(), "hello", language="en")
    assert english[0]["text"].startswith("Hi!"), english


def test_a_language_the_kb_lacks_gets_a_note_and_a_person(rest: RestClient) -> None:
    messages = rest.send(
        new_sender(), "Est-ce que je peux emporter mon ordinateur portable dans l'avion ?"
    )
    assert len(messages) == 1, messages
    custom = messages[0]["custom"]
    assert custom["translated"] is False, custom
    assert custom["type"] in ("faq_answer", "fallback")
    if custom["type"] == MessageType.FAQ_ANSWER:
        assert custom["language"] == "en" and custom["requested_language"] == "fr"
        assert messages[0]["text"].startswith("Cette réponse n'est pas encore disponible")
    else:
        assert custom["reason"] == "language_unavailable" and custom["language"] == "fr"
        assert "français" in messages[0]["text"]
    buttons = messages[0].get("buttons") or []
    assert {"title": "Parler à une personne", "payload": "/ask_human"} in buttons


def test_handoff_ticket_carries_the_language(rest: RestClient, stack_data_dir: Path) -> None:
    sender = new_sender()
    messages = rest.send(sender, "quiero hablar con una persona", language="es")
    custom = custom_of(messages)[0]
    assert custom["type"] == MessageType.HANDOFF, messages
    # The handoff texts are Spanish too.
    assert any(w in messages[0]["text"] for w in ("persona", "equipo")), messages
    with sqlite3.connect(stack_data_dir / "askagency.db") as db:
        row = db.execute(
            "SELECT language FROM handoff_ticket WHERE conversation_id = ?", (sender,)
        ).fetchone()
    assert row == ("es",)


def test_evaluate_command_on_the_spanish_file(stack_data_dir: Path, tmp_path: Path) -> None:
    report_file = tmp_path / "es.json"
    cli(
        stack_data_dir,
        "kb",
        "evaluate",
        str(ROOT / "knowledge_base" / "sample" / "eval_queries_es.csv"),
        "--language",
        "es",
        "--no-sweep",
        "--json",
        str(report_file),
    )
    report = json.loads(report_file.read_text())
    # Measured 86.0% top-1 / 92.5% top-3, 55.8% answered right, no wrong answer, 18 of 20
    # out-of-scope questions handed off, right FAQ within one click 89.2%, with the bundled
    # English model plus the FreeDict word-by-word translation and the Spanish out-of-scope
    # entries (docs/languages.md, docs/quality.md); the Spanish thresholds come from the
    # development file, not this one. Before the entries: 88.2% / 96.8%, 49.6% right, 71.0%
    # within one click, 17 of 20 handed off (an entry also takes a few in-scope questions).
    assert report["n_in_scope"] == 93 and report["n_out_of_scope"] == 20
    assert report["top1"] >= 0.84, report
    assert report["top3"] >= 0.91, report
    assert report["answered_correct"] >= 0.53, report
    assert report["answered_wrong"] <= 0.02, report
    assert report["within_one_click"] >= 0.87, report
    assert report["oos_recall"] >= 0.85, report
    assert report["thresholds"]["answer_threshold"] == 0.45  # the Spanish calibration


def test_dashboard_splits_metrics_by_language(rest: RestClient, stack_data_dir: Path) -> None:
    """A Spanish conversation (detected, no widget hint) reaches analytics as language "es"
    and the dashboard's language filter selects it."""
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from analytics.dashboard import compute_dashboard
    from analytics.metrics import Assumptions, MetricFilter
    from askagency.db import make_engine

    sender = new_sender()
    rest.send(sender, "¿puedo llevar un cuchillo en mi equipaje de mano?")
    db_file = stack_data_dir / "askagency.db"
    language = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and language is None:
        with sqlite3.connect(db_file) as db:
            try:
                row = db.execute(
                    "SELECT language FROM analytics_conversation WHERE sender_id = ?", (sender,)
                ).fetchone()
            except sqlite3.OperationalError:  # tables not created yet by the consumer
                row = None
        language = row[0] if row else None
        if language is None:
            time.sleep(0.5)
    assert language == "es"

    today = datetime.now(UTC).date().isoformat()
    engine = make_engine(f"sqlite:///{db_file}")
    try:
        with Session(engine) as session:
            spanish = compute_dashboard(
                session, MetricFilter.parse(today, today, language="es"), Assumptions(6.0, 37.5)
            )
    finally:
        engine.dispose()
    assert "es" in spanish.languages
    assert spanish.language == "es"
    by_language = {b.key: b.conversations for b in spanish.by_language}
    assert by_language.get("es", 0) >= 1 and set(by_language) == {"es"}
