"""The sentiment of a citizen's message, in English and Spanish.

Why VADER and not a model: it runs in microseconds on the CPU with no download, it handles
what chat messages do (negation, "very", "but", capitals, "!!!", emoji), and its numbers can be
explained to leadership. VADER's rules are English, and so is its lexicon; Spanish gets the same
rules over a Spanish lexicon: the Spanish translations of VADER's rated words from the FreeDict
English-Spanish dictionary (installed by `make setup`), overridden by a list written for
citizen service talk (``lexicons/sentiment-es.tsv``), with Spanish negators, boosters and "pero"
mapped to VADER's. Inflected forms match by Snowball stem ("enojada" -> "enojado").

Scores are VADER's compound score in [-1, 1]; :func:`label` uses VADER's own cut-offs.
docs/metrics.md reports the accuracy on the labelled development file.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from knowledge_base.glossary import DEFAULT_DICTIONARY_DIRS, dictd_files, read_dictd
from knowledge_base.text import fold, word_analyzer

logger = logging.getLogger(__name__)

LEXICONS = Path(__file__).with_name("lexicons")
SUPPORTED = ("en", "es")
POSITIVE_FROM = 0.05  # VADER's documented cut-offs for its compound score
NEGATIVE_UPTO = -0.05
Label = Literal["negative", "neutral", "positive"]
# Which translated words are kept (translated_lexicon), chosen on the development file.
MIN_WORD = 5
MIN_VALENCE = 2.0

# Spanish words that play the part of VADER's English rule words.
_SPANISH_RULE_WORDS = {
    **dict.fromkeys(
        (
            "no",
            "nunca",
            "jamas",
            "nada",
            "ni",
            "tampoco",
            "sin",
            "ningun",
            "ninguno",
            "ninguna",
            "nadie",
        ),
        "not",
    ),
    **dict.fromkeys(("muy", "tan", "bastante", "realmente", "super", "re"), "very"),
    **dict.fromkeys(("demasiado", "sumamente", "totalmente", "completamente"), "extremely"),
    **dict.fromkeys(("poco", "algo"), "slightly"),
    "pero": "but",
    "mas": "more",
}
_TOKEN = re.compile(r"^(\W*)(\w+)(\W*)$", re.UNICODE)
_CLAUSE_END = re.compile(r"[,;:.!?]")
# Neutral words (in no lexicon) that push a clause's negator out of VADER's 3-word window.
_FILLER = ("zzq", "zzq", "zzq")


def label(compound: float) -> Label:
    if compound >= POSITIVE_FROM:
        return "positive"
    if compound <= NEGATIVE_UPTO:
        return "negative"
    return "neutral"


def read_lexicon(path: Path) -> Iterator[tuple[str, float]]:
    """``word<TAB>valence`` lines; ``#`` starts a comment."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        word, valence = line.split("\t")[:2]
        yield word.strip().lower(), float(valence)


def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def translated_lexicon(
    english: dict[str, float], dictionary_dirs: Iterable[str | Path]
) -> dict[str, float]:
    """Spanish words with the mean valence of the rated English words they translate
    (FreeDict eng-spa); empty when the dictionary is not installed."""
    valences: dict[str, list[float]] = defaultdict(list)
    for directory in dictionary_dirs:
        files = dictd_files(Path(directory), "freedict-eng-spa")
        if not files:
            continue
        for headword, senses in read_dictd(*files):
            valence = english.get(headword.lower())
            if valence is None:
                continue
            for sense in senses:
                for translation in sense:
                    if translation.strip() and " " not in translation.strip():
                        valences[fold(translation.strip())].append(valence)
        break
    means = {word: sum(v) / len(v) for word, v in valences.items()}
    # Short words and mild valences are mostly a sense the citizen did not mean ("mano" from
    # "handy", "esperar" from "hope"): only long words with a strong valence are kept.
    return {w: v for w, v in means.items() if len(w) >= MIN_WORD and abs(v) >= MIN_VALENCE}


@dataclass
class Analyzer:
    """VADER with one language's lexicon; ``rule_words`` maps that language's negators,
    boosters and "but" to VADER's English ones."""

    language: str
    vader: Any
    rule_words: dict[str, str]
    stems: dict[str, str]

    def compound(self, text: str) -> float:
        prepared = self._prepare(text) if self.rule_words else text
        return float(self.vader.polarity_scores(prepared)["compound"])

    def _prepare(self, text: str) -> str:
        """Spanish text as VADER's rules can read it: opening ¿¡ gone, words without accents
        and in the lexicon's form, rule words in English; capitals and "!" kept.

        Spanish negation differs from English in two ways VADER would get wrong: "no ... nada"
        is one negation, not two (the second word is dropped), and VADER's three-word negation
        window would reach across a comma into the next clause ("no entiendo nada, es inútil"),
        so a negated clause is closed with neutral filler words."""
        out: list[str] = []
        negated = False
        for token in text.replace("¿", " ").replace("¡", " ").split():
            match = _TOKEN.match(token)
            if match is None:
                out.append(token)
                continue
            before, word, after = match.groups()
            folded = fold(word)
            mapped = self.rule_words.get(folded)
            if mapped == "not":
                if negated:
                    mapped = ""  # negative concord: "no ... nada" negates once
                negated = True
            elif mapped is None:
                if folded in self.vader.lexicon:
                    mapped = folded
                else:
                    mapped = self.stems.get(_stem(self.language, folded), folded)
            shout = word.isupper() and len(word) > 1
            if mapped:
                out.append(before + (mapped.upper() if shout else mapped) + after)
            if negated and _CLAUSE_END.search(after):
                out.extend(_FILLER)
                negated = False
        return " ".join(out)


def _stem(language: str, word: str) -> str:
    stemmed = word_analyzer(language)(word)
    return stemmed[0] if stemmed else word


@functools.lru_cache(maxsize=4)
def analyzer(language: str, dictionary_dirs: tuple[str, ...] = DEFAULT_DICTIONARY_DIRS) -> Analyzer:
    """One analyzer per language and process (building the Spanish one takes about 50 ms)."""
    vader = _vader()
    own = dict(read_lexicon(LEXICONS / f"sentiment-{language}.tsv"))
    if language == "en":
        vader.lexicon.update(own)
        return Analyzer("en", vader, {}, {})
    english = dict(vader.lexicon)
    lexicon = {**translated_lexicon(english, dictionary_dirs), **own}
    vader.lexicon = lexicon
    # Inflected forms match the project's own words by stem; not the translated ones, whose
    # stems collide with everyday words ("para" -> "parada", "necesito" -> "necesitado").
    stems: dict[str, str] = {}
    for word in own:
        stems.setdefault(_stem(language, word), word)
    logger.info(
        "%s sentiment lexicon: %d words (%d written for the project)",
        language,
        len(lexicon),
        len(own),
    )
    return Analyzer(language, vader, _SPANISH_RULE_WORDS, stems)


def compound(
    text: str, language: str | None, dictionary_dirs: tuple[str, ...] = DEFAULT_DICTIONARY_DIRS
) -> float | None:
    """VADER's compound score of ``text`` in [-1, 1]; None for a language without a lexicon
    (a score of 0 would pass for "neutral")."""
    if language not in SUPPORTED or not text.strip():
        return None
    return analyzer(language, dictionary_dirs).compound(text)


def is_sentiment_word(word: str) -> bool:
    """Whether a folded word carries sentiment in English or Spanish (so it is a feeling, not
    a topic, in "negative messages are mostly about ...")."""
    for language in SUPPORTED:
        scorer = analyzer(language)
        canonical = scorer.stems.get(_stem(language, word), word)
        if scorer.vader.lexicon.get(word, 0.0) or scorer.vader.lexicon.get(canonical, 0.0):
            return True
    return False


@functools.lru_cache(maxsize=1)
def topic_stopwords() -> frozenset[str]:
    """Words that never name what a message is about (``lexicons/topic-stopwords.txt``)."""
    text = (LEXICONS / "topic-stopwords.txt").read_text(encoding="utf-8")
    return frozenset(
        word for line in text.splitlines() if not line.startswith("#") for word in line.split()
    )
