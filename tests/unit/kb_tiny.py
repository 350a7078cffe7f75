"""A tiny hand-made KB and one real embedder per test session (shared by the retrieval tests)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from askagency.config import bundled_model_path
from knowledge_base.embedder import Embedder
from knowledge_base.types import FaqKind, FaqRecord

TINY_KB = [
    FaqRecord(
        id="liquids",
        language="en",
        question="Can I bring liquids in my carry-on bag?",
        answer="Containers of 100 ml or less in one clear bag.",
        category="items",
        source_url="https://example.gov/liquids",
        variants=(
            "how much shampoo can I take on the plane",
            "is a water bottle allowed through security",
        ),
    ),
    FaqRecord(
        id="knives",
        language="en",
        question="Can I pack a pocket knife?",
        answer="Knives are allowed only in checked bags.",
        category="items",
        source_url="https://example.gov/knives",
        variants=(
            "is a swiss army knife allowed in hand luggage",
            "can I travel with a kitchen knife",
        ),
    ),
    FaqRecord(
        id="id-docs",
        language="en",
        question="What ID do I need at the checkpoint?",
        answer="A valid passport or driver's licence.",
        category="screening",
        variants=("do I need a passport to fly domestically", "which identification is accepted"),
    ),
    FaqRecord(
        id="pets",
        language="en",
        question="How do I travel with my pet through screening?",
        answer="Carry your pet through the metal detector.",
        category="screening",
        variants=("can my dog go through the x-ray", "cat in a carrier at security"),
    ),
    FaqRecord(
        id="liquidos",
        language="es",
        question="¿Puedo llevar líquidos en el equipaje de mano?",
        answer="Envases de 100 ml o menos en una bolsa transparente.",
        translation_group="liquids",
    ),
]

# An out-of-scope entry (kind out_of_scope) for the tiny KB: airline bookings.
BOOKINGS = FaqRecord(
    id="out-of-scope-bookings",
    language="en",
    question="how do I change my flight booking",
    answer="Bookings are handled by the airline.",
    category="Out of scope",
    variants=(
        "can I get a refund for my plane ticket",
        "how do i cancel my flight",
        "change the date of my flight",
        "airline ticket refund",
    ),
    kind=FaqKind.OUT_OF_SCOPE,
)


@lru_cache(maxsize=1)
def shared_embedder() -> Embedder:
    """The real bundled model, loaded once per test process, with a throwaway cache."""
    folder = Path(tempfile.mkdtemp(prefix=f"askagency-test-{os.getpid()}-"))
    atexit.register(shutil.rmtree, folder, True)
    return Embedder(bundled_model_path(), cache_path=folder / "embeddings.sqlite")


def fresh_embedder(cache_path: Path) -> Embedder:
    """A new embedder with its own cache that reuses the already loaded model."""
    shared = shared_embedder()
    embedder = Embedder(shared.model_path, cache_path=cache_path)
    embedder._model = shared._load()
    embedder._dim = shared.dim
    return embedder
