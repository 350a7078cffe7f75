"""Scoring restricted to the FAQs of one language other than the index's main one.

Why a separate scorer: the bundled MiniLM is an English model. On the sample's labelled Spanish
queries, plain nearest-neighbour search over the Spanish FAQs ranked the right FAQ first for 53%
of them and the index's English-tuned blend for 72%, with out-of-scope scores overlapping the
in-scope ones. Spanish needs the lexical side to carry more weight and to be fitted on Spanish
text alone (accents folded, since citizens often omit them), and a classifier over embedding
*and* character n-gram features of that language's own variants. Built from a loaded bundle in
well under a second (the rows of one language are few), so nothing changes in the index format,
and rebuilt whenever the index reloads.

An agency with a multilingual sentence-transformers model sets it per language
(``embedding_models``): this scorer then embeds the language's variants and the queries with
that model (through the embedding cache) instead of the index's vectors.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

# Chosen on the sample KB's Spanish queries (knowledge_base/sample/eval_queries_es.csv) among a
# few round values; see docs/languages.md for the numbers.
LEXICAL_WEIGHT = 1.0
CLASSIFIER_WEIGHT = 0.3
CLASSIFIER_C = 30.0
TOP_VARIANTS = 3


def fold(text: str) -> str:
    """Lower case without accents: "¿Qué líquidos?" and "que liquidos" match fully."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _top_mean(matrix: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per FAQ (column ranges [start, end)), the mean of its best TOP_VARIANTS row scores."""
    out = np.empty((matrix.shape[0], starts.shape[0]), dtype=np.float32)
    for j, (a, b) in enumerate(zip(starts, ends, strict=True)):
        block = matrix[:, a:b]
        k = min(TOP_VARIANTS, block.shape[1])
        out[:, j] = np.sort(block, axis=1)[:, -k:].mean(axis=1)
    return out


class LanguageScorer:
    """Dense + char TF-IDF + classifier scores over the FAQs of one language.

    ``positions`` are the bundle positions of that language's FAQs, ``row_texts`` their
    question texts (canonical + variants, contiguous per FAQ, ``offsets`` like the bundle's),
    ``vectors`` those texts' L2-normalised embeddings and ``encode`` the matching query
    encoder (texts -> normalised vectors).
    """

    def __init__(
        self,
        positions: Sequence[int],
        row_texts: Sequence[str],
        offsets: Sequence[int],
        vectors: np.ndarray,
        encode: Any,
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
        self.classifier: LogisticRegression | None = None
        if len(positions) >= 2:
            labels = np.repeat(np.arange(len(positions)), self.ends - self.starts)
            features = sparse.hstack([sparse.csr_matrix(self.vectors), self.lex_rows]).tocsr()
            self.classifier = LogisticRegression(C=CLASSIFIER_C, max_iter=2000)
            self.classifier.fit(features, labels)

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
        dense = _top_mean(dense_rows, self.starts, self.ends)
        lexical = _top_mean(lex_rows, self.starts, self.ends)
        hybrid = (dense + LEXICAL_WEIGHT * lexical) / (1 + LEXICAL_WEIGHT)
        if self.classifier is not None:
            features = sparse.hstack([sparse.csr_matrix(q_vectors), q_lex]).tocsr()
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
    bundle: Any, language: str, embedder: Any, model_path: str | None = None
) -> LanguageScorer | None:
    """The scorer of ``language``'s FAQs in ``bundle`` (None when it has none).

    With ``model_path`` (the language's own sentence-transformers model) the variants are
    embedded with it, through the shared embedding cache, so only new texts cost time.
    """
    positions = [i for i, faq in enumerate(bundle.faqs) if faq.language == language]
    if not positions:
        return None
    offsets = bundle.faq_offsets
    bundle_rows = np.concatenate(
        [np.arange(offsets[p], offsets[p + 1], dtype=np.int64) for p in positions]
    )
    row_texts = [bundle.row_texts[r] for r in bundle_rows]
    local_offsets = np.concatenate(
        [[0], np.cumsum([offsets[p + 1] - offsets[p] for p in positions])]
    ).tolist()
    own_model = None
    if model_path:
        from knowledge_base.embedder import get_embedder

        own_model = get_embedder(model_path)
        vectors = own_model.encode(row_texts)
    else:
        vectors = bundle.vectors[bundle_rows]
    query_model = own_model or embedder

    def encode(texts: list[str]) -> np.ndarray:
        return np.vstack([query_model.encode_query(t) for t in texts])

    scorer = LanguageScorer(positions, row_texts, local_offsets, vectors, encode)
    scorer.own_model = own_model
    scorer.bundle_rows = bundle_rows
    return scorer
