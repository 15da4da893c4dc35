"""The retry schedule: jitter within its band, Retry-After honoured, the end of the schedule."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import format_datetime

from hypothesis import given
from hypothesis import strategies as st

from streamproc.delivery.schedule import RetryPolicy, next_attempt, retry_after_s

POLICY = RetryPolicy()


@given(st.integers(0, 20), st.integers(0, 2**32))
def test_delays_stay_in_the_jitter_band_and_the_schedule_ends(made: int, seed: int) -> None:
    at = next_attempt(POLICY, made, 1000.0, None, random.Random(seed))
    if made >= len(POLICY.delays_s):
        assert at is None
    else:
        base = POLICY.delays_s[made]
        assert at is not None and base * 0.8 <= at - 1000.0 <= base * 1.2


def test_retry_after_in_seconds_or_as_a_date_sets_a_longer_delay() -> None:
    rng = random.Random(1)
    assert next_attempt(POLICY, 1, 1000.0, "60", rng) == 1060.0
    when = format_datetime(datetime.fromtimestamp(1000.0 + 120, timezone.utc), usegmt=True)
    assert abs(retry_after_s(when, 1000.0) - 120) < 1
    assert retry_after_s("soon", 1000.0) is None and retry_after_s("999999", 0) == 86400.0
