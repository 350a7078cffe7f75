"""knowledge_base.fitted_cache: a fit stored by one process is read by the next exactly when
everything the fit reads is the same, and predicts what a fresh fit predicts; bad files,
unwritable folders and stale entries cost a fit, never an error."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from knowledge_base.fitted_cache import FittedClassifierCache, fit_key
from knowledge_base.language_scorer import LanguageScorer
from tests.unit.knowledge_base.test_language_scorer import (
    OFFSETS,
    POSITIONS,
    TEXTS,
    fake_vectors,
)

QUERIES = ["necesito real id para volar", "liquidos en la maleta", "navaja", "zzz"]


def data(seed: int = 0) -> tuple[sparse.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = sparse.random(60, 40, density=0.3, random_state=seed, format="csr")
    return features, rng.integers(0, 4, 60)


def make() -> LogisticRegression:
    return LogisticRegression(C=30.0, max_iter=2000)


class CountingFits:
    """Counts ``LogisticRegression.fit`` calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = LogisticRegression.fit

        def fit(estimator: LogisticRegression, *args: object, **kwargs: object) -> object:
            self.calls += 1
            return real(estimator, *args, **kwargs)

        monkeypatch.setattr(LogisticRegression, "fit", fit)


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> CountingFits:
    return CountingFits(monkeypatch)


def test_the_next_process_reads_the_same_fit_and_predicts_the_same(
    tmp_path: Path, fits: CountingFits
) -> None:
    features, labels = data()
    first = FittedClassifierCache(tmp_path).fit(make, features, labels)
    assert fits.calls == 1 and len(list(tmp_path.glob("*.npz"))) == 1
    second_cache = FittedClassifierCache(tmp_path)  # another process: nothing in memory
    second = second_cache.fit(make, features, labels)
    assert fits.calls == 1 and (second_cache.hits, second_cache.misses) == (1, 0)
    fresh = make().fit(features, labels)
    for estimator in (first, second):
        assert np.array_equal(estimator.predict_proba(features), fresh.predict_proba(features))
        assert np.array_equal(estimator.predict(features), fresh.predict(features))


def test_anything_the_fit_reads_changes_the_key() -> None:
    features, labels = data()
    key = fit_key(make(), features, labels)
    other_features, other_labels = data(seed=1)
    changed = features.copy()
    changed.data[0] += 1e-9
    assert fit_key(make(), features.copy(), labels.copy()) == key
    assert fit_key(make(), changed, labels) != key
    assert fit_key(make(), other_features, labels) != key
    assert fit_key(make(), features, np.roll(labels, 1)) != key
    assert fit_key(LogisticRegression(C=1.0, max_iter=2000), features, labels) != key
    assert fit_key(make(), features[:, :39], labels) != key


@pytest.mark.parametrize("damage", ["truncated", "not an npz", "a pickled object"])
def test_a_bad_file_is_fitted_again(
    damage: str, tmp_path: Path, fits: CountingFits, caplog: pytest.LogCaptureFixture
) -> None:
    features, labels = data()
    FittedClassifierCache(tmp_path).fit(make, features, labels)
    [stored] = tmp_path.glob("*.npz")
    if damage == "truncated":
        stored.write_bytes(stored.read_bytes()[:100])
    elif damage == "not an npz":
        stored.write_text("hello")
    else:  # a file someone planted: loading it must not unpickle anything
        np.savez(stored, coef_=np.array([object()], dtype=object))
    with caplog.at_level(logging.WARNING, logger="knowledge_base.fitted_cache"):
        again = FittedClassifierCache(tmp_path).fit(make, features, labels)
    assert fits.calls == 2
    assert "unreadable" in caplog.text
    assert np.array_equal(
        again.predict_proba(features), make().fit(features, labels).predict_proba(features)
    )


def test_an_unwritable_folder_only_costs_the_fit(tmp_path: Path, fits: CountingFits) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder should be")
    features, labels = data()
    estimator = FittedClassifierCache(blocked / "fits").fit(make, features, labels)
    assert fits.calls == 1 and estimator.predict(features).shape == (60,)


def test_the_oldest_files_are_pruned(tmp_path: Path) -> None:
    cache = FittedClassifierCache(tmp_path, keep=2)
    for seed in range(3):
        cache.fit(make, *data(seed))
        for i, path in enumerate(sorted(tmp_path.glob("*.npz"), key=os.path.getmtime)):
            os.utime(path, (1_000_000 + i, 1_000_000 + i))  # distinct ages, oldest first
    kept = {p.name for p in tmp_path.glob("*.npz")}
    assert len(kept) == 2
    assert f"{fit_key(make(), *data(0))}.npz" not in kept


def test_a_language_scorer_loaded_again_reads_its_classifier(
    tmp_path: Path, fits: CountingFits
) -> None:
    def scorer() -> LanguageScorer:
        return LanguageScorer(
            POSITIONS,
            TEXTS,
            OFFSETS,
            fake_vectors(TEXTS),
            fake_vectors,
            classifier_cache=FittedClassifierCache(tmp_path),
        )

    first = scorer().score(QUERIES)
    second = scorer().score(QUERIES)
    assert fits.calls == 1
    assert second == first
    plain = LanguageScorer(POSITIONS, TEXTS, OFFSETS, fake_vectors(TEXTS), fake_vectors)
    assert plain.score(QUERIES) == first


def test_a_restarted_action_server_reads_its_spanish_classifier(
    tmp_path: Path, fits: CountingFits
) -> None:
    """Two handles on one index, as a first start and a restart: the second builds its Spanish
    scorer without fitting (the fit is stored beside the embedding cache) and ranks the same."""
    from knowledge_base.index import build_bundle, save_bundle
    from knowledge_base.retriever import FITTED_FOLDER, RetrieverHandle
    from tests.unit.kb_tiny import TINY_KB, fresh_embedder, shared_embedder
    from tests.unit.knowledge_base.test_retriever import SPANISH

    save_bundle(build_bundle([*TINY_KB, *SPANISH], shared_embedder()), tmp_path / "index")
    embedder = fresh_embedder(tmp_path / "embeddings.sqlite")
    before = fits.calls
    first = RetrieverHandle(tmp_path / "index", embedder).get()  # prepares Spanish at start-up
    assert fits.calls == before + 1
    restarted = RetrieverHandle(tmp_path / "index", embedder).get()
    assert fits.calls == before + 1
    assert len(list((tmp_path / FITTED_FOLDER).glob("*.npz"))) == 1
    for query in ("navaja en la mochila", "champú", "¿puedo llevar un perro?"):
        assert restarted.search(query, k=3, language="es") == first.search(
            query, k=3, language="es"
        )
