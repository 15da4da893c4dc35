"""The retry schedule: what each answer means, delays within their jitter band, Retry-After honoured
(seconds or an HTTP date, at most a day), and the end of the schedule after ``len(delays_s)`` attempts."""

from __future__ import annotations

import random
import time
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamproc.delivery.schedule import MAX_RETRY_AFTER_S, RetryPolicy, classify, next_attempt, retry_after_s

POLICY = RetryPolicy()
NOW = 1_700_000_000.0


def http_date(t: float) -> str:
    return format_datetime(datetime.fromtimestamp(t, timezone.utc), usegmt=True)


def test_the_default_is_the_standard_webhooks_schedule_of_about_27_hours() -> None:
    assert POLICY.delays_s == (0, 5, 300, 1800, 7200, 18000, 36000, 36000) and POLICY.jitter == 0.2
    assert 27 * 3600 < sum(POLICY.delays_s) < 28 * 3600


@pytest.mark.parametrize("status,verdict", [
    (200, "delivered"), (201, "delivered"), (204, "delivered"), (299, "delivered"),
    (410, "gone"),
    (None, "retry"), (408, "retry"), (409, "retry"), (425, "retry"), (429, "retry"), (500, "retry"), (503, "retry"),
    (400, "retry"), (401, "retry"), (404, "retry"), (301, "retry"), (302, "retry"), (100, "retry"),
])
def test_only_2xx_ends_a_delivery_and_410_disables_the_endpoint(status: int | None, verdict: str) -> None:
    assert classify(status) == verdict


@st.composite
def policies(draw: st.DrawFn) -> RetryPolicy:
    delays = draw(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=12))
    return RetryPolicy(tuple(delays), draw(st.floats(0, 1)))


@given(policies(), st.integers(0, 20), st.integers(0, 2**32), st.floats(0, 2e9))
def test_delays_stay_in_the_jitter_band_and_the_schedule_ends(policy: RetryPolicy, made: int, seed: int,
                                                               now: float) -> None:
    at = next_attempt(policy, made, now, None, random.Random(seed))
    if made >= len(policy.delays_s):
        assert at is None
    else:
        base = policy.delays_s[made]
        assert at is not None
        slack = 1e-6 * max(1.0, now)  # float rounding of now + delay
        assert base * (1 - policy.jitter) - slack <= at - now <= base * (1 + policy.jitter) + slack


@given(st.integers(0, 2**32))
def test_a_failing_endpoint_is_tried_len_delays_times(seed: int) -> None:
    rng, now, attempts = random.Random(seed), NOW, [NOW]
    while (later := next_attempt(POLICY, len(attempts), now, None, rng)) is not None:
        attempts.append(later)
        now = later
    assert len(attempts) == len(POLICY.delays_s)
    assert 0.8 * sum(POLICY.delays_s) <= attempts[-1] - attempts[0] <= 1.2 * sum(POLICY.delays_s)


def test_jitter_spreads_the_retries_of_alerts_that_failed_together() -> None:
    rng = random.Random(7)
    times = [next_attempt(POLICY, 3, NOW, None, rng) for _ in range(1000)]
    delays = sorted(t - NOW for t in times if t is not None)
    assert len(delays) == 1000 and delays[0] < 1800 * 0.85 and delays[-1] > 1800 * 1.15
    assert 1800 * 0.97 < sum(delays) / len(delays) < 1800 * 1.03


def test_retry_after_in_seconds_or_as_an_http_date_sets_a_longer_delay() -> None:
    assert next_attempt(POLICY, 1, NOW, "60", random.Random(1)) == NOW + 60
    assert next_attempt(POLICY, 1, NOW, http_date(NOW + 120), random.Random(1)) == pytest.approx(NOW + 120)


def test_retry_after_shorter_than_the_schedule_leaves_the_delay() -> None:
    assert next_attempt(POLICY, 4, NOW, "1", random.Random(1)) >= NOW + 7200 * 0.8
    assert next_attempt(POLICY, 4, NOW, http_date(NOW - 600), random.Random(1)) >= NOW + 7200 * 0.8


def test_retry_after_does_not_extend_a_spent_schedule() -> None:
    assert next_attempt(POLICY, len(POLICY.delays_s), NOW, "60", random.Random(1)) is None


@pytest.mark.parametrize("value,seconds", [
    ("120", 120.0), (" 30 ", 30.0), ("0", 0.0), ("999999", MAX_RETRY_AFTER_S),
    (http_date(NOW + 90), 90.0), (http_date(NOW - 90), 0.0), (http_date(NOW + 10 * 86400), MAX_RETRY_AFTER_S),
    (None, None), ("", None), ("soon", None), ("-5", None), ("1.5", None), ("\u00b2", None),
])
def test_retry_after_values(value: str | None, seconds: float | None) -> None:
    got = retry_after_s(value, NOW)
    assert got == (None if seconds is None else pytest.approx(seconds))


def test_an_http_date_without_a_zone_is_gmt_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert retry_after_s("Tue, 14 Nov 2023 22:13:50 -0000", NOW) == pytest.approx(30.0)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("delays,jitter", [((), 0.2), ((5.0, -1.0), 0.2), ((5.0,), 1.5), ((5.0,), -0.1)])
def test_a_policy_that_makes_no_sense_is_refused(delays: tuple[float, ...], jitter: float) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(delays, jitter)


def test_a_negative_number_of_attempts_is_an_error() -> None:
    with pytest.raises(ValueError):
        next_attempt(POLICY, -1, NOW, None, random.Random(1))
