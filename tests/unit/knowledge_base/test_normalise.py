"""Query normalisation: texting shorthand and spelling against the KB's own words."""

from __future__ import annotations

from knowledge_base.normalise import Normaliser

KB = ["What are the rules for liquids in carry-on bags?", "Can I bring shampoo through security?"]


def test_texting_and_spelling_are_fixed_punctuation_kept() -> None:
    normalise = Normaliser("en", KB)
    assert normalise("wat r the rules 4 liquids") == "what are the rules for liquids"
    assert normalise("shampooo thru securty w/ carry-on?") == (
        "shampoo through security with carry-on?"
    )


def test_unknown_words_without_a_close_kb_word_stay() -> None:
    normalise = Normaliser("en", KB)
    assert normalise("where is my uber") == "where is my uber"


def test_other_languages_get_no_english_shorthand() -> None:
    assert Normaliser("es", ["¿Qué líquidos puedo llevar?"])("u r 4") == "u r 4"
