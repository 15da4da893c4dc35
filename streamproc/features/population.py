"""A customer's part in a population fit, as of the fit's time, and the times fits are made.

In: a profile, a fit time ``at`` and the session rules; for the schedule, the fit period
and the last fit time. Out: ``FitRow``, what a population fit (``runtime.refit``) reads of
one customer as of ``at`` (the BTYD summary, the behaviour-cluster input, and the values
RFM scores and value tiers are ranked by), and ``FitGrid``, the event times fits are made at.

Fits are made at fixed event times, multiples of the fit period since the Unix epoch, so
every worker and every replay agrees on them. A fit at ``T`` must see each customer as of
``T`` however far each partition has been applied since (partitions are drained at their
own speeds, and nothing waits for a fit). What a row reads of a customer changes only with
the customer's events, and with the session timers (a session closes, a cart is abandoned).
So when an event at ``t``, or a session timer fired by the watermark ``t``, changes a
profile whose newest event is at ``s``, the rows of every fit time ``T`` with ``s <= T < t``
not fitted yet are taken from the profile *before* the change (``FitGrid.crossed``,
``pipeline.fit_rows``); the store writes them with the change, in the same transaction,
and never overwrites a row, so the first change after ``T`` leaves the row kept. A fit at
``T`` reads a customer's row of ``T`` if the customer changed after ``T``, and the row of
the stored profile otherwise: either way the customer as of ``T``.

A row is the profile aged to ``T``: the session open at ``T`` is closed if its gap had
passed by then, as the watermark would have closed it (``sessions.advance``).

>>> from datetime import datetime, timedelta, timezone
>>> grid = FitGrid(every=timedelta(days=7), fitted=None)
>>> t = datetime(2026, 1, 8, tzinfo=timezone.utc)   # a Thursday: 7-day multiples since 1970 fall on Thursdays
>>> [d.day for d in grid.crossed(t - timedelta(days=1), t + timedelta(days=8))]
[8, 15]
>>> [d.day for d in FitGrid(timedelta(days=7), fitted=t).crossed(t - timedelta(days=1), t + timedelta(days=8))]
[15]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from streamproc.features.vector import cluster_input, vector
from streamproc.frozen import replace
from streamproc.state import purchases, sessions
from streamproc.state.profile import Profile
from streamproc.state.purchases import RfmSummary

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
CROSSED_LIMIT = 64
"""At most this many fit times get rows from one change (the newest ones): a customer back
after years of silence, before any fit was made, would otherwise write a row per period."""


@dataclass(frozen=True, slots=True)
class FitRow:
    """One customer as of a fit time: when first seen, the BTYD summary (None before a
    purchase), the cluster model's input, and the last purchase time, orders and spend."""

    customer_id: str
    first_seen: datetime
    summary: RfmSummary | None
    cluster: dict[str, float]
    last_purchase: datetime | None
    orders: int
    spend: float


@dataclass(frozen=True, slots=True)
class FitGrid:
    """The fit times: multiples of ``every`` since the epoch, after ``fitted`` (the last fit made, if any)."""

    every: timedelta
    fitted: datetime | None

    def after(self, t: datetime) -> datetime:
        """The first fit time strictly after ``t``."""
        n = (t - EPOCH) // self.every
        return EPOCH + (n + 1) * self.every

    def at_or_after(self, t: datetime) -> datetime:
        n = -((EPOCH - t) // self.every)  # ceil
        return EPOCH + n * self.every

    def crossed(self, since: datetime, t: datetime) -> list[datetime]:
        """Fit times ``T`` with ``since <= T < t``, after the last fit: a change at ``t`` to a
        profile whose newest event is at ``since`` leaves a row for each (the newest ``CROSSED_LIMIT``)."""
        start = self.at_or_after(since)
        if self.fitted is not None and start <= self.fitted:
            start = self.after(self.fitted)
        if start >= t:
            return []
        n = -((start - t) // self.every)  # fit times in [start, t)
        first = max(n - CROSSED_LIMIT, 0)
        return [start + k * self.every for k in range(first, n)]


def as_of(p: Profile, at: datetime, rules: sessions.SessionRules) -> Profile:
    """``p`` with the session timers due by ``at`` fired (the other timers do not change a row)."""
    visits, _ = sessions.advance(p.visits, at, rules)
    return p if visits is p.visits else replace(p, visits=visits)


def row(p: Profile, at: datetime, rules: sessions.SessionRules) -> FitRow | None:
    """What a fit at ``at`` reads of ``p``, taken as the customer's state then (None if first seen after ``at``)."""
    if p.first_seen > at:
        return None
    aged = as_of(p, at, rules)
    bought = p.last_purchase is not None and p.last_purchase <= at
    return FitRow(
        customer_id=p.customer_id, first_seen=p.first_seen,
        summary=purchases.summary(p.days, max(at, p.last_purchase)) if bought and p.last_purchase else None,
        cluster=cluster_input(vector(aged, max(at, p.last_seen))), last_purchase=p.last_purchase if bought else None,
        orders=p.purchases, spend=p.spend,
    )
