"""The embedding model on ONNX Runtime: the export gives torch's vectors, the action server's
process never imports torch, and a broken or refused export leaves torch in use."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from knowledge_base import onnx_export
from knowledge_base.embedder import Embedder, EmbedderError
from knowledge_base.onnx_model import (
    MODEL_FILE,
    OnnxModelError,
    OnnxSentenceModel,
    export_folder,
    is_complete,
)
from tests.unit.kb_tiny import shared_embedder

ROOT = Path(__file__).resolve().parents[3]
TEXTS = [
    "can I bring my laptop in my carry-on?",
    "ok",
    "  How much  shampoo can I take?  ",
    "¿Puedo llevar un encendedor en el avión?",
    "wat r the rules 4 liquids",
    "Medications, syringes and insulin pumps " * 40,  # past the 128-token limit
    "北京的机场安检",
]


@pytest.fixture(scope="module")
def export_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export of the bundled model for the module (about 5 s)."""
    root = tmp_path_factory.mktemp("onnx-exports")
    embedder = Embedder(shared_embedder().model_path, runtime="auto", export_dir=root)
    assert embedder.prepare_runtime() == "onnx"
    return root


def onnx_embedder(export_root: Path) -> Embedder:
    return Embedder(shared_embedder().model_path, runtime="auto", export_dir=export_root)


def test_the_export_gives_torchs_vectors(export_root: Path) -> None:
    torch_vectors = shared_embedder().encode(TEXTS, use_cache=False)
    embedder = onnx_embedder(export_root)
    onnx_vectors = embedder.encode(TEXTS, use_cache=False)
    assert embedder.prepare_runtime() == "onnx" and embedder._onnx is not None
    assert onnx_vectors.dtype == np.float32 and onnx_vectors.shape == torch_vectors.shape
    np.testing.assert_allclose(onnx_vectors, torch_vectors, atol=1e-5)
    one = embedder.encode_query(TEXTS[0])  # the single-query path (no batching)
    np.testing.assert_allclose(one, torch_vectors[0], atol=1e-5)


def test_a_large_batch_in_parallel_chunks_keeps_the_order(export_root: Path) -> None:
    model = OnnxSentenceModel(export_folder(export_root, onnx_embedder(export_root).model_id))
    texts = [f"question number {i} about {'bags ' * (i % 7)}" for i in range(150)]
    together = model.encode(texts, batch_size=16, threads=2)
    one_by_one = np.vstack([model.encode([t]) for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_a_process_that_finds_the_export_never_imports_torch(export_root: Path) -> None:
    """What lets the action server drop 300 MB: it embeds queries without torch loaded."""
    script = textwrap.dedent(
        f"""
        import json, sys
        from knowledge_base.embedder import Embedder
        embedder = Embedder({shared_embedder().model_path!r}, runtime="auto",
                            export_dir={str(export_root)!r})
        vector = embedder.encode_query("can I bring my laptop in my carry-on?")
        print(json.dumps({{"torch": "torch" in sys.modules,
                          "sentence_transformers": "sentence_transformers" in sys.modules,
                          "vector": vector.tolist()}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["torch"] is False and result["sentence_transformers"] is False
    expected = shared_embedder().encode([TEXTS[0]], use_cache=False)[0]
    np.testing.assert_allclose(np.array(result["vector"]), expected, atol=1e-5)


def test_a_corrupt_export_falls_back_to_torch_with_a_warning(
    export_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = export_folder(export_root, onnx_embedder(export_root).model_id)
    broken = export_folder(tmp_path, onnx_embedder(export_root).model_id)
    broken.mkdir(parents=True)
    for file in source.iterdir():
        (broken / file.name).write_bytes(file.read_bytes())
    (broken / MODEL_FILE).write_bytes(b"not an onnx graph")
    embedder = Embedder(shared_embedder().model_path, runtime="auto", export_dir=tmp_path)
    embedder._model = shared_embedder()._load()  # the torch model already in this process
    with caplog.at_level(logging.WARNING, logger="knowledge_base.embedder"):
        vector = embedder.encode_query(TEXTS[0])
    assert embedder.prepare_runtime() == "torch"
    assert "embedding with torch" in caplog.text and "cannot load the ONNX export" in caplog.text
    np.testing.assert_allclose(vector, shared_embedder().encode([TEXTS[0]])[0], atol=1e-6)


def test_an_export_that_differs_from_torch_is_refused_and_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_export, "MAX_DIFFERENCE", -1.0)  # any difference is too large
    folder = tmp_path / "export"
    with pytest.raises(OnnxModelError, match="differs from torch"):
        onnx_export.export_model(shared_embedder().model_path, folder, 128)
    assert not folder.exists() and list(tmp_path.iterdir()) == []  # no half export left


def test_torch_runtime_and_int8_never_export(tmp_path: Path) -> None:
    for embedder in (
        Embedder(shared_embedder().model_path, runtime="torch", export_dir=tmp_path),
        Embedder(shared_embedder().model_path, int8="queries", runtime="auto", export_dir=tmp_path),
    ):
        assert embedder.prepare_runtime() == "torch"
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(EmbedderError, match="runtime must be one of"):
        Embedder(shared_embedder().model_path, runtime="tensorflow")  # type: ignore[arg-type]


def test_exports_live_beside_the_vector_cache_by_default(tmp_path: Path) -> None:
    embedder = Embedder("some-model", cache_path=tmp_path / "cache" / "embeddings.sqlite")
    assert embedder.export_folder is not None
    assert embedder.export_folder.parent == tmp_path / "cache" / "models"
    assert not is_complete(embedder.export_folder)
