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
        "did_you_mean": "Did you mean: {question}",
        "yes": "Yes",
        "no": "No",
        "none_of_these": "None of these",
        "rejected": ("Sorry about that. Please ask again in other words, or talk to a person."),
        "low_confidence": (
            "Sorry, I couldn't find an answer to that. You can rephrase your question, "
            "or talk to a person."
        ),
        "low_confidence_suggest": (
            "Sorry, I don't have a sure answer to that. One of these may help; if not, you can "
            "rephrase your question or talk to a person."
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
        "did_you_mean": "¿Se refiere a esta pregunta? {question}",
        "yes": "Sí",
        "no": "No",
        "none_of_these": "Ninguna de estas",
        "rejected": ("Disculpe. Vuelva a preguntar con otras palabras o hable con una persona."),
        "low_confidence": (
            "Lo siento, no encontré una respuesta. Puede reformular su pregunta "
            "o hablar con una persona."
        ),
        "low_confidence_suggest": (
            "Lo siento, no tengo una respuesta segura. Quizá le sirva una de estas; si no, puede "
            "reformular su pregunta o hablar con una persona."
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

# For citizens whose language the knowledge base lacks (or an FAQ without a translation): one
# sentence saying so and offering a person, in every language the detector knows
# (``detect_languages``), plus the person button's title. Languages with full ``TEXTS`` above
# are listed too so the note always matches the citizen's language.
NOT_TRANSLATED: dict[str, str] = {
    "en": "This answer is not available in your language yet; here it is in English.",
    "es": (
        "Esta respuesta todavía no está disponible en español; aquí la tiene en inglés. "
        "También puede hablar con una persona."
    ),
    "fr": (
        "Cette réponse n'est pas encore disponible en français ; la voici en anglais. "
        "Vous pouvez aussi parler à une personne."
    ),
    "de": (
        "Diese Antwort gibt es noch nicht auf Deutsch; hier ist sie auf Englisch. "
        "Sie können auch mit einer Person sprechen."
    ),
    "pt": (
        "Esta resposta ainda não está disponível em português; aqui está em inglês. "
        "Você também pode falar com uma pessoa."
    ),
    "it": (
        "Questa risposta non è ancora disponibile in italiano; eccola in inglese. "
        "Può anche parlare con una persona."
    ),
    "zh": "此答案暂时没有中文版本，以下是英文版本。您也可以与工作人员交谈。",
    "vi": (
        "Câu trả lời này chưa có bằng tiếng Việt; đây là bản tiếng Anh. "
        "Bạn cũng có thể nói chuyện với nhân viên."
    ),
    "ko": (
        "이 답변은 아직 한국어로 제공되지 않아 영어로 안내해 드립니다. "
        "상담원과 대화하실 수도 있습니다."
    ),
    "tl": (
        "Wala pang salin sa Tagalog ang sagot na ito; narito ito sa Ingles. "
        "Maaari ka ring makipag-usap sa isang tao."
    ),
    "ar": (
        "هذه الإجابة غير متوفرة بلغتك بعد، وإليك الإجابة باللغة الإنجليزية. "
        "يمكنك أيضًا التحدث مع موظف."
    ),
    "ru": (
        "Этот ответ пока недоступен на русском языке; вот он на английском. "
        "Вы также можете поговорить с сотрудником."
    ),
}

# When nothing matched in a language the knowledge base lacks.
NO_ANSWER_IN_LANGUAGE: dict[str, str] = {
    "en": "Sorry, I couldn't find an answer to that. You can talk to a person.",
    "es": "Lo siento, no encontré una respuesta. Puede hablar con una persona.",
    "fr": (
        "Désolé, je ne peux pas encore répondre en français et je n'ai pas trouvé de réponse. "
        "Vous pouvez parler à une personne."
    ),
    "de": (
        "Leider kann ich noch nicht auf Deutsch antworten und habe keine Antwort gefunden. "
        "Sie können mit einer Person sprechen."
    ),
    "pt": (
        "Desculpe, ainda não respondo em português e não encontrei uma resposta. "
        "Você pode falar com uma pessoa."
    ),
    "it": (
        "Mi dispiace, non rispondo ancora in italiano e non ho trovato una risposta. "
        "Può parlare con una persona."
    ),
    "zh": "抱歉，我暂时无法用中文回答，也没有找到答案。您可以与工作人员交谈。",
    "vi": (
        "Xin lỗi, tôi chưa thể trả lời bằng tiếng Việt và không tìm thấy câu trả lời. "
        "Bạn có thể nói chuyện với nhân viên."
    ),
    "ko": (
        "죄송합니다. 아직 한국어로 답변할 수 없으며 답변을 찾지 못했습니다. "
        "상담원과 대화하실 수 있습니다."
    ),
    "tl": (
        "Paumanhin, hindi pa ako makasagot sa Tagalog at wala akong nahanap na sagot. "
        "Maaari kang makipag-usap sa isang tao."
    ),
    "ar": "عذرًا، لا يمكنني الرد بلغتك بعد ولم أجد إجابة. يمكنك التحدث مع موظف.",
    "ru": (
        "Извините, я пока не отвечаю на русском языке и не нашёл ответа. "
        "Вы можете поговорить с сотрудником."
    ),
}

PERSON_TITLES: dict[str, str] = {
    "fr": "Parler à une personne",
    "de": "Mit einer Person sprechen",
    "pt": "Falar com uma pessoa",
    "it": "Parlare con una persona",
    "zh": "与工作人员交谈",
    "vi": "Nói chuyện với nhân viên",
    "ko": "상담원과 대화",
    "tl": "Makipag-usap sa tao",
    "ar": "التحدث مع موظف",
    "ru": "Поговорить с сотрудником",
}


def text(key: str, language: str, **values: Any) -> str:
    """The text for ``key`` in ``language`` (English when that language has no text yet)."""
    table = TEXTS.get(language) or TEXTS[DEFAULT_LANGUAGE]
    template = table.get(key) or TEXTS[DEFAULT_LANGUAGE][key]
    return template.format(**values) if values else template


def person_button(language: str) -> dict[str, str]:
    """The button that starts a handoff; its payload triggers the ``ask_human`` intent."""
    title = text("talk_to_person", language) if language in TEXTS else None
    title = title or PERSON_TITLES.get(language) or text("talk_to_person", DEFAULT_LANGUAGE)
    return {"title": title, "payload": "/ask_human"}


def not_translated_note(language: str) -> str:
    """Says the answer below is in English (the knowledge base lacks it in ``language``)."""
    return NOT_TRANSLATED.get(language) or NOT_TRANSLATED[DEFAULT_LANGUAGE]


def no_answer_in_language(language: str) -> str:
    return NO_ANSWER_IN_LANGUAGE.get(language) or NO_ANSWER_IN_LANGUAGE[DEFAULT_LANGUAGE]
