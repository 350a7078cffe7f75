"""Sentiment figures: how citizens felt, per message and per conversation (start -> end).

Each citizen message in English or Spanish is scored when its conversation is built
(``knowledge_base.sentiment``, VADER's compound score in [-1, 1]); other languages are not
scored, so they never pass for neutral. Definitions (docs/metrics.md):

* a **negative message** scores at or below VADER's cut-off (-0.05);
* a **negative conversation** has at least one negative message; the **negative rate** is
  negative conversations / conversations with a scored message;
* **start** and **end** are a conversation's first and last scored messages; it **improved** or
  **worsened** when it has two or more and the end is 0.05 above or below the start;
* **negative topics**: the words that come up most in negative messages, without function words
  and sentiment words ("line", "wait", "liquids"), for "mostly about ...".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from pydantic import BaseModel

from knowledge_base.sentiment import (
    NEGATIVE_UPTO,
    POSITIVE_FROM,
    is_sentiment_word,
    topic_stopwords,
)
from knowledge_base.text import fold

CHANGE = POSITIVE_FROM  # start -> end difference that counts as improved / worsened
TOPICS = 5
_WORD = re.compile(r"[a-z]{4,}")


class ScoredTurn(Protocol):
    sentiment: float | None
    text: str | None


class ScoredConversation(Protocol):
    sentiment_start: float | None
    sentiment_end: float | None
    sentiment_messages: int
    negative_messages: int


class SentimentSummary(BaseModel):
    scored_messages: int
    negative_messages: int
    negative_message_rate: float | None
    scored_conversations: int
    negative_conversations: int
    negative_rate: float | None
    start_mean: float | None
    end_mean: float | None
    improved: int
    worsened: int
    negative_topics: list[str]


def is_negative(score: float | None) -> bool:
    return score is not None and score <= NEGATIVE_UPTO


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def topic_words(text: str) -> set[str]:
    """The content words of one message (no function or sentiment words): what a negative
    message counts towards the topics. Shared with the daily roll-ups (analytics.rollup)."""
    stopwords = topic_stopwords()
    words = set(_WORD.findall(fold(text)))
    return {w for w in words if w not in stopwords and not is_sentiment_word(w)}


def top_topics(counts: Mapping[str, int], limit: int = TOPICS) -> list[str]:
    """The most frequent words (ties alphabetically); a word seen once only counts when there
    are no more than ``limit`` words at all."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [word for word, n in ranked[:limit] if n > 1 or len(ranked) <= limit]


def negative_topics(turns: Iterable[ScoredTurn], limit: int = TOPICS) -> list[str]:
    """The content words negative messages share most (each counted once per message)."""
    counts: Counter[str] = Counter()
    for t in turns:
        if is_negative(t.sentiment) and t.text:
            counts.update(topic_words(t.text))
    return top_topics(counts, limit)


def summarise_sentiment(
    convs: Sequence[ScoredConversation], turns: Sequence[ScoredTurn]
) -> SentimentSummary:
    scored = [c for c in convs if c.sentiment_messages]
    negative = sum(1 for c in scored if c.negative_messages)
    both = [c for c in scored if c.sentiment_messages >= 2]
    messages = sum(c.sentiment_messages for c in scored)
    negative_messages = sum(c.negative_messages for c in scored)
    return SentimentSummary(
        scored_messages=messages,
        negative_messages=negative_messages,
        negative_message_rate=_rate(negative_messages, messages),
        scored_conversations=len(scored),
        negative_conversations=negative,
        negative_rate=_rate(negative, len(scored)),
        start_mean=_mean([c.sentiment_start for c in scored if c.sentiment_start is not None]),
        end_mean=_mean([c.sentiment_end for c in scored if c.sentiment_end is not None]),
        improved=sum(1 for c in both if c.sentiment_end - c.sentiment_start >= CHANGE),  # type: ignore[operator]
        worsened=sum(1 for c in both if c.sentiment_start - c.sentiment_end >= CHANGE),  # type: ignore[operator]
        negative_topics=negative_topics(turns),
    )
