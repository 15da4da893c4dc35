"""When a webhook delivery is tried again, pure.

In: the HTTP status of an attempt (None: connection refused, reset or timed out), the number of
attempts made, the time, the answer's ``Retry-After`` header and a random source. Out: what the
answer means (``classify``) and the time of the next attempt, or None once the schedule is spent
(``next_attempt``; the delivery then goes to the dead letters).

As Standard Webhooks senders do, only a 2xx answer ends a delivery, and a 410 Gone disables the
endpoint; every other answer (3xx, 4xx, 5xx) and no answer at all is retried, at the next delay of
the schedule. Each delay is varied by up to ``jitter`` either way, so that the retries of many
alerts that failed together spread out. A ``Retry-After`` header (seconds, or an HTTP date) sets the
delay to at least its value, at most a day; the caller passes it only with a 429 or a 503, the
answers it is defined for.

>>> policy = RetryPolicy()
>>> next_attempt(policy, 0, 1000.0, None, random.Random(1))  # the first attempt: at once
1000.0
>>> next_attempt(policy, 1, 1000.0, "60", random.Random(1))  # 5 s +- 20 %, but asked to wait 60 s
1060.0
>>> next_attempt(policy, len(policy.delays_s), 1000.0, None, random.Random(1)) is None
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER_S = 86400.0
# Standard Webhooks / Svix: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 27.6 h in all)
STANDARD_DELAYS_S = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delay before each attempt, seconds, the first being the first attempt's (0: at once), and the
    fraction each delay varies by. ``len(delays_s)`` attempts in all."""

    delays_s: tuple[float, ...] = STANDARD_DELAYS_S
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not self.delays_s or min(self.delays_s) < 0:
            raise ValueError(f"delays_s must be one or more delays >= 0, not {self.delays_s}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, not {self.jitter}")


def classify(status: int | None) -> str:
    """``delivered`` (2xx), ``gone`` (410: disable the endpoint) or ``retry`` (anything else, None
    being no answer).

    >>> [classify(s) for s in (200, 204, 410, 429, 503, None, 400, 301)]
    ['delivered', 'delivered', 'gone', 'retry', 'retry', 'retry', 'retry', 'retry']
    """
    if status is not None and 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "gone"
    return "retry"


def retry_after_s(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait, at most a day (None if absent or unreadable).

    >>> retry_after_s("120", 0.0), retry_after_s("Thu, 01 Jan 1970 00:02:00 GMT", 60.0), retry_after_s("soon", 0.0)
    (120.0, 60.0, None)
    """
    value = (value or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": HTTP dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    return min(max(when.timestamp() - now, 0.0), MAX_RETRY_AFTER_S)


def next_attempt(policy: RetryPolicy, attempts_made: int, now: float, retry_after: str | None,
                 rng: random.Random) -> float | None:
    """Time of the next attempt after ``attempts_made`` failed attempts, or None once the schedule is spent."""
    if attempts_made < 0:
        raise ValueError(f"attempts_made must be >= 0, not {attempts_made}")
    if attempts_made >= len(policy.delays_s):
        return None
    delay = policy.delays_s[attempts_made] * rng.uniform(1 - policy.jitter, 1 + policy.jitter)
    asked = retry_after_s(retry_after, now)
    return now + (delay if asked is None else max(delay, asked))
