"""Purchase days of one customer (``state.purchases``): edge cases of the streaming fold."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from streamproc.state.purchases import PurchaseDays, RfmSummary, add_purchase, summarise, summary


def utc(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=timezone.utc)


def fold(purchases: list[tuple[datetime, float]]) -> PurchaseDays:
    state = PurchaseDays()
    for ts, value in purchases:
        state = add_purchase(state, ts, value)
    return state


def test_no_purchase() -> None:
    assert summary(PurchaseDays(), utc(9)) is None
    assert summarise([], utc(9)) is None
    assert summarise([(utc(10), 5.0)], utc(9)) is None


def test_single_purchase() -> None:
    assert summarise([(utc(5, 23, 59), 10.0)], utc(9, 0, 1)) == RfmSummary(0, 0.0, 4.0, 0.0)
    assert summarise([(utc(5), 10.0)], utc(5, 1)) == RfmSummary(0, 0.0, 0.0, 0.0)


def test_same_day_purchases_are_one_period() -> None:
    state = fold([(utc(5, 0), 10.1), (utc(5, 23, 59), 0.2), (utc(8, 1), 3.3), (utc(8, 22), 4.4)])
    assert (state.first_day_value, state.repeat_days, state.repeat_value) == (10.3, 1, 7.7)
    assert summary(state, utc(10)) == RfmSummary(1, 3.0, 5.0, 7.7)


def test_days_are_utc_days() -> None:
    berlin = timezone(timedelta(hours=1))
    state = fold([(datetime(2026, 1, 6, 0, 30, tzinfo=berlin), 1.0), (utc(5, 9), 2.0)])  # both on 5 Jan UTC
    assert (state.first_day, state.repeat_days, state.first_day_value) == (utc(5).date(), 0, 3.0)
    assert fold([(datetime(2026, 1, 5, 23, 30), 1.0)]).first_day == utc(5).date()  # naive is UTC


def test_money_stays_in_cents() -> None:
    state = fold([(utc(5), 0.1)] + [(utc(6, h), 0.1) for h in range(10)])
    assert (state.first_day_value, state.repeat_value) == (0.1, 1.0)


def test_summary_before_last_purchase_day_is_refused() -> None:
    state = fold([(utc(5), 1.0), (utc(8), 2.0)])
    assert summary(state, utc(8, 0, 0)) == RfmSummary(1, 3.0, 3.0, 2.0)
    with pytest.raises(ValueError, match="purchases up to 2026-01-08"):
        summary(state, utc(7, 23, 59))


@pytest.mark.parametrize("late", [utc(2), utc(5, 23), utc(9, 1), utc(6)], ids=["before-first", "first-day",
                                                                              "last-day", "between-empty"])
def test_earlier_day_purchase_is_exact(late: datetime) -> None:
    ordered = [(utc(5), 10.0), (utc(9), 20.0)]
    state = add_purchase(fold(ordered), late, 7.0)
    assert state.unresolved_days == 0
    assert summary(state, utc(12)) == summarise(ordered + [(late, 7.0)], utc(12))


def test_earlier_day_inside_full_span_is_exact() -> None:
    ordered = [(utc(5), 1.0), (utc(6), 2.0), (utc(7), 3.0)]
    state = add_purchase(fold(ordered), utc(6, 20), 4.0)
    assert (state.repeat_days, state.repeat_value, state.unresolved_days) == (2, 9.0, 0)


def test_ambiguous_earlier_day_is_counted_new_and_flagged() -> None:
    state = fold([(utc(5), 1.0), (utc(7), 2.0), (utc(9), 3.0)])
    for late, truth in [(utc(7, 20), 2), (utc(8), 3)]:  # an existing day, then a new one
        after = add_purchase(state, late, 4.0)
        assert (after.repeat_days, after.unresolved_days, after.repeat_value) == (3, 1, 9.0)
        assert summary(after, utc(12)).frequency - after.unresolved_days <= truth <= summary(after, utc(12)).frequency


def test_any_arrival_order_brackets_the_truth() -> None:
    rng = random.Random(7)
    for _ in range(300):
        purchases = [(utc(1) + timedelta(hours=rng.randrange(24 * 20)), round(rng.uniform(1, 99), 2))
                     for _ in range(rng.randint(1, 12))]
        truth = summarise(purchases, utc(25))
        rng.shuffle(purchases)
        state = fold(purchases)
        got = summary(state, utc(25))
        assert truth is not None and got is not None
        assert (got.recency, got.T) == (truth.recency, truth.T)
        assert state.repeat_value == pytest.approx(truth.monetary * truth.frequency, abs=1e-6)
        assert got.frequency - state.unresolved_days <= truth.frequency <= got.frequency
