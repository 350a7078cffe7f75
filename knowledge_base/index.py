"""The versioned index bundle: everything the action server needs to answer.

A bundle holds one L2-normalised vector per question text (canonical + variants)
in a FAISS inner-product index, the row -> FAQ mapping, the FAQ records
themselves (answers and source links, so answering never needs the database),
the char TF-IDF model and the linear classifier used by the scorer, and meta.

On disk each build is a new folder ``index_dir/<version>/`` written under a
temporary name and renamed into place; ``index_dir/CURRENT`` names the live
version and is swapped with ``os.replace`` so a reader sees either the old or the
new bundle, never a half-written one. Files are JSON, ``.npy`` and ``.npz``
(loaded with ``allow_pickle=False``): loading a bundle can not execute code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning

from askagency.clock import now_utc
from knowledge_base import ann
from knowledge_base.embedder import Embedder
from knowledge_base.lexical import CharTfidf
from knowledge_base.types import FaqRecord

FORMAT_VERSION = 1
CURRENT_FILE = "CURRENT"
KEEP_VERSIONS = 3
# Regularisation of the classifier, chosen on a held-out split of BANKING77 train.
CLASSIFIER_C = 10.0
CLASSIFIER_MAX_ITER = 300
_FILES = ("meta.json", "faqs.json", "vectors.npy", "arrays.npz", "lexical.npz")
# The saved FAISS index (flat or IVF, see knowledge_base/ann.py). Optional so bundles written
# before it existed still load (their flat index is rebuilt from vectors.npy).
INDEX_FILE = "vectors.faiss"


class IndexLoadError(RuntimeError):
    """A bundle is missing, incomplete or corrupt."""


@dataclass
class Bundle:
    """An immutable-by-convention, fully loaded index version."""

    faqs: list[FaqRecord]
    row_texts: list[str]
    row_faq: np.ndarray  # (n_rows,) int32: FAQ position of each vector
    faq_offsets: np.ndarray  # (n_faqs + 1,) rows of FAQ i are [offsets[i], offsets[i+1])
    vectors: np.ndarray  # (n_rows, dim) float32, L2-normalised
    lexical: CharTfidf
    lex_matrix: sparse.csr_matrix  # (n_rows, n_lex) char TF-IDF rows
    clf_coef: np.ndarray | None = None  # (n_faqs, dim) softmax weights
    clf_intercept: np.ndarray | None = None  # (n_faqs,)
    meta: dict[str, Any] = field(default_factory=dict)
    # faiss index over ``vectors``: flat (exact) or IVF for large KBs (meta["index"] says which,
    # with its recall@1 vs flat); built from ``vectors`` as flat when not given.
    index: Any = None
    # Derived data computed on first use and kept for the bundle's life (a bundle never
    # changes): knowledge_base/related.py keeps its FAQ centroids and answers here.
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.index is None:
            self.index = _flat_index(self.vectors)
        self.faq_pos = {faq.id: i for i, faq in enumerate(self.faqs)}

    @property
    def version(self) -> str:
        return str(self.meta.get("version", ""))

    @property
    def n_rows(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def _flat_index(vectors: np.ndarray) -> Any:
    return ann.flat_index(vectors)


def _clean_texts(record: FaqRecord) -> list[str]:
    texts: list[str] = []
    folded: set[str] = set()
    for text in record.question_texts():
        cleaned = " ".join((text or "").split())
        if cleaned and cleaned.casefold() not in folded:
            folded.add(cleaned.casefold())
            texts.append(cleaned)
    return texts


def fit_classifier(
    vectors: np.ndarray,
    row_faq: np.ndarray,
    n_faqs: int,
    warm: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Multinomial logistic regression on the embeddings, one class per FAQ.

    Returned as plain (coef, intercept) arrays: ``softmax(x @ coef.T + b)``.
    ``warm`` (coefficients aligned to the new FAQ order, zeros for new FAQs)
    makes a refit after a small edit converge in a couple of iterations.
    """
    if n_faqs < 2 or vectors.shape[0] == 0:
        return None
    with warnings.catch_warnings():
        # One class per FAQ with a handful of texts each is the normal case here, and
        # a not-quite-converged fit is still a useful re-ranker: neither is news.
        warnings.filterwarnings("ignore", message="The number of unique classes")
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        return _fit_logreg(vectors, row_faq, n_faqs, warm)


def _fit_logreg(
    vectors: np.ndarray,
    row_faq: np.ndarray,
    n_faqs: int,
    warm: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    if n_faqs == 2:
        model = LogisticRegression(C=CLASSIFIER_C, max_iter=CLASSIFIER_MAX_ITER)
        model.fit(vectors, row_faq)
        w, b = model.coef_[0], model.intercept_[0]
        coef = np.stack([-w / 2, w / 2]).astype(np.float32)
        return coef, np.array([-b / 2, b / 2], dtype=np.float32)
    model = LogisticRegression(
        C=CLASSIFIER_C, max_iter=CLASSIFIER_MAX_ITER, warm_start=warm is not None
    )
    if warm is not None:
        model.coef_ = warm[0].astype(np.float64)
        model.intercept_ = warm[1].astype(np.float64)
    model.fit(vectors, row_faq)
    return model.coef_.astype(np.float32), model.intercept_.astype(np.float32)


def _warm_start(
    previous: Bundle | None, faqs: Sequence[FaqRecord], dim: int
) -> tuple[np.ndarray, np.ndarray] | None:
    if previous is None or previous.clf_coef is None or previous.dim != dim or len(faqs) <= 2:
        return None
    if previous.meta.get("model_id") is None:
        return None
    coef = np.zeros((len(faqs), dim), dtype=np.float32)
    intercept = np.zeros(len(faqs), dtype=np.float32)
    known = 0
    for i, faq in enumerate(faqs):
        j = previous.faq_pos.get(faq.id)
        if j is not None:
            coef[i], intercept[i] = previous.clf_coef[j], previous.clf_intercept[j]
            known += 1
    return (coef, intercept) if known else None


def _lexical(
    row_texts: list[str], previous: Bundle | None
) -> tuple[CharTfidf, sparse.csr_matrix, int]:
    """Char TF-IDF rows for ``row_texts``.

    After a small edit the live bundle's IDF is reused: unchanged texts keep their
    rows and only new texts are vectorised (n-grams unseen at fit time are
    dropped). That keeps a publish at 10k variants well under a second for this
    step; once the reused IDF has seen more than 2% new texts (cumulated over
    publishes, at least 20) it is refitted from scratch.
    """
    if previous is not None and previous.lexical.n_features and row_texts:
        known = {text: i for i, text in enumerate(previous.row_texts)}
        missing = list(dict.fromkeys(t for t in row_texts if t not in known))
        stale = int(previous.meta.get("lexical_stale_texts", 0)) + len(missing)
        if stale <= max(20, 0.02 * len(row_texts)):
            n_prev = len(previous.row_texts)
            extra = {t: n_prev + i for i, t in enumerate(missing)}
            parts = [previous.lex_matrix]
            if missing:
                parts.append(previous.lexical.transform(missing))
            stacked = sparse.vstack(parts, format="csr")
            order = [known[t] if t in known else extra[t] for t in row_texts]
            return previous.lexical, stacked[order], stale
    lexical, matrix = CharTfidf.fit_transform(row_texts)
    return lexical, matrix, 0


@dataclass(frozen=True)
class IndexOptions:
    """Which vector index a build makes (settings ``index_kind``, ``index_flat_max_rows``,
    ``index_large_kind``; ``knowledge_base.factory.index_options`` reads them)."""

    kind: str = "auto"
    flat_max_rows: int = ann.FLAT_MAX_ROWS
    large_kind: str = "ivf"


DEFAULT_INDEX_OPTIONS = IndexOptions()


def build_bundle(
    records: Sequence[FaqRecord],
    embedder: Embedder,
    previous: Bundle | None = None,
    *,
    classifier: bool = True,
    options: IndexOptions = DEFAULT_INDEX_OPTIONS,
) -> Bundle:
    """Embed, index and fit the scorer for ``records``.

    ``previous`` (the live bundle) warm-starts the classifier so publishing one
    edit is fast; the embedding cache already avoids re-embedding old texts.
    ``classifier=False`` skips the classifier (the retriever then ranks by the
    hybrid similarity alone). ``index_kind`` ("auto", "flat", "ivf", "hnsw"),
    ``flat_max_rows`` and ``large_kind`` (what "auto" picks above ``flat_max_rows``: "ivf" or
    "hnsw") default to the settings ``index_kind``, ``index_flat_max_rows``, ``index_large_kind``.
    """
    started = time.perf_counter()
    ids = [r.id for r in records]
    duplicates = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if duplicates:
        raise ValueError(f"Duplicate FAQ ids in index input: {', '.join(duplicates[:5])}")
    faqs: list[FaqRecord] = []
    row_texts: list[str] = []
    row_faq: list[int] = []
    offsets = [0]
    for record in records:
        texts = _clean_texts(record)
        if not texts:
            continue  # an FAQ without any question text can never be matched
        row_faq.extend([len(faqs)] * len(texts))
        faqs.append(record)
        row_texts.extend(texts)
        offsets.append(len(row_texts))
    timings: dict[str, float] = {}
    t = time.perf_counter()
    vectors = (
        embedder.encode(row_texts) if row_texts else np.zeros((0, embedder.dim), dtype=np.float32)
    )
    timings["embed_s"] = time.perf_counter() - t
    t = time.perf_counter()
    lexical, lex_matrix, stale = _lexical(row_texts, previous)
    timings["lexical_s"] = time.perf_counter() - t
    t = time.perf_counter()
    row_faq_arr = np.asarray(row_faq, dtype=np.int32)
    warm = _warm_start(previous, faqs, int(vectors.shape[1])) if classifier else None
    fitted = fit_classifier(vectors, row_faq_arr, len(faqs), warm) if classifier else None
    timings["classifier_s"] = time.perf_counter() - t
    t = time.perf_counter()
    vector_index, choice = ann.build_index(
        vectors, options.kind, options.flat_max_rows, large_kind=options.large_kind
    )
    timings["index_s"] = time.perf_counter() - t
    created = now_utc()
    content = hashlib.sha256(
        json.dumps([asdict(f) for f in faqs], sort_keys=True).encode()
    ).hexdigest()
    meta = {
        "format": FORMAT_VERSION,
        "version": f"{created.strftime('%Y%m%dT%H%M%S%fZ')}-{content[:8]}",
        "created_at": created.isoformat(),
        "model_id": embedder.model_id,
        "model_path": embedder.model_path,
        "dim": int(vectors.shape[1]),
        "n_faqs": len(faqs),
        "n_vectors": len(row_texts),
        "languages": sorted({f.language for f in faqs}),
        "content_sha256": content,
        "classifier": "logreg-embeddings" if fitted else None,
        "warm_started": warm is not None,
        "lexical_stale_texts": stale,  # texts vectorised with a reused IDF (0 = refitted)
        "index": choice.as_meta(),  # flat or IVF, nprobe and recall@1 vs flat
        "timings": timings,
        "build_s": time.perf_counter() - started,
    }
    return Bundle(
        faqs=faqs,
        row_texts=row_texts,
        row_faq=row_faq_arr,
        faq_offsets=np.asarray(offsets, dtype=np.int64),
        vectors=vectors,
        lexical=lexical,
        lex_matrix=lex_matrix,
        clf_coef=fitted[0] if fitted else None,
        clf_intercept=fitted[1] if fitted else None,
        meta=meta,
        index=vector_index,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_bundle_files(bundle: Bundle, folder: Path) -> dict[str, str]:
    faqs_doc = {
        "faqs": [asdict(f) for f in bundle.faqs],
        "row_texts": bundle.row_texts,
    }
    (folder / "faqs.json").write_text(json.dumps(faqs_doc, ensure_ascii=False), "utf-8")
    np.save(folder / "vectors.npy", bundle.vectors, allow_pickle=False)
    arrays: dict[str, np.ndarray] = {
        "row_faq": bundle.row_faq,
        "faq_offsets": bundle.faq_offsets,
        **bundle.lexical.to_arrays(),
    }
    if bundle.clf_coef is not None and bundle.clf_intercept is not None:
        arrays["clf_coef"] = bundle.clf_coef
        arrays["clf_intercept"] = bundle.clf_intercept
    np.savez(folder / "arrays.npz", **arrays)
    sparse.save_npz(folder / "lexical.npz", bundle.lex_matrix, compressed=False)
    ann.write_index(bundle.index, folder / INDEX_FILE)
    names = [n for n in _FILES if n != "meta.json"] + [INDEX_FILE]
    checksums = {name: _sha256(folder / name) for name in names}
    meta = {**bundle.meta, "files": checksums}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), "utf-8")
    for name in (*_FILES, INDEX_FILE):
        with (folder / name).open("rb") as handle:
            os.fsync(handle.fileno())
    return checksums


def write_current(index_dir: Path, version: str) -> None:
    """Atomically point CURRENT at ``version`` (temp file + fsync + os.replace)."""
    tmp = index_dir / f".{CURRENT_FILE}.{uuid.uuid4().hex}.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(version + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, index_dir / CURRENT_FILE)
    _fsync_dir(index_dir)


def read_current(index_dir: Path | str) -> str:
    path = Path(index_dir) / CURRENT_FILE
    try:
        version = path.read_text("utf-8").strip()
    except FileNotFoundError as exc:
        raise IndexLoadError(
            f"No index in {index_dir}: run `askagency kb build-index` first."
        ) from exc
    except OSError as exc:
        raise IndexLoadError(f"Cannot read {path}: {exc}") from exc
    if not version or "/" in version or version.startswith("."):
        raise IndexLoadError(f"{path} does not name a valid index version: {version!r}")
    return version


def list_versions(index_dir: Path | str) -> list[str]:
    root = Path(index_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def save_bundle(bundle: Bundle, index_dir: Path | str, keep: int = KEEP_VERSIONS) -> str:
    """Write ``bundle`` as a new version folder, make it CURRENT, prune old ones.

    Returns the version id. The folder is complete and fsynced before CURRENT
    moves, so a concurrent reader can never load a partial bundle.
    """
    root = Path(index_dir)
    root.mkdir(parents=True, exist_ok=True)
    version = bundle.version or now_utc().strftime("%Y%m%dT%H%M%S%fZ")
    if (root / version).exists():
        version = f"{version}-{uuid.uuid4().hex[:6]}"
    bundle.meta["version"] = version
    staging = root / f".tmp-{version}-{uuid.uuid4().hex[:6]}"
    staging.mkdir()
    try:
        _write_bundle_files(bundle, staging)
        os.rename(staging, root / version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(root)
    write_current(root, version)
    prune_versions(root, keep)
    return version


def prune_versions(index_dir: Path, keep: int = KEEP_VERSIONS) -> list[str]:
    """Delete all but the newest ``keep`` versions (never the CURRENT one) and
    staging folders abandoned by a crashed build more than an hour ago."""
    try:
        current = read_current(index_dir)
    except IndexLoadError:
        current = ""
    versions = list_versions(index_dir)
    removed = [v for v in versions[: max(0, len(versions) - keep)] if v != current]
    for version in removed:
        shutil.rmtree(index_dir / version, ignore_errors=True)
    for stale in index_dir.glob(".tmp-*"):
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    return removed


# numpy parses .npy headers with ast.literal_eval, and CPython 3.11's AST constructor is not
# thread-safe ("AST constructor recursion depth mismatch" when two threads load at once, as the
# index reader test and a reload beside a request do): one loader at a time parses headers.
_ARRAY_HEADER_LOCK = threading.Lock()


def _load_arrays(folder: Path) -> tuple[np.ndarray, dict[str, np.ndarray], sparse.csr_matrix]:
    # Memory-mapped: action servers on one host share these pages through the page cache.
    vectors = np.load(folder / "vectors.npy", allow_pickle=False, mmap_mode="r")
    with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    lex_matrix = sparse.load_npz(folder / "lexical.npz").tocsr()
    return vectors, arrays, lex_matrix


def load_bundle(folder: Path | str) -> Bundle:
    """Load and verify one version folder; any problem raises IndexLoadError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IndexLoadError(f"Index version folder {folder} does not exist")
    try:
        meta = json.loads((folder / "meta.json").read_text("utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise IndexLoadError(
                f"{folder} has index format {meta.get('format')!r}, expected {FORMAT_VERSION}: "
                "rebuild it with `askagency kb build-index`"
            )
        for name, expected in meta.get("files", {}).items():
            if _sha256(folder / name) != expected:
                raise IndexLoadError(f"{folder / name} is corrupt (checksum mismatch)")
        listed = set(meta.get("files", {})) - {INDEX_FILE}
        if listed != set(_FILES) - {"meta.json"}:
            raise IndexLoadError(f"{folder}/meta.json does not list every bundle file")
        doc = json.loads((folder / "faqs.json").read_text("utf-8"))
        faqs = [
            FaqRecord(
                **{
                    **f,
                    "variants": tuple(f.get("variants", ())),
                    "related": tuple(f.get("related", ())),
                }
            )
            for f in doc["faqs"]
        ]
        with _ARRAY_HEADER_LOCK:
            vectors, arrays, lex_matrix = _load_arrays(folder)
        vector_index = None
        if INDEX_FILE in meta.get("files", {}):
            chosen = meta.get("index", {})
            vector_index = ann.read_index(
                folder / INDEX_FILE,
                nprobe=int(chosen.get("nprobe", 0)),
                ef_search=int(chosen.get("ef_search", 0)),
                mmap=True,
            )
        bundle = Bundle(
            faqs=faqs,
            row_texts=list(doc["row_texts"]),
            row_faq=arrays["row_faq"].astype(np.int32),
            faq_offsets=arrays["faq_offsets"].astype(np.int64),
            vectors=np.ascontiguousarray(vectors, dtype=np.float32),
            lexical=CharTfidf.from_arrays(arrays),
            lex_matrix=lex_matrix,
            clf_coef=arrays.get("clf_coef"),
            clf_intercept=arrays.get("clf_intercept"),
            meta=meta,
            index=vector_index,
        )
    except IndexLoadError:
        raise
    except Exception as exc:  # truncated npz, bad JSON, missing file, wrong keys
        raise IndexLoadError(f"Cannot load index bundle {folder}: {exc}") from exc
    n = bundle.n_rows
    if (
        len(bundle.row_texts) != n
        or bundle.row_faq.shape != (n,)
        or bundle.faq_offsets.shape != (len(faqs) + 1,)
        or bundle.lex_matrix.shape[0] != n
        or meta.get("n_vectors") != n
        or bundle.index.ntotal != n
    ):
        raise IndexLoadError(f"Index bundle {folder} is inconsistent (row counts differ)")
    return bundle


def load_current(index_dir: Path | str) -> Bundle:
    """The bundle CURRENT points at."""
    version = read_current(index_dir)
    return load_bundle(Path(index_dir) / version)
