"""The profile-read limit: a token bucket of one second's worth."""

from __future__ import annotations

from streamproc.runtime.web import Bucket


def test_a_burst_of_one_second_then_the_rate() -> None:
    b = Bucket(10)
    assert sum(b.take(100.0) for _ in range(15)) == 10
    assert [b.take(100.05), b.take(100.25), b.take(100.25), b.take(100.25)] == [False, True, True, False]
    assert sum(b.take(102.0) for _ in range(20)) == 10  # refilled, never above one second's worth


def test_zero_means_no_limit() -> None:
    assert all(Bucket(0).take(1.0) for _ in range(1000))
