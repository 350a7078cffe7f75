"""Fitted logistic regressions kept on disk under a hash of everything the fit reads.

The Spanish scorer (knowledge_base/language_scorer.py) fits a logistic regression over its
rows every time an index is loaded: 3.5 of the action server's 10.7 s from spawn to ready on a
quiet machine (py-spy, 2026-12-07), paid again by every restart after a crash, every scale
replica and every `kb evaluate`. The same index gives the same features, and the same features
and settings give the same fit, so the first process to fit stores the result here and the
others read it. The key is the SHA-256 of the feature matrix, the labels, the estimator's
parameters and the scikit-learn version: a file can only be found for exactly that fit, and the
loaded estimator holds the fitted arrays, so it predicts what a fresh fit would.

Plain ``.npz`` arrays read with ``allow_pickle=False`` (never a pickle: the folder may be
shared), written atomically, the oldest pruned beyond ``keep`` files. A file that cannot be read
or written only costs the fit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sklearn
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from knowledge_base.atomic_file import replace_atomically

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
DEFAULT_KEEP = 16  # a few indexes' worth of languages; ~6 MB each for the sample's Spanish
_FITTED = ("coef_", "intercept_", "classes_", "n_iter_")


def fit_key(estimator: LogisticRegression, features: sparse.spmatrix, labels: np.ndarray) -> str:
    """SHA-256 of what ``estimator.fit(features, labels)`` reads."""
    matrix = sparse.csr_matrix(features)  # read only: the caller fits on it as it is
    digest = hashlib.sha256()
    params = {key: repr(value) for key, value in sorted(estimator.get_params().items())}
    header = {"format": CACHE_FORMAT, "sklearn": sklearn.__version__, "params": params}
    digest.update(json.dumps(header, sort_keys=True).encode())
    digest.update(repr((matrix.shape, str(matrix.dtype), str(labels.dtype))).encode())
    for array in (matrix.indptr, matrix.indices, matrix.data, np.ascontiguousarray(labels)):
        digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(b"|")
    return digest.hexdigest()


class FittedClassifierCache:
    """A folder of fitted logistic regressions, one ``<key>.npz`` each."""

    def __init__(self, folder: Path | str, keep: int = DEFAULT_KEEP) -> None:
        self.folder = Path(folder)
        self.keep = keep
        self.hits = 0
        self.misses = 0

    def fit(
        self,
        make: Callable[[], LogisticRegression],
        features: sparse.spmatrix,
        labels: np.ndarray,
    ) -> LogisticRegression:
        """``make()`` fitted on ``features``/``labels``: read from the folder when this exact fit
        was stored, else fitted now and stored."""
        estimator = make()
        key = fit_key(estimator, features, labels)
        path = self.folder / f"{key}.npz"
        if self._read(path, estimator):
            self.hits += 1
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used: pruned last
            return estimator
        self.misses += 1
        estimator.fit(features, labels)
        self._write(path, estimator)
        return estimator

    def _read(self, path: Path, estimator: LogisticRegression) -> bool:
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in _FITTED}
                n_features = int(stored["n_features_in_"])
        except FileNotFoundError:
            return False
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            logger.warning("fitted classifier %s unreadable (%s): fitting again", path.name, exc)
            return False
        for name, value in arrays.items():
            setattr(estimator, name, value)
        estimator.n_features_in_ = n_features
        return True

    def _write(self, path: Path, estimator: LogisticRegression) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            replace_atomically(
                path,
                lambda handle: np.savez(
                    handle,
                    n_features_in_=np.int64(estimator.n_features_in_),
                    **{name: getattr(estimator, name) for name in _FITTED},
                ),
                binary=True,
            )
            self._prune()
        except OSError as exc:
            logger.warning("could not store fitted classifier in %s: %s", self.folder, exc)

    def _prune(self) -> None:
        dated = []
        for path in self.folder.glob("*.npz"):
            with contextlib.suppress(OSError):  # removed meanwhile by another process
                dated.append((path.stat().st_mtime, path))
        for _, old in sorted(dated, reverse=True)[self.keep :]:
            old.unlink(missing_ok=True)
