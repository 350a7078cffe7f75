"""Search the live index bundle and score FAQs.

Scoring (first chosen on a held-out split of BANKING77 train, see bench/bench_banking77.py;
the variant count and lexical weight chosen again on 2026-12-07, below):

* dense: the FAQ's best variant cosine (TOP_VARIANTS = 1);
* lexical: its best char 2-5-gram TF-IDF cosine (spelling, codes, rare words);
* classifier: softmax probability of a logistic regression fitted on the KB's
  own variant embeddings (learns which directions separate neighbouring FAQs).

``blend`` = hybrid x (0.7 + 0.3 x p / p_max) with hybrid = (dense + 0.6 x
lexical) / 1.6 and p / p_max the FAQ's classifier probability relative to the
most probable FAQ. The classifier only re-ranks (an FAQ it disfavours loses up to
30%); the score of the FAQ it agrees with stays its similarity. (The weight was 0.1,
chosen on BANKING77 alone; see CLASSIFIER_WEIGHT.) The classifier's
probability itself travels on each hit as ``confidence`` (renormalised over the
searched language) for decide(): on the sample KB its lead over the next FAQ
separates right from wrong top hits better than the score does. Probabilities
depend on how many FAQs a KB has, similarities do not, so a score means the same
across KBs (thresholds transfer) and an unrelated question scores low whatever
the KB (the out-of-scope signal). An additive blend (0.25 x p + 0.75 x hybrid)
was as accurate on held-out BANKING77 (94.3% vs 94.1% validation, within noise)
but compressed scores on a 221-FAQ KB so that almost nothing was answered.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from askagency.clock import now_utc
from knowledge_base.embedder import Embedder
from knowledge_base.fitted_cache import FittedClassifierCache
from knowledge_base.index import CURRENT_FILE, Bundle, IndexLoadError, load_bundle, read_current
from knowledge_base.language_scorer import LanguageScorer, build_language_scorer
from knowledge_base.normalise import Normaliser
from knowledge_base.types import FaqHit

logger = logging.getLogger(__name__)

SCORERS = ("blend", "hybrid", "dense_top3", "dense_max", "classifier")
DEFAULT_SCORER = "blend"
# Beside the embedding cache file: knowledge_base/fitted_cache.py.
FITTED_FOLDER = "fitted-classifiers"


def fitted_classifiers_folder(embedding_cache: Path) -> Path:
    """Where the classifier fits of the processes that share ``embedding_cache`` are kept."""
    return embedding_cache.parent / FITTED_FOLDER


# Chosen by cross-validation on two development sources (docs/quality.md): held-out top-1 on
# the sample KB's own English variants 75.5% (0.1), 78.4% (0.3), 78.6% (0.5), 79.3% (0.7) and on
# a BANKING77 train split 93.0%, 93.2%, 93.0%, 93.0%; 0.3 and 0.5 tie on the mean, the smaller
# wins. 0.7 is ruled out: two FAQs that fit a question equally well (tests/e2e/test_core_rest.py)
# were then answered with one of them instead of asked about.
CLASSIFIER_WEIGHT = 0.3
# Each FAQ's dense and lexical similarity is the mean of its best TOP_VARIANTS rows. It was 3
# (with lexical weight 0.35) while FAQs had 5 variants and the classifier weighed 0.1: the mean
# made one lucky variant count less than several agreeing ones. With 12 variants per FAQ and
# the classifier (fitted on all variants) now carrying the agreement, the best row ranks and
# separates better. Chosen on 2026-12-07 (docs/quality.md): 20 random halvings of the English
# development file, thresholds swept on one half and measured on the other, answered right
# 54.4% -> 58.6% (better in 35 of 40 halves) at 2.4% -> 2.2% wrong, out-of-scope recall 85.1% ->
# 90.3%; BANKING77 train split top-1 92.6% -> 93.1%; 5-fold CV on the sample KB's own variants
# unchanged (84.2% -> 84.3%). Lexical weights 0.6, 0.8 and 1.0 were within noise; 0.6 had the
# fewest wrong answers. Keeping the mean of the best 2 or 3 lexical rows gained less (+3.6 and
# +2.1 points right). The price: a question sharing a phrase with another FAQ's best row can
# rank that FAQ first when their meanings score alike (tests/unit/knowledge_base/
# test_retriever.py, "my dog at the checkpoint").
LEXICAL_WEIGHT = 0.6
TOP_VARIANTS = 1
# Bump when a change moves the scores of every FAQ (the constants above, the blend): thresholds
# an agency measured with another version are then warned about, like those of another
# embedding model (knowledge_base/tuning.py). 1: the mean of the best 3 variants, lexical 0.35
# (until 2026-12-07); 2: the best variant, lexical 0.6.
SCORING_VERSION = 2
# The ``dense_top3`` scorer (benchmarks): the mean of the best three variant cosines.
DENSE_TOP3_VARIANTS = 3
CANDIDATE_ROWS = 64  # FAISS neighbours whose FAQs are scored exactly ...
CANDIDATE_FAQS = 12  # ... at most this many of them (nearest first)
CANDIDATE_CLASSES = 5  # plus the classifier's most probable FAQs


def clean_query(text: str | None, max_chars: int) -> str:
    """Collapse whitespace and cap the length so a pasted essay costs no more
    than a long question."""
    return " ".join((text or "").split())[:max_chars].strip()


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _top_mean(values: np.ndarray, k: int) -> float:
    if values.shape[0] <= k:
        return float(values.mean())
    return float(np.partition(values, values.shape[0] - k)[-k:].mean())


@dataclass(frozen=True)
class ScoredFaq:
    """Per-FAQ score parts, kept for explanations and benchmarks."""

    pos: int
    score: float
    dense: float
    lexical: float
    prob: float  # classifier probability relative to the most probable FAQ
    best_row: int
    confidence: float = 0.0  # classifier probability among the searched FAQs (sums to 1)


@dataclass(frozen=True)
class LanguageOptions:
    """How a retriever treats languages: the main language (scored by the bundle's own index),
    other languages' own embedding models, the dictd folders for word-by-word glossaries and
    whether main-language queries are normalised. ``knowledge_base.factory.language_options``
    fills it from the settings; the library reads no global configuration."""

    main_language: str = "en"
    language_models: Mapping[str, str] = field(default_factory=dict)
    dictionary_dirs: tuple[str, ...] = ()
    normalise: bool = False


DEFAULT_LANGUAGE_OPTIONS = LanguageOptions()


class Retriever:
    """Scores FAQs of one bundle for a query."""

    def __init__(
        self,
        bundle: Bundle,
        embedder: Embedder,
        *,
        scorer: str = DEFAULT_SCORER,
        max_chars: int = 2000,
        languages: LanguageOptions = DEFAULT_LANGUAGE_OPTIONS,
    ) -> None:
        if scorer not in SCORERS:
            raise ValueError(f"Unknown scorer {scorer!r}; choose one of {', '.join(SCORERS)}")
        if bundle.n_rows and bundle.meta.get("model_id") not in (None, embedder.model_id):
            raise IndexLoadError(
                f"Index {bundle.version} was built with model {bundle.meta.get('model_id')}, "
                f"but the embedder is {embedder.model_id}: rebuild the index"
            )
        self.bundle = bundle
        self.embedder = embedder
        self.scorer = scorer
        self.max_chars = max_chars
        self._languages = np.array([f.language for f in bundle.faqs])
        self._out_of_scope_languages = frozenset(f.language for f in bundle.faqs if f.out_of_scope)
        # Other languages than the main one are scored by a LanguageScorer (built on first use;
        # None = the language has no FAQs).
        self.languages = languages
        self._language_scorers: dict[str, LanguageScorer | None] = {}
        self._scorer_lock = threading.Lock()
        # Spelling/texting normalisation of main-language queries (languages.normalise), built
        # from the KB's own words on first use.
        self._normaliser: Normaliser | None = None
        # The version this one replaced, while this one's other-language scorers are being
        # built (RetrieverHandle): it answers those languages meanwhile, so no citizen's question
        # waits seconds for a build on the request path. Released by prepare_languages().
        self._predecessor: Retriever | None = None

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def model_id(self) -> str:
        """The embedding model of this index and of the questions searched in it."""
        return self.embedder.model_id

    @property
    def out_of_scope_languages(self) -> frozenset[str]:
        """The languages with out-of-scope entries in this index: the decision's defaults
        differ for a language without any (decision.for_index)."""
        return self._out_of_scope_languages

    def succeed(self, predecessor: Retriever) -> None:
        """Let ``predecessor`` answer the languages whose scorers this one has not built yet."""
        self._predecessor = predecessor

    def _ready_predecessor(self, language: str) -> Retriever | None:
        """The newest earlier version that can answer ``language`` without a build.

        Walks the chain, not only the direct predecessor: two publishes in quick succession
        (on busy cores the build takes longer than the gap between them) leave a predecessor
        whose own build has not finished either, and the question must not wait for a build."""
        predecessor = self._predecessor
        while predecessor is not None:
            if predecessor._scorer_ready(language):
                return predecessor
            predecessor = predecessor._predecessor
        return None

    def _scorer_ready(self, language: str) -> bool:
        """True when a question in ``language`` needs no scorer build (built, or the main
        language, which the bundle's own index scores)."""
        main = self.languages.main_language
        return language in self._language_scorers or (
            language == main and language not in self.languages.language_models
        )

    def search(self, text: str, k: int = 5, language: str | None = None) -> list[FaqHit]:
        """Best FAQs first, one hit per FAQ; empty query -> []. Out-of-scope entries are left
        out, and a question one of them matches best gets no hits (:meth:`_answerable`)."""
        ready = self._stand_in(language)
        if ready is not None:
            return ready.search(text, k, language)
        return self._hits(self._answerable(self._ranked(text, language))[:k]) if k > 0 else []

    def out_of_scope_match(self, text: str, language: str | None = None) -> FaqHit | None:
        """The out-of-scope entry that ranks first for ``text``, if one does: why
        :meth:`search` found nothing, for whatever explains a decision (``kb search``, the
        console's "Try it", the unanswered queue). Searches again, so it is asked only after a
        search found nothing; the citizen's text was embedded moments before and its vector is
        still in the embedder's short memory, so that costs a search, not a model run."""
        ready = self._stand_in(language)
        if ready is not None:
            return ready.out_of_scope_match(text, language)
        ranked = self._ranked(text, language)
        if ranked and self.bundle.faqs[ranked[0].pos].out_of_scope:
            return self._hits(ranked[:1])[0]
        return None

    def _stand_in(self, language: str | None) -> Retriever | None:
        """An earlier version that answers ``language`` while this one's scorer is not built."""
        if language and not self._scorer_ready(language):
            return self._ready_predecessor(language)
        return None

    def _ranked(self, text: str, language: str | None) -> Sequence[ScoredFaq]:
        """Every candidate FAQ for one question, best first, out-of-scope entries included."""
        query = clean_query(text, self.max_chars)
        if not query or self.bundle.n_rows == 0:
            return []
        language_scorer = self.language_scorer(language)
        if language_scorer is not None:
            return self._language_scored(language_scorer, [query])[0]
        query = self.normalised(query)
        vector = self.embedder.encode_query(query)
        return self.score_vector(query, vector, language)

    def search_many(
        self,
        texts: Sequence[str],
        k: int = 5,
        language: str | None = None,
        *,
        cache_queries: bool = False,
    ) -> list[list[FaqHit]]:
        """Batch search for evaluation: queries embedded in one batch.
        ``cache_queries`` persists their vectors (only for labelled test data,
        never for citizen messages)."""
        queries = [clean_query(t, self.max_chars) for t in texts]
        present = [q for q in queries if q]
        if not present or self.bundle.n_rows == 0:
            return [[] for _ in queries]
        language_scorer = self.language_scorer(language)
        if language_scorer is not None:
            own = language_scorer.own_model
            encoded = (own or self.embedder).encode(present, use_cache=cache_queries, query=True)
            scored = dict(
                zip(present, self._language_scored(language_scorer, present, encoded), strict=True)
            )
            return [self._hits(self._answerable(scored[q])[:k]) if q else [] for q in queries]
        normalised = {q: self.normalised(q) for q in present}
        vectors = dict(
            zip(
                present,
                self.embedder.encode(
                    [normalised[q] for q in present], use_cache=cache_queries, query=True
                ),
                strict=True,
            )
        )
        return [
            self._hits(self._answerable(self.score_vector(normalised[q], vectors[q], language))[:k])
            if q
            else []
            for q in queries
        ]

    def normalised(self, query: str) -> str:
        """``query`` with texting shorthand expanded and misspellings corrected against the
        main language's KB words (knowledge_base/normalise.py); unchanged when switched off."""
        if not self.languages.normalise:
            return query
        normaliser = self._normaliser
        if normaliser is None:
            main = self.languages.main_language
            texts = [
                text
                for i, faq in enumerate(self.bundle.faqs)
                if faq.language == main
                for text in (
                    faq.answer,
                    *self.bundle.row_texts[
                        self.bundle.faq_offsets[i] : self.bundle.faq_offsets[i + 1]
                    ],
                )
            ]
            normaliser = self._normaliser = Normaliser(main, texts)
        return normaliser(query)

    def language_scorer(self, language: str | None) -> LanguageScorer | None:
        """The scorer for ``language`` when it is not the main language (or has its own
        embedding model); None means: use the main scoring below."""
        if not language:
            return None
        model_path = self.languages.language_models.get(language)
        if language == self.languages.main_language and not model_path:
            return None
        with self._scorer_lock:
            if language not in self._language_scorers:
                self._language_scorers[language] = build_language_scorer(
                    self.bundle,
                    language,
                    self.embedder,
                    model_path,
                    main_language=self.languages.main_language,
                    dictionary_dirs=self.languages.dictionary_dirs,
                    classifier_cache=self._classifier_cache(),
                )
            return self._language_scorers[language]

    def _classifier_cache(self) -> FittedClassifierCache | None:
        """Fitted classifiers beside the embedding cache (the folder every process that
        embeds for this data folder shares), so a restart does not fit them again."""
        cache = self.embedder.cache
        return FittedClassifierCache(fitted_classifiers_folder(cache.path)) if cache else None

    def prepare_languages(self, wanted: Callable[[], bool] = lambda: True) -> list[str]:
        """Builds the scorer of every language the bundle has FAQs in (other than the main one)
        now, so no citizen's question waits for it (about 2.5 s for the sample's Spanish).
        At start-up before the first question; after a reload right after the swap.

        ``wanted`` is asked before each build: a version already replaced by a newer publish
        stops building (its successor answers through the chain of predecessors), so quick
        successive publishes do not pile up builds on the same cores."""
        prepared = []
        for language in sorted({str(x) for x in self._languages.tolist() if x}):
            if not wanted():
                return prepared
            try:
                if self.language_scorer(language) is not None:
                    prepared.append(language)
            except Exception:  # noqa: BLE001 - the first question in it retries and reports
                logger.exception("could not prepare the %s scorer of %s", language, self.version)
        self._predecessor = None  # its bundle and scorers can be freed now
        return prepared

    def _language_scored(
        self,
        language_scorer: LanguageScorer,
        queries: list[str],
        vectors: np.ndarray | None = None,
    ) -> list[list[ScoredFaq]]:
        results = language_scorer.score(queries, vectors)
        rows = language_scorer.bundle_rows
        return [
            [
                ScoredFaq(pos, score, dense, lexical, prob, int(rows[best]), confidence)
                for pos, score, dense, lexical, prob, best, confidence in ranked
            ]
            for ranked in results
        ]

    def score_vector(
        self, query: str, vector: np.ndarray, language: str | None = None
    ) -> list[ScoredFaq]:
        """All candidate FAQs for an embedded query, best first."""
        bundle = self.bundle
        allowed = None if language is None else self._languages == language
        if allowed is not None and not allowed.any():
            return []
        n_rows = bundle.n_rows
        depth = min(n_rows, CANDIDATE_ROWS * (4 if allowed is not None else 1))
        _, rows = bundle.index.search(vector.reshape(1, -1).astype(np.float32), depth)
        candidates: dict[int, None] = {}
        for r in rows[0]:
            if r < 0 or len(candidates) >= CANDIDATE_FAQS:
                break
            if allowed is None or allowed[bundle.row_faq[r]]:
                candidates[int(bundle.row_faq[r])] = None
        probs = None
        if bundle.clf_coef is not None and self.scorer in ("blend", "classifier"):
            probs = _softmax(bundle.clf_coef @ vector + bundle.clf_intercept)
            ranked = np.argsort(-probs if allowed is None else -np.where(allowed, probs, -1))
            candidates.update(dict.fromkeys(int(p) for p in ranked[:CANDIDATE_CLASSES]))
        positions = [p for p in candidates if allowed is None or allowed[p]]
        if not positions and allowed is not None:
            # The language's rows are rare among the nearest neighbours: score all of them.
            positions = [int(p) for p in np.flatnonzero(allowed)]
        if not positions:
            return []
        top_prob = total_prob = 1.0
        if probs is not None:
            top_prob = float(probs.max() if allowed is None else probs[allowed].max()) or 1.0
            total_prob = float(1.0 if allowed is None else probs[allowed].sum()) or 1.0
        offsets = bundle.faq_offsets
        row_ids = np.concatenate([np.arange(offsets[p], offsets[p + 1]) for p in positions])
        dense_all = (
            np.concatenate([bundle.vectors[offsets[p] : offsets[p + 1]] for p in positions])
            @ vector
        )
        lex_all = np.zeros_like(dense_all)
        if self.scorer in ("blend", "hybrid") and bundle.lexical.n_features:
            lex_all = self._lexical_scores(query, positions, row_ids.shape[0])
        scored: list[ScoredFaq] = []
        start = 0
        dense_top = DENSE_TOP3_VARIANTS if self.scorer == "dense_top3" else TOP_VARIANTS
        for p in positions:
            n = int(offsets[p + 1] - offsets[p])
            dense_rows = dense_all[start : start + n]
            best = int(np.argmax(dense_rows))
            dense = _top_mean(dense_rows, dense_top)
            lexical = _top_mean(lex_all[start : start + n], TOP_VARIANTS)
            prob = float(probs[p]) / top_prob if probs is not None else 0.0
            confidence = float(probs[p]) / total_prob if probs is not None else 0.0
            score = self._combine(float(dense_rows[best]), dense, lexical, prob, probs is not None)
            scored.append(
                ScoredFaq(
                    p,
                    min(1.0, max(0.0, score)),
                    dense,
                    lexical,
                    prob,
                    int(row_ids[start + best]),
                    confidence,
                )
            )
            start += n
        scored.sort(key=lambda s: (-s.score, s.pos))
        return scored

    def _lexical_scores(self, query: str, positions: list[int], n_rows: int) -> np.ndarray:
        """Char TF-IDF cosine of the query with every row of the candidate FAQs.

        Works on the CSR arrays directly: each FAQ's rows are contiguous, so its
        non-zeros are one slice and no sparse row indexing (slow) is needed.
        """
        bundle = self.bundle
        cols, weights = bundle.lexical.query_weights(query)
        if cols.shape[0] == 0:
            return np.zeros(n_rows, dtype=np.float32)
        qdense = np.zeros(bundle.lexical.n_features, dtype=np.float32)
        qdense[cols] = weights
        matrix = bundle.lex_matrix
        offsets, indptr = bundle.faq_offsets, matrix.indptr
        spans = [(indptr[offsets[p]], indptr[offsets[p + 1]]) for p in positions]
        data = np.concatenate([matrix.data[a:b] for a, b in spans])
        columns = np.concatenate([matrix.indices[a:b] for a, b in spans])
        row_lengths = np.concatenate(
            [np.diff(indptr[offsets[p] : offsets[p + 1] + 1]) for p in positions]
        )
        products = data * qdense[columns]
        local_rows = np.repeat(np.arange(n_rows), row_lengths)
        return np.bincount(local_rows, weights=products, minlength=n_rows).astype(np.float32)

    def _combine(
        self, dense_max: float, dense: float, lexical: float, prob: float, has_clf: bool
    ) -> float:
        if self.scorer == "dense_max":
            return dense_max
        if self.scorer == "dense_top3":
            return dense
        hybrid = (dense + LEXICAL_WEIGHT * lexical) / (1 + LEXICAL_WEIGHT)
        if self.scorer == "hybrid" or not has_clf:
            return hybrid
        if self.scorer == "classifier":
            return prob
        return hybrid * (1 - CLASSIFIER_WEIGHT + CLASSIFIER_WEIGHT * prob)

    def _answerable(self, ranked: Sequence[ScoredFaq]) -> Sequence[ScoredFaq]:
        """``ranked`` without out-of-scope entries, or nothing when one of them ranks first: a
        question that resembles what the service does not answer more than any FAQ gets no
        hits, so decide() hands it to a person, and such entries are never offered."""
        faqs = self.bundle.faqs
        if not ranked or faqs[ranked[0].pos].out_of_scope:
            return ()
        if not self._out_of_scope_languages:
            return ranked
        return [s for s in ranked if not faqs[s.pos].out_of_scope]

    def _hits(self, scored: Sequence[ScoredFaq]) -> list[FaqHit]:
        hits = []
        for s in scored:
            faq = self.bundle.faqs[s.pos]
            hits.append(
                FaqHit(
                    faq_id=faq.id,
                    score=round(s.score, 6),
                    question=faq.question,
                    answer=faq.answer,
                    language=faq.language,
                    category=faq.category,
                    source_url=faq.source_url,
                    matched_text=self.bundle.row_texts[s.best_row],
                    confidence=round(s.confidence, 6),
                )
            )
        return hits


class RetrieverHandle:
    """Hands out the retriever for the newest index, reloading when CURRENT moves.

    ``get()`` costs one ``stat`` when nothing changed. A new bundle is loaded
    outside the lock and swapped in as one reference assignment, so in-flight
    requests finish on the retriever they already hold. If the new bundle
    cannot be loaded the previous one keeps serving and ``last_error`` says why.
    """

    def __init__(
        self,
        index_dir: Path | str,
        embedder: Embedder,
        *,
        scorer: str = DEFAULT_SCORER,
        max_chars: int = 2000,
        languages: LanguageOptions = DEFAULT_LANGUAGE_OPTIONS,
    ) -> None:
        self.index_dir = Path(index_dir)
        self.embedder = embedder
        self.scorer = scorer
        self.max_chars = max_chars
        self.languages = languages
        self.last_error: str | None = None
        self.reloads = 0
        self.loaded_at: float | None = None  # Unix time the serving version was loaded
        self._retriever: Retriever | None = None
        self._signature: tuple[int, int, int] | None = None
        self._failed_version: str | None = None
        self._swap_lock = threading.Lock()
        self._load_lock = threading.Lock()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.index_dir / CURRENT_FILE)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    @property
    def version(self) -> str | None:
        return self._retriever.version if self._retriever else None

    def get(self) -> Retriever:
        """The current retriever; raises IndexLoadError only if none was ever loaded."""
        signature = self._stat()
        current = self._retriever
        if current is not None and signature == self._signature:
            return current
        # Only one thread loads; the others keep serving the bundle they have.
        if current is not None and not self._load_lock.acquire(blocking=False):
            return current
        if current is None:
            self._load_lock.acquire()
        try:
            return self._refresh(signature)
        finally:
            self._load_lock.release()

    def _refresh(self, signature: tuple[int, int, int] | None) -> Retriever:
        current = self._retriever
        if current is not None and signature == self._signature:
            return current  # another thread already reloaded
        try:
            version = read_current(self.index_dir)
            if current is not None and version == current.version:
                # CURRENT points at the serving bundle again (e.g. a bad version was rolled
                # back): nothing is wrong any more.
                self._signature = signature
                self._failed_version = None
                self.last_error = None
                return current
            if current is not None and version == self._failed_version:
                return current  # do not retry a known-bad version on every request
            retriever = Retriever(
                load_bundle(self.index_dir / version),
                self.embedder,
                scorer=self.scorer,
                max_chars=self.max_chars,
                languages=self.languages,
            )
            if current is None:
                retriever.prepare_languages()  # start-up: before the first question
            else:
                retriever.succeed(current)
        except IndexLoadError as exc:
            self.last_error = str(exc)
            if current is None:
                raise
            self._failed_version = read_current_or_none(self.index_dir)
            self._signature = signature
            return current
        with self._swap_lock:
            self._retriever = retriever
            self._signature = signature
            self._failed_version = None
            self.last_error = None
            self.reloads += 1
            self.loaded_at = now_utc().timestamp()
        if current is not None:
            # A publish goes live at once; the other languages' scorers (about 2.5 s for the
            # sample's Spanish, far more on busy cores) are built right after, off the request
            # path. A question in such a language in that window is answered by the version
            # being replaced, which has its scorer (Retriever.succeed).
            threading.Thread(
                target=retriever.prepare_languages,
                kwargs={"wanted": lambda: self._retriever is retriever},
                name="prepare-languages",
                daemon=True,
            ).start()
        return retriever


def read_current_or_none(index_dir: Path) -> str | None:
    try:
        return read_current(index_dir)
    except IndexLoadError:
        return None
