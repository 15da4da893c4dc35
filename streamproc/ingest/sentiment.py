"""Sentiment of feedback text: VADER's compound score, from the lexicon shipped with vaderSentiment.

In: free text. Out: a score from -1 (most negative) to 1 (most positive). Works offline; the
lexicon is loaded once per process, on first use.

>>> compound("The delivery was late and the box was broken.") < 0 < compound("Great service, love it!")
True
"""

from __future__ import annotations

from functools import cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

MAX_CHARS = 2000  # feedback beyond this adds little and costs linear time


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def compound(text: str) -> float:
    """VADER compound score of ``text``, rounded to 4 places."""
    return round(_analyzer().polarity_scores(text[:MAX_CHARS])["compound"], 4)
