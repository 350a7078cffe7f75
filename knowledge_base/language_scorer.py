"""Scoring restricted to the FAQs of one language other than the index's main one.

Why a separate scorer: the bundled MiniLM is an English model. On the sample's labelled Spanish
queries, plain nearest-neighbour search over the Spanish FAQs ranked the right FAQ first for 53%
of them and the index's English-tuned blend for 72%, with out-of-scope scores overlapping the
in-scope ones. So for such a language the score combines, per FAQ (mean of its best 3 rows):

* dense cosine with the FAQ's own variants;
* character 2-5-gram TF-IDF fitted on that language's text alone, accents folded (citizens
  often omit them);
* word TF-IDF over Snowball stems ("pastillas" = "pastilla"), for inflected words the
  character n-grams only partly match;
* dense cosine with the FAQ's *translations* (same ``translation_group``, usually the English
  original, whose variants are more numerous): the English model still places a Spanish
  question near English text sharing its names and cognates ("insulina", "CPAP", "REAL ID").
  An unrelated question is far from both sides, which pulls out-of-scope scores down;
* the same cosine for the question translated word by word into the main language
  (knowledge_base/glossary.py): "mis tijeras" -> "my scissors" lets the English model compare
  meanings, not just shared letters. Only when a glossary for the language is found;

times a classifier over embedding, character and word features of the language's variants
(optionally the translations' embeddings). Built from a loaded bundle on the language's first
query (measured 2.5 s for the sample's 978 Spanish rows on 2 busy cores, 3.5 ms a query), so
nothing changes in the index format, and rebuilt whenever the index reloads.

An agency with a multilingual sentence-transformers model sets it per language
(``embedding_models``): this scorer then embeds the language's variants, their translations and
the queries with that model (through the embedding cache) instead of the index's vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from knowledge_base.fitted_cache import FittedClassifierCache
from knowledge_base.glossary import glossary_for
from knowledge_base.text import fold, word_analyzer

# Chosen by cross-validation on the sample KB's own Spanish variants (bench/bench_spanish_cv.py),
# not on the labelled query files; see docs/languages.md.
LEXICAL_WEIGHT = 1.0
WORD_WEIGHT = 0.5
PIVOT_WEIGHT = 1.0
TRANSLATION_WEIGHT = 4.0
PIVOT_IN_CLASSIFIER = False
CLASSIFIER_WEIGHT = 0.5
CLASSIFIER_C = 30.0
TOP_VARIANTS = 3


def _classifier() -> LogisticRegression:
    return LogisticRegression(C=CLASSIFIER_C, max_iter=2000)


def _top_mean(matrix: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per FAQ (column ranges [start, end)), the mean of its best TOP_VARIANTS row scores."""
    out = np.empty((matrix.shape[0], starts.shape[0]), dtype=np.float32)
    for j, (a, b) in enumerate(zip(starts, ends, strict=True)):
        block = matrix[:, a:b]
        k = min(TOP_VARIANTS, block.shape[1])
        out[:, j] = np.sort(block, axis=1)[:, -k:].mean(axis=1)
    return out


class LanguageScorer:
    """Dense + char/word TF-IDF + translation + classifier scores over one language's FAQs.

    ``positions`` are the bundle positions of that language's FAQs, ``row_texts`` their
    question texts (canonical + variants, contiguous per FAQ, ``offsets`` like the bundle's),
    ``vectors`` those texts' L2-normalised embeddings and ``encode`` the matching query
    encoder (texts -> normalised vectors). ``language`` picks the Snowball stemmer;
    ``pivot_vectors`` are the FAQs' translations' row vectors, ``pivot_offsets`` delimiting
    them per FAQ like ``offsets`` (an empty range: no translation). ``translate`` renders a
    query in the pivot rows' language (a Glossary's ``translate``) for the translation signal.
    """

    def __init__(
        self,
        positions: Sequence[int],
        row_texts: Sequence[str],
        offsets: Sequence[int],
        vectors: np.ndarray,
        encode: Any,
        *,
        language: str | None = None,
        pivot_vectors: np.ndarray | None = None,
        pivot_offsets: Sequence[int] | None = None,
        translate: Callable[[str], str] | None = None,
        classifier_cache: FittedClassifierCache | None = None,
    ) -> None:
        if len(offsets) != len(positions) + 1 or offsets[-1] != len(row_texts):
            raise ValueError("offsets must delimit every FAQ's rows")
        if vectors.shape[0] != len(row_texts):
            raise ValueError("one vector per row text is needed")
        self.positions = np.asarray(positions, dtype=np.int64)
        self.row_texts = list(row_texts)
        self.starts = np.asarray(offsets[:-1], dtype=np.int64)
        self.ends = np.asarray(offsets[1:], dtype=np.int64)
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.encode = encode
        # Set by build_language_scorer: the language's own embedding model (None = the
        # index's) and each local row's row number in the bundle.
        self.own_model: Any = None
        self.bundle_rows = np.arange(len(row_texts), dtype=np.int64)
        self.tfidf = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, preprocessor=fold
        )
        self.lex_rows = self.tfidf.fit_transform(self.row_texts).tocsr()
        self.words: TfidfVectorizer | None = TfidfVectorizer(
            analyzer=word_analyzer(language), sublinear_tf=True, token_pattern=None
        )
        try:
            self.word_rows = self.words.fit_transform(self.row_texts).tocsr()
        except ValueError:  # no word of 2+ letters anywhere (codes, emoji): chars only
            self.words = None
            self.word_rows = sparse.csr_matrix((len(self.row_texts), 0), dtype=np.float64)
        # The main-language rows of each FAQ's translation group (``pivot_offsets`` delimit
        # them per FAQ, an empty range = no translation): the English model still places a
        # Spanish question near English text sharing its names and cognates.
        self.pivot_vectors = pivot_vectors
        self.translate = translate
        self.pivot_starts = self.pivot_ends = None
        if pivot_vectors is not None:
            if pivot_offsets is None or len(pivot_offsets) != len(positions) + 1:
                raise ValueError("pivot_offsets must delimit every FAQ's pivot rows")
            self.pivot_starts = np.asarray(pivot_offsets[:-1], dtype=np.int64)
            self.pivot_ends = np.asarray(pivot_offsets[1:], dtype=np.int64)
        self.classifier: LogisticRegression | None = None
        if len(positions) >= 2:
            labels = np.repeat(np.arange(len(positions)), self.ends - self.starts)
            features = self._features(self.vectors, self.lex_rows, self.word_rows)
            if (
                PIVOT_IN_CLASSIFIER
                and self.pivot_starts is not None
                and self.pivot_ends is not None
            ):
                # The translations' rows teach the classifier more wordings of each FAQ
                # (embedding features only: their n-grams are another language's).
                spans = [
                    np.arange(a, b) for a, b in zip(self.pivot_starts, self.pivot_ends, strict=True)
                ]
                pivot_labels = np.repeat(np.arange(len(positions)), [len(x) for x in spans])
                extra = np.concatenate(spans).astype(np.int64)
                width = features.shape[1] - self.vectors.shape[1]
                pivot_features = sparse.hstack(
                    [
                        sparse.csr_matrix(self.pivot_vectors[extra]),
                        sparse.csr_matrix((len(extra), width)),
                    ]
                )
                features = sparse.vstack([features, pivot_features]).tocsr()
                labels = np.concatenate([labels, pivot_labels])
            if classifier_cache is None:
                self.classifier = _classifier().fit(features, labels)
            else:  # the same fit, read back when an earlier process stored it
                self.classifier = classifier_cache.fit(_classifier, features, labels)

    @staticmethod
    def _features(vectors: Any, chars: Any, words: Any) -> sparse.csr_matrix:
        return sparse.hstack([sparse.csr_matrix(vectors), chars, words]).tocsr()

    def _has_pivot(self) -> np.ndarray:
        """1.0 for the FAQs that have translation rows, else 0.0."""
        if self.pivot_starts is None or self.pivot_ends is None:
            return np.zeros(self.starts.shape[0], dtype=np.float32)
        return (self.pivot_ends > self.pivot_starts).astype(np.float32)

    def _pivot(self, q_vectors: np.ndarray) -> np.ndarray:
        """Per FAQ, the mean of the best TOP_VARIANTS cosines with its translation's rows
        (0 for FAQs without one)."""
        out = np.zeros((q_vectors.shape[0], self.starts.shape[0]), dtype=np.float32)
        if self.pivot_vectors is None or self.pivot_starts is None or self.pivot_ends is None:
            return out
        rows = q_vectors @ self.pivot_vectors.T
        has = self.pivot_ends > self.pivot_starts
        idx = np.flatnonzero(has)
        out[:, idx] = _top_mean(rows, self.pivot_starts[idx], self.pivot_ends[idx])
        return out

    def score(
        self, queries: Sequence[str], vectors: np.ndarray | None = None
    ) -> list[list[tuple[int, float, float, float, float, int, float]]]:
        """For each query, every FAQ of the language best first, as
        ``(bundle position, score, dense, lexical, relative prob, best row, confidence)``;
        ``best row`` indexes ``row_texts``."""
        if not queries:
            return []
        q_vectors = self.encode(list(queries)) if vectors is None else vectors
        dense_rows = np.asarray(q_vectors, dtype=np.float32) @ self.vectors.T
        q_lex = self.tfidf.transform(list(queries))
        lex_rows = (q_lex @ self.lex_rows.T).toarray().astype(np.float32)
        q_words = (
            self.words.transform(list(queries))
            if self.words is not None
            else sparse.csr_matrix((len(queries), 0), dtype=np.float64)
        )
        word_rows = (q_words @ self.word_rows.T).toarray().astype(np.float32)
        dense = _top_mean(dense_rows, self.starts, self.ends)
        lexical = _top_mean(lex_rows, self.starts, self.ends)
        words = _top_mean(word_rows, self.starts, self.ends)
        pivot = self._pivot(np.asarray(q_vectors, dtype=np.float32))
        # An FAQ without a translation is averaged over the signals it has, so it is not
        # capped below the answer threshold for lacking one.
        has_pivot = self._has_pivot()
        pivot_weight = PIVOT_WEIGHT * has_pivot
        cross = pivot_weight * pivot
        if self.translate is not None and self.pivot_vectors is not None and TRANSLATION_WEIGHT:
            translated = self.encode([self.translate(q) or q for q in queries])
            pivot_weight = pivot_weight + TRANSLATION_WEIGHT * has_pivot
            cross = cross + TRANSLATION_WEIGHT * has_pivot * self._pivot(
                np.asarray(translated, dtype=np.float32)
            )
        hybrid = (dense + LEXICAL_WEIGHT * lexical + WORD_WEIGHT * words + cross) / (
            1 + LEXICAL_WEIGHT + WORD_WEIGHT + pivot_weight
        )
        if self.classifier is not None:
            features = self._features(q_vectors, q_lex, q_words)
            probs = self.classifier.predict_proba(features).astype(np.float32)
        else:
            probs = np.ones_like(hybrid)
        relative = probs / np.maximum(probs.max(axis=1, keepdims=True), 1e-12)
        scores = np.clip(hybrid * (1 - CLASSIFIER_WEIGHT + CLASSIFIER_WEIGHT * relative), 0, 1)
        results = []
        for i in range(len(queries)):
            order = np.lexsort((self.positions, -scores[i]))
            ranked = []
            for j in order:
                a, b = int(self.starts[j]), int(self.ends[j])
                best = a + int(np.argmax(dense_rows[i, a:b] + lex_rows[i, a:b]))
                ranked.append(
                    (
                        int(self.positions[j]),
                        float(scores[i, j]),
                        float(dense[i, j]),
                        float(lexical[i, j]),
                        float(relative[i, j]),
                        best,
                        float(probs[i, j]) if self.classifier is not None else 0.0,
                    )
                )
            results.append(ranked)
        return results


def build_language_scorer(
    bundle: Any,
    language: str,
    embedder: Any,
    model_path: str | None = None,
    *,
    main_language: str | None = None,
    dictionary_dirs: Sequence[str] = (),
    classifier_cache: FittedClassifierCache | None = None,
) -> LanguageScorer | None:
    """The scorer of ``language``'s FAQs in ``bundle`` (None when it has none).

    With ``model_path`` (the language's own sentence-transformers model) the variants are
    embedded with it, through the shared embedding cache, so only new texts cost time.
    Each FAQ's translations in the other languages (same ``translation_group``) are the
    pivot rows of the cross-lingual signal; with ``main_language`` the questions are also
    translated into it (glossary from the project and ``dictionary_dirs``) for that signal.
    ``classifier_cache`` keeps the classifier's fit for the next process that loads the same
    index (knowledge_base/fitted_cache.py).
    """
    positions = [i for i, faq in enumerate(bundle.faqs) if faq.language == language]
    if not positions:
        return None
    offsets = bundle.faq_offsets

    def rows_of(faq_positions: Sequence[int]) -> tuple[np.ndarray, list[int]]:
        spans = [np.arange(offsets[p], offsets[p + 1], dtype=np.int64) for p in faq_positions]
        rows = np.concatenate(spans) if spans else np.zeros(0, dtype=np.int64)
        return rows, np.concatenate([[0], np.cumsum([len(s) for s in spans])]).tolist()

    bundle_rows, local_offsets = rows_of(positions)
    row_texts = [bundle.row_texts[r] for r in bundle_rows]
    group = [faq.translation_group or faq.id for faq in bundle.faqs]
    others: dict[str, list[int]] = {}
    for i, faq in enumerate(bundle.faqs):
        if faq.language != language:
            others.setdefault(group[i], []).append(i)
    spans = [rows_of(others.get(group[p], []))[0] for p in positions]
    pivot_rows = np.concatenate([np.zeros(0, dtype=np.int64), *spans])
    pivot_offsets = np.concatenate([[0], np.cumsum([len(s) for s in spans])]).tolist()
    pivot_vectors = None
    own_model = None
    if model_path:
        own_model = embedder.for_model(model_path)
        vectors = own_model.encode(row_texts)
        if len(pivot_rows):
            pivot_vectors = own_model.encode([bundle.row_texts[r] for r in pivot_rows])
    else:
        vectors = bundle.vectors[bundle_rows]
        if len(pivot_rows):
            pivot_vectors = bundle.vectors[pivot_rows]
    query_model = own_model or embedder

    def encode(texts: list[str]) -> np.ndarray:
        return np.vstack([query_model.encode_query(t) for t in texts])

    glossary = None
    if main_language and main_language != language and pivot_vectors is not None:
        glossary = glossary_for(language, main_language, tuple(dictionary_dirs))
    scorer = LanguageScorer(
        positions,
        row_texts,
        local_offsets,
        vectors,
        encode,
        language=language,
        pivot_vectors=None if pivot_vectors is None else np.asarray(pivot_vectors, np.float32),
        pivot_offsets=pivot_offsets,
        translate=glossary.translate if glossary is not None else None,
        classifier_cache=classifier_cache,
    )
    scorer.own_model = own_model
    scorer.bundle_rows = bundle_rows
    return scorer
