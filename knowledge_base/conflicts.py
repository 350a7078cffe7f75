"""Conflicting question wordings: a variant that is closer to another FAQ than to its own.

Retrieval answers with the FAQ of the nearest question text, so such a variant
either steals citizens from the other FAQ or is itself the wrong answer's
magnet. Staff see these on the content-health page and when editing an FAQ.

The pure part (:func:`find_conflicts`) works on given vectors so it is tested
without a model; :func:`detect_conflicts` embeds with whatever function the
caller passes (the cached FAQ-text embedder in the console).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from knowledge_base.types import FaqRecord

Embed = Callable[[Sequence[str]], np.ndarray]
_ROW_CHUNK = 512  # similarity rows computed at a time: bounded memory for large KBs


@dataclass(frozen=True)
class Conflict:
    faq_id: str
    language: str
    text: str
    is_canonical: bool
    own_score: float  # best similarity to another question text of its own FAQ
    other_faq_id: str
    other_question: str  # the other FAQ's canonical question, for display
    other_text: str  # the text of the other FAQ that is closest
    other_score: float

    @property
    def gap(self) -> float:
        return self.other_score - self.own_score

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gap": round(self.gap, 4)}


def _flatten(records: Sequence[FaqRecord]) -> tuple[list[str], list[int], list[bool]]:
    texts: list[str] = []
    owners: list[int] = []
    canonical: list[bool] = []
    for index, record in enumerate(records):
        for position, text in enumerate(record.question_texts()):
            texts.append(text)
            owners.append(index)
            canonical.append(position == 0)
    return texts, owners, canonical


def find_conflicts(
    records: Sequence[FaqRecord], vectors: np.ndarray, margin: float = 0.0
) -> list[Conflict]:
    """Conflicts among ``records``; ``vectors`` are the L2-normalised
    embeddings of every record's ``question_texts()`` in order. Only FAQs of
    the same language are compared (retrieval filters by language). A text is
    flagged when its best match in another FAQ beats its best match in its own
    FAQ by more than ``margin``; FAQs with a single question text have nothing
    to compare with and are only ever the "other" side. Each pair of texts is
    reported once. Worst first."""
    texts, owners, canonical = _flatten(records)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.shape[0] != len(texts):
        raise ValueError(f"expected {len(texts)} vectors, got {vectors.shape[0]}")
    conflicts: list[Conflict] = []
    owner_arr = np.asarray(owners)
    by_language: dict[str, list[int]] = {}
    for position, owner in enumerate(owners):
        by_language.setdefault(records[owner].language, []).append(position)
    for language, positions in by_language.items():
        idx = np.asarray(positions)
        group_vectors = vectors[idx]
        group_owners = owner_arr[idx]
        for start in range(0, len(idx), _ROW_CHUNK):
            rows = slice(start, min(start + _ROW_CHUNK, len(idx)))
            sims = group_vectors[rows] @ group_vectors.T
            for offset, row in enumerate(sims):
                local = start + offset
                same = group_owners == group_owners[local]
                same[local] = False
                if not same.any():
                    continue
                own_score = float(row[same].max())
                other_mask = group_owners != group_owners[local]
                if not other_mask.any():
                    continue
                masked = np.where(other_mask, row, -np.inf)
                best = int(np.argmax(masked))
                other_score = float(masked[best])
                if other_score > own_score + margin:
                    me = int(idx[local])
                    them = int(idx[best])
                    other_record = records[owners[them]]
                    conflicts.append(
                        Conflict(
                            faq_id=records[owners[me]].id,
                            language=language,
                            text=texts[me],
                            is_canonical=canonical[me],
                            own_score=round(own_score, 4),
                            other_faq_id=other_record.id,
                            other_question=other_record.question,
                            other_text=texts[them],
                            other_score=round(other_score, 4),
                        )
                    )
    return _one_per_pair(conflicts)


def _one_per_pair(conflicts: list[Conflict]) -> list[Conflict]:
    """A misfiled variant usually also pulls the other FAQ's closest text
    towards itself; report each pair of texts once, from the side that is
    further from its own FAQ (that is the one to move or delete)."""
    conflicts.sort(key=lambda c: (-c.gap, c.faq_id, c.text))
    seen: set[tuple[str, str, str]] = set()
    kept = []
    for conflict in conflicts:
        pair = tuple(sorted((conflict.text, conflict.other_text)))
        key = (conflict.language, pair[0], pair[1])
        if key in seen:
            continue
        seen.add(key)
        kept.append(conflict)
    return kept


def detect_conflicts(
    records: Sequence[FaqRecord], embed: Embed, margin: float = 0.0
) -> list[Conflict]:
    texts, _owners, _canonical = _flatten(records)
    if not texts:
        return []
    return find_conflicts(records, np.asarray(embed(texts), dtype=np.float32), margin)


def conflicts_for(conflicts: Sequence[Conflict], faq_id: str) -> list[Conflict]:
    """Conflicts an editor of ``faq_id`` should see: its own texts drifting
    away, and other FAQs' texts drifting into it."""
    return [c for c in conflicts if faq_id in (c.faq_id, c.other_faq_id)]
