"""Fixed texts of the custom actions, per language.

Kept apart from the action logic so another language is one more dict; the responses of simple
intents (greet, thanks, ...) stay in ``bot/domain.yml``. Unknown languages fall back to English.
"""

from __future__ import annotations

from typing import Any

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "source": "Source: {url}",
        "clarify": "Did you mean one of these?",
        "low_confidence": (
            "Sorry, I couldn't find an answer to that. You can rephrase your question, "
            "or talk to a person."
        ),
        "too_long": (
            "Your message is too long for me ({length} characters). Please shorten it to "
            "{limit} characters or fewer, or talk to a person."
        ),
        "empty": 'Please type your question, for example: "Can I bring a laptop?"',
        "unavailable": (
            "Sorry, I can't look that up right now. Please try again in a few minutes, "
            "or talk to a person."
        ),
        "unknown_option": (
            "Sorry, that option is no longer available. Please ask your question again."
        ),
        "talk_to_person": "Talk to a person",
    },
    "es": {
        "source": "Fuente: {url}",
        "clarify": "¿Quiso decir alguna de estas?",
        "low_confidence": (
            "Lo siento, no encontré una respuesta. Puede reformular su pregunta "
            "o hablar con una persona."
        ),
        "too_long": (
            "Su mensaje es demasiado largo ({length} caracteres). Acórtelo a {limit} "
            "caracteres o menos, o hable con una persona."
        ),
        "empty": 'Escriba su pregunta, por ejemplo: "¿Puedo llevar una computadora portátil?"',
        "unavailable": (
            "Lo siento, ahora no puedo consultar eso. Inténtelo de nuevo en unos minutos "
            "o hable con una persona."
        ),
        "unknown_option": (
            "Lo siento, esa opción ya no está disponible. Vuelva a hacer su pregunta."
        ),
        "talk_to_person": "Hablar con una persona",
    },
}

DEFAULT_LANGUAGE = "en"


def text(key: str, language: str, **values: Any) -> str:
    """The text for ``key`` in ``language`` (English when that language has no text yet)."""
    table = TEXTS.get(language) or TEXTS[DEFAULT_LANGUAGE]
    template = table.get(key) or TEXTS[DEFAULT_LANGUAGE][key]
    return template.format(**values) if values else template


def person_button(language: str) -> dict[str, str]:
    """The button that starts a handoff; its payload triggers the ``ask_human`` intent."""
    return {"title": text("talk_to_person", language), "payload": "/ask_human"}
