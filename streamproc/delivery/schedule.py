"""When a webhook delivery is tried again, pure.

Only a 2xx answer ends a delivery; a 410 Gone disables the endpoint (Standard Webhooks); every
other answer, a timeout or a refused connection is retried after the next delay of the
schedule, varied by up to ``jitter`` either way so that retries of many alerts spread out. A
``Retry-After`` header of a 429 or 503 (seconds or an HTTP date) sets the delay to at least its
value, at most a day.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER_S = 86400.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delay before each attempt, seconds: the first (0) is the first attempt's. The default is
    the Standard Webhooks / Svix schedule, about 27 hours from first to last attempt."""

    delays_s: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    jitter: float = 0.2


def classify(status: int | None) -> str:
    """``delivered`` (2xx), ``gone`` (410: disable the endpoint) or ``retry`` (anything else, None
    being no answer).

    >>> classify(204), classify(410), classify(429), classify(None), classify(400)
    ('delivered', 'gone', 'retry', 'retry', 'retry')
    """
    if status is not None and 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "gone"
    return "retry"


def retry_after_s(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (None if absent or unreadable)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        return min(max(parsedate_to_datetime(value).timestamp() - now, 0.0), MAX_RETRY_AFTER_S)
    except (TypeError, ValueError, IndexError):
        return None


def next_attempt(policy: RetryPolicy, attempts_made: int, now: float, retry_after: str | None,
                 rng: random.Random) -> float | None:
    """Time of the next attempt after ``attempts_made`` attempts, or None once the schedule is spent."""
    if attempts_made >= len(policy.delays_s):
        return None
    delay = policy.delays_s[attempts_made] * rng.uniform(1 - policy.jitter, 1 + policy.jitter)
    asked = retry_after_s(retry_after, now)
    return now + (max(delay, asked) if asked is not None else delay)
