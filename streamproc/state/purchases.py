"""Purchase days of one customer: the state behind buy-till-you-die (BTYD) summaries.

In:  a customer's purchases, one at a time (``add_purchase(state, ts, value)``, event-time
     order) or as a batch (``summarise(transactions, observation_end)``).
Out: ``PurchaseDays``, two days, two counts and two money sums, small enough to live in
     a customer profile, and from it an ``RfmSummary`` (frequency, recency, T, monetary)
     as of a given time.

The definitions are those of ``lifetimes.utils.summary_data_from_transaction_data`` with
``freq="D"``:

* purchases are grouped into UTC calendar days (naive datetimes are read as UTC), and a
  day's value is the sum of its purchases;
* frequency is the number of repeat purchase days (purchase days - 1), recency the number
  of days from the first to the last purchase day, T the number of days from the first
  purchase day to the day of the observation end;
* monetary is the mean value of the repeat purchase days (the first day left out), 0.0
  when frequency is 0;
* the observation end is floored to its day, so a purchase later on that same day still
  counts (``summarise`` drops only purchases on later days).

Money is rounded to cents after every addition, so sums do not drift.

A purchase on a day before ``last_day`` is folded in exactly when it falls on or before
the first purchase day, or on the last. A purchase strictly between the first and the last
purchase day adds its value exactly, but whether its day is a new purchase day is not
always known from these few numbers. It is new for sure when no day in between is counted
as a purchase day yet, and is not counted as new when every day in between already is.
Otherwise it is counted as a new day and ``unresolved_days`` goes up by one, so the true
frequency lies in ``[frequency - unresolved_days, frequency]`` (and monetary, the repeat
value over ``frequency``, may be low accordingly); recency, T and the value sums stay exact.

>>> from datetime import datetime, timezone
>>> day = lambda d, h=12: datetime(2026, 1, d, h, tzinfo=timezone.utc)
>>> summarise([(day(5), 10.0), (day(5, 18), 5.0), (day(7), 20.0), (day(9), 40.0)], day(12))
RfmSummary(frequency=2, recency=4.0, T=7.0, monetary=30.0)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone

from streamproc.frozen import replace


@dataclass(frozen=True, slots=True)
class PurchaseDays:
    """One customer's purchase days; the empty default is a customer who never bought.

    ``first_day_value`` is the total of the first purchase day, ``repeat_value`` the total
    of all later purchase days and ``repeat_days`` their number (the BTYD frequency).
    ``unresolved_days`` counts late purchases that may have been counted as a new day
    wrongly (see the module docstring); it stays 0 for purchases in event-time order.
    """

    first_day: date | None = None
    last_day: date | None = None
    repeat_days: int = 0
    first_day_value: float = 0.0
    repeat_value: float = 0.0
    unresolved_days: int = 0


@dataclass(frozen=True, slots=True)
class RfmSummary:
    """BTYD summary of one customer; recency and T in days, monetary per repeat day."""

    frequency: int
    recency: float
    T: float
    monetary: float


def utc_day(ts: datetime) -> date:
    """The UTC calendar day of ``ts``; a naive datetime is taken to be UTC already."""
    return (ts if ts.tzinfo is None else ts.astimezone(timezone.utc)).date()


def _cents(amount: float) -> float:
    return round(amount, 2)


def add_purchase(state: PurchaseDays, ts: datetime, value: float) -> PurchaseDays:
    """The state after a purchase of ``value`` at ``ts``.

    >>> from datetime import datetime
    >>> s = add_purchase(PurchaseDays(), datetime(2026, 1, 5, 9), 12.5)
    >>> s = add_purchase(s, datetime(2026, 1, 5, 20), 7.5)
    >>> add_purchase(s, datetime(2026, 1, 8, 9), 30.0)
    PurchaseDays(first_day=datetime.date(2026, 1, 5), last_day=datetime.date(2026, 1, 8), \
repeat_days=1, first_day_value=20.0, repeat_value=30.0, unresolved_days=0)
    """
    day = utc_day(ts)
    first, last = state.first_day, state.last_day
    if first is None or last is None:
        return replace(state, first_day=day, last_day=day, first_day_value=_cents(value))
    if day == first:
        return replace(state, first_day_value=_cents(state.first_day_value + value))
    if day > last:
        return _add_repeat(state, value, new_day=True, last_day=day)
    if day == last:
        return _add_repeat(state, value, new_day=False, last_day=last)
    if day < first:
        moved = _add_repeat(state, state.first_day_value, new_day=True, last_day=last)
        return replace(moved, first_day=day, first_day_value=_cents(value))
    return _add_between(state, value, first, last)


def _add_repeat(state: PurchaseDays, value: float, new_day: bool, last_day: date) -> PurchaseDays:
    """``value`` added to the repeat days, on a new repeat day or on a known one."""
    return replace(state, last_day=last_day, repeat_days=state.repeat_days + new_day,
                   repeat_value=_cents(state.repeat_value + value))


def _add_between(state: PurchaseDays, value: float, first: date, last: date) -> PurchaseDays:
    """A late purchase on a day strictly between the first and the last purchase day.

    At most ``repeat_days - 1`` of the days in between are purchase days (the last day is
    the other repeat day), and at least that many less ``unresolved_days``.
    """
    inner, gap = state.repeat_days - 1, (last - first).days - 1
    if inner == 0:
        return _add_repeat(state, value, new_day=True, last_day=last)
    if inner >= gap:
        return _add_repeat(state, value, new_day=False, last_day=last)
    unsure = replace(state, unresolved_days=state.unresolved_days + 1)
    return _add_repeat(unsure, value, new_day=True, last_day=last)


def summary(state: PurchaseDays, now: datetime) -> RfmSummary | None:
    """The BTYD summary as of ``now`` (floored to its UTC day); ``None`` without a purchase.

    Raises ``ValueError`` when ``now`` falls on a day before the last purchase day: the
    state cannot forget the later purchases.

    >>> from datetime import datetime
    >>> summary(PurchaseDays(), datetime(2026, 1, 9)) is None
    True
    >>> one = add_purchase(PurchaseDays(), datetime(2026, 1, 5, 23, 59), 10.0)
    >>> summary(one, datetime(2026, 1, 9, 0, 1))
    RfmSummary(frequency=0, recency=0.0, T=4.0, monetary=0.0)
    """
    first, last = state.first_day, state.last_day
    if first is None or last is None:
        return None
    end = utc_day(now)
    if end < last:
        raise ValueError(f"summary as of {end} asked for, but the state already holds purchases up to {last}")
    n = state.repeat_days
    return RfmSummary(frequency=n, recency=float((last - first).days), T=float((end - first).days),
                      monetary=state.repeat_value / n if n else 0.0)


def summarise(transactions: Iterable[tuple[datetime, float]], observation_end: datetime) -> RfmSummary | None:
    """Batch summary of ``(ts, value)`` purchases in any order, as ``lifetimes`` computes it.

    Purchases on days after ``observation_end``'s day are left out; ``None`` if none remain.
    """
    end = utc_day(observation_end)
    kept = sorted((t for t in transactions if utc_day(t[0]) <= end), key=lambda t: t[0])
    state = PurchaseDays()
    for ts, value in kept:
        state = add_purchase(state, ts, value)
    return summary(state, observation_end)
