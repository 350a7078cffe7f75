"""Word-by-word translation of a citizen's question into the knowledge base's main language.

Why: the bundled embedding model is English. A Spanish question shares few words with its FAQ's
English translation, so the cross-lingual signal of the language scorer (cosine with the
translations' rows) only sees names and cognates. Rendering the question word by word into
English first ("cuánta fórmula puedo llevar para mi bebé" -> "how much formula can I bring for
my baby") lets the English model use what it knows about the words, including synonyms that no
Spanish variant of the FAQ contains. Word-by-word output is crude, but it only feeds one signal
among several (weight chosen by cross-validation, bench/bench_spanish_cv.py): on the sample KB it
raised Spanish top-1 on held-out variants and on the development queries
(knowledge_base/sample/eval_queries_es_dev.csv); see docs/languages.md.

Sources, merged in this order (the first translation of a word wins):

1. the project's glossary ``knowledge_base/glossaries/<from>-<to>.tsv``: function words, question
   words and common verb forms a dictionary of headwords lacks ("puedo" -> "can I");
2. FreeDict dictionaries in dictd format (Debian ``dict-freedict-spa-eng`` and
   ``dict-freedict-eng-spa``, installed by ``make setup``; GPL data, read from where the system
   keeps it, never copied into the project): ``freedict-<from>-<to>`` gives each headword's
   first translation, and ``freedict-<to>-<from>`` is read backwards for words it lacks.

A word found in neither, also after Snowball stemming, is kept as it is: names, numbers, codes
and cognates ("insulina", "CPAP") are what the English model recognises anyway.
"""

from __future__ import annotations

import functools
import gzip
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from knowledge_base.text import fold, word_analyzer

logger = logging.getLogger(__name__)

PROJECT_GLOSSARIES = Path(__file__).resolve().parent / "glossaries"
DEFAULT_DICTIONARY_DIRS = ("/usr/share/dictd",)
# ISO 639-1 (what FAQs carry) -> ISO 639-3 (what FreeDict names its dictionaries with).
ISO_639_3 = {
    "ar": "ara",
    "de": "deu",
    "en": "eng",
    "es": "spa",
    "fr": "fra",
    "it": "ita",
    "ko": "kor",
    "nl": "nld",
    "pt": "por",
    "ru": "rus",
    "tl": "tgl",
    "vi": "vie",
    "zh": "zho",
}

_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_SENSE_NUMBER = re.compile(r"^\d+\.\s*")
_WORD = re.compile(r"\w+")


def _dictd_number(text: str) -> int:
    """dictd's index stores offsets and lengths in its own base64 digits."""
    value = 0
    for char in text:
        value = value * 64 + _BASE64.index(char)
    return value


def read_dictd(index_path: Path, dict_path: Path) -> Iterator[tuple[str, list[list[str]]]]:
    """``(headword, senses)`` of a dictd dictionary, each sense a list of translations.

    The body (``.dict.dz``, dictzip = gzip-compatible, or plain ``.dict``) holds per entry the
    headword line (with its pronunciation) then one line per sense, numbered when there are
    several: ``"llevar /ʎeβˈaɾ/\\n1. bring, fetch\\n2. carry, wear\\n"``.
    """
    body = (
        gzip.decompress(dict_path.read_bytes())
        if dict_path.suffix == ".dz"
        else dict_path.read_bytes()
    )
    for line in index_path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or parts[0].startswith("00"):  # 00-database-* metadata entries
            continue
        headword, offset, length = parts
        try:
            start, size = _dictd_number(offset), _dictd_number(length)
        except ValueError:
            continue
        lines = body[start : start + size].decode("utf-8", errors="replace").splitlines()[1:]
        senses = []
        for sense in lines:
            words = [w.strip() for w in _SENSE_NUMBER.sub("", sense).split(",") if w.strip()]
            if words:
                senses.append(words)
        if senses:
            yield headword, senses


def read_tsv(path: Path) -> Iterator[tuple[str, str]]:
    """``word<TAB>translation`` lines; ``#`` starts a comment, an empty translation drops the
    word (articles and clitics the English model does not need)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        word, _, translation = line.partition("\t")
        yield word.strip(), translation.strip()


def dictd_files(directory: Path, name: str) -> tuple[Path, Path] | None:
    index = directory / f"{name}.index"
    for suffix in (".dict.dz", ".dict"):
        body = directory / f"{name}{suffix}"
        if index.is_file() and body.is_file():
            return index, body
    return None


class Glossary:
    """Translates the words of a text from ``source`` into ``target`` (see module docstring)."""

    def __init__(self, source: str, table: dict[str, str], sources: Sequence[str]) -> None:
        self.source = source
        self.table = table  # folded word -> translation ("" = drop the word)
        self.sources = list(sources)  # where the entries came from, for /ready and the logs
        analyse = word_analyzer(source)
        self._stem = lambda word: (analyse(word) or [word])[0]
        self._stems: dict[str, str] = {}
        for word, translation in table.items():
            if " " not in word:
                self._stems.setdefault(self._stem(word), translation)

    def __len__(self) -> int:
        return len(self.table)

    def word(self, word: str) -> str:
        """The translation of one folded word; the word itself when unknown."""
        found = self.table.get(word)
        if found is None and len(word) > 3:
            found = self._stems.get(self._stem(word))
        return word if found is None else found

    def translate(self, text: str) -> str:
        return " ".join(t for t in (self.word(w) for w in _WORD.findall(fold(text))) if t)

    @classmethod
    def build(
        cls,
        source: str,
        target: str,
        dictionary_dirs: Iterable[str | Path] = DEFAULT_DICTIONARY_DIRS,
    ) -> Glossary | None:
        """The glossary from ``source`` into ``target`` from every source found; None when
        there is none (the language scorer then goes without the translation signal)."""
        table: dict[str, str] = {}
        sources: list[str] = []
        project = PROJECT_GLOSSARIES / f"{source}-{target}.tsv"
        if project.is_file():
            for word, translation in read_tsv(project):
                table.setdefault(fold(word), translation)
            sources.append(str(project))
        src3, dst3 = ISO_639_3.get(source), ISO_639_3.get(target)
        # FreeDict names dictionaries by ISO 639-3 codes: without both, there is none to find.
        directories = [Path(d) for d in dictionary_dirs] if src3 and dst3 else []
        for directory in directories:
            forward = dictd_files(directory, f"freedict-{src3}-{dst3}")
            if forward:
                for headword, senses in read_dictd(*forward):
                    table.setdefault(fold(headword), senses[0][0])
                sources.append(str(forward[0]))
            backward = dictd_files(directory, f"freedict-{dst3}-{src3}")
            if backward:
                for headword, senses in read_dictd(*backward):
                    for translation in senses[0][:1]:
                        table.setdefault(fold(translation), headword)
                sources.append(str(backward[0]))
        if not table:
            return None
        return cls(source, table, sources)


@functools.lru_cache(maxsize=16)
def glossary_for(source: str, target: str, dictionary_dirs: tuple[str, ...]) -> Glossary | None:
    """One glossary per language pair and process (reading FreeDict takes about 0.1 s)."""
    if source == target:
        return None
    glossary = Glossary.build(source, target, dictionary_dirs)
    if glossary is None:
        logger.info(
            "no %s->%s glossary: the %s scorer goes without translation", source, target, source
        )
    else:
        logger.info(
            "%s->%s glossary: %d words from %s", source, target, len(glossary), glossary.sources
        )
    return glossary
