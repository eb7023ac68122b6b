"""Sentiment scoring with VADER.

A mention is negative when VADER's compound score is <= -0.05, positive when
>= 0.05 and neutral in between (VADER's own published thresholds).
"""

from __future__ import annotations

from collections.abc import Iterable

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

NEGATIVE_AT = -0.05
POSITIVE_AT = 0.05


class Scorer:
    """Compound scores for texts (stock VADER lexicon and rules)."""

    def __init__(self) -> None:
        self._vader = SentimentIntensityAnalyzer()

    def score(self, text: str) -> float:
        return float(self._vader.polarity_scores(text)["compound"])

    def score_many(self, texts: Iterable[str]) -> list[float]:
        scores = self._vader.polarity_scores
        return [scores(t)["compound"] for t in texts]
