"""Lifecycle thresholds and the churn-label horizon from a history's own cadence.

In:  a history's events (any order). Out: ``TimeScales``: how long customers of this
business usually stay away before they come back, and the settings that follow from it.

The fixed defaults (at-risk after 21 days, churned after 45, churn labels over 30) suit
customers who visit weekly. A business whose customers buy monthly or yearly needs longer
ones: on a generated world of monthly buyers, 28 % of the customers the defaults called
"churned" at a cut were active in the 90 days after it (``scripts/timescales-table``). The time scales here are read from the gaps between a customer's
consecutive active days (UTC days with any event), in days:

* every customer with at least two active days contributes their gaps with a total weight
  of 1, so a customer with 300 visits does not outweigh 299 customers with two;
* ``p90``, ``p95`` and ``p99`` are the weighted quantiles of those gaps: the silence within
  which 90, 95 and 99 % of the returns of a typical returning customer happened;
* at-risk after ``p90`` (one return in ten comes later), churned after ``p99`` (one in a
  hundred), and a churn label over ``p95`` days (a customer quiet that long after a snapshot
  is counted churned), each rounded up to a whole day and at least 1, with churned after at
  least a day past at-risk.

Why these quantiles: a customer silent for longer than ``p`` of the returns is not as likely
as ``1 - p`` to come back, because most customers silent that long are not in a gap but
gone; the share of "churned" customers who come back is what a threshold should keep small.
With the 80th and 95th percentiles, 19 % of the customers "churned" at the cut of a
generated weekly world were active in the 30 days after it; with the 90th and 99th, 5 %
(``scripts/timescales-table``).

Gaps still open at the end of the history are not seen (a customer who left never closes
one), so the quantiles describe the returns that happen, which is what a threshold between
"away for a while" and "gone" should separate. The customer's own cadence counts on top:
the lifecycle's overdue rule makes a regular at-risk sooner, after ``overdue_factor`` times
their own usual gap, and BG/NBD's P(alive) is a per-customer model of the same question.

The worker keeps fixed thresholds in its settings: a threshold that moved with every
population fit would move timers already scheduled and the meaning of labels already
pending, and two workers could disagree about a customer's stage. ``streamproc timescales``
prints the settings to use (``env_lines``); derive them from a history of the business (the
file a backfill replays, or an export of its input topics) and set them.

>>> from datetime import datetime, timezone
>>> day = lambda d: datetime(2026, 1, d, 12, tzinfo=timezone.utc)
>>> seen = [("a", day(d)) for d in (1, 8, 15, 22)] + [("b", day(1)), ("b", day(31)), ("c", day(3))]
>>> t = derive(seen)
>>> (t.customers, t.returning, t.gaps), (t.p80, t.p95), (t.at_risk_days, t.churn_days, t.label_days)
((3, 2, 4), (30.0, 30.0), (30, 31, 30))
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class TimeScales:
    """The gap quantiles of a history (days) and the settings derived from them."""

    customers: int
    returning: int
    gaps: int
    p50: float
    p80: float
    p90: float
    p95: float
    p99: float
    at_risk_days: int
    churn_days: int
    label_days: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def env_lines(self) -> list[str]:
        """The settings, as lines to export."""
        return [f"STREAMPROC_AT_RISK_DAYS={self.at_risk_days}", f"STREAMPROC_CHURN_DAYS={self.churn_days}",
                f"STREAMPROC_CHURN_LABEL_DAYS={self.label_days}"]


def derive(seen: Iterable[tuple[str, datetime]]) -> TimeScales:
    """The time scales of the ``(customer_id, event time)`` pairs of a history (see the module docstring).
    A history where no customer came back on another day has no gaps: ``ValueError``."""
    days: dict[str, set[int]] = {}
    for customer, ts in seen:
        days.setdefault(customer, set()).add(math.floor(ts.timestamp() / 86400))
    weighted: list[tuple[int, float]] = []
    returning = 0
    for active in days.values():
        if len(active) < 2:
            continue
        ordered = sorted(active)
        gaps = [b - a for a, b in zip(ordered, ordered[1:])]
        returning += 1
        weighted += [(g, 1.0 / len(gaps)) for g in gaps]
    if not weighted:
        raise ValueError("no customer was active on two different days: the history says nothing about its cadence")
    q = {p: _quantile(weighted, p / 100) for p in (50, 80, 90, 95, 99)}
    at_risk = max(1, math.ceil(q[90]))
    return TimeScales(
        customers=len(days), returning=returning, gaps=len(weighted), p50=q[50], p80=q[80], p90=q[90], p95=q[95], p99=q[99],
        at_risk_days=at_risk, churn_days=max(at_risk + 1, math.ceil(q[99])), label_days=max(1, math.ceil(q[95])),
    )


def _quantile(weighted: list[tuple[int, float]], q: float) -> float:
    """The smallest value whose cumulative weight reaches ``q`` of the total.

    >>> _quantile([(1, 1.0), (2, 1.0), (10, 2.0)], 0.5), _quantile([(1, 1.0), (2, 1.0), (10, 2.0)], 0.51)
    (2.0, 10.0)
    """
    total = sum(w for _, w in weighted)
    acc = 0.0
    for value, w in sorted(weighted):
        acc += w
        if acc >= q * total - 1e-12:
            return float(value)
    return float(max(v for v, _ in weighted))
