"""Churn labels that mature in event time: a scored customer is later found retained or churned.

In:  ``Snapshot`` values, taken when a customer is rescored at event time ``at`` (the
     feature vector, the model's score and the baselines' scores as served then), and
     afterwards the customer's activity times and the watermark, with the churn ``horizon``.
Out: ``Matured`` values, each a snapshot with its label and the event time it matured,
     and the snapshots still pending. Every function is pure, shaped
     ``(pending, input) -> (pending, matured)`` over one customer's pending snapshots
     (oldest first), which the caller stores with the customer's state.

A snapshot taken at ``t`` is

* **retained** (label 0), matured at the customer's next activity ``a`` with
  ``t < a < t + horizon``;
* **churned** (label 1), matured at ``t + horizon`` when no activity came in between.

The window is half-open: activity at exactly ``t + horizon`` comes too late. That way the
watermark timer (``expire``) and an activity at the same instant (``on_activity``) agree
whichever the caller runs first. Activity at exactly ``t`` is the activity that caused
the rescoring, so it leaves the snapshot pending.

A snapshot matures once: ``on_activity`` and ``expire`` return it as ``Matured`` and it is
no longer in the ``pending`` they return, so a learner that learns every ``Matured`` and
keeps the returned ``pending`` learns each snapshot exactly once. ``add`` refuses a
snapshot of an instant already pending. A snapshot that has matured is gone from
``pending``, so only the caller can keep it from being taken again: a redelivered event
must not rescore, which the event dedupe (by ``event_id``) upstream ensures.

Adding policy: ``add`` refuses a snapshot within ``min_gap`` (a day) of a pending one, and
any while ``limit`` are pending. It never drops a pending snapshot: a dropped one
would never be learned, and which were dropped would depend on the label (only quiet
customers, the future churners, pile up). Customers are rescored after purchases and
feedback, and after 7 days of event time without either; every activity matures the
snapshots before it, so ``pending`` only holds snapshots taken since the last activity:
the rescorings of a quiet customer, 7 days apart. With a 30-day horizon at most 5 are
pending at once, and the default ``limit`` of 16 guards against a misconfigured horizon.
Both rules depend only on the past, never on the label to come. A burst of purchases
gives one snapshot per purchase, each retained at the next: every served score is scored
and learned, at the cost of easy near-duplicate examples. Taking at most one snapshot per
day would need the time of the last one taken, matured or not, which ``pending`` does
not hold.

>>> from datetime import datetime, timedelta, timezone
>>> day, t0 = timedelta(days=1), datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> pending = add((), Snapshot.take("c1", t0, {"days_since_last": 0.0}, 0.2, {}))
>>> pending = add(pending, Snapshot.take("c1", t0 + 7 * day, {"days_since_last": 7.0}, 0.4, {}))
>>> pending, matured = on_activity(pending, t0 + 9 * day, horizon=8 * day)
>>> [(m.label, m.at.day) for m in matured], pending
([(1, 9), (0, 10)], ())
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from hashlib import blake2b
from typing import Any

Pending = tuple["Snapshot", ...]
"""One customer's snapshots waiting for a label, oldest first."""

LIMIT = 16
MIN_GAP = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One scoring of one customer at event time ``at``, waiting for its label.

    ``features`` are the model's inputs from ``streamproc.features.vector.vector(profile, at)``;
    ``score`` is the churn probability the model served (``None`` when no model was loaded
    yet); ``baselines`` are the scores of simpler rules served alongside, to be evaluated
    on the same label.
    """

    id: str
    at: datetime
    features: dict[str, float]
    score: float | None
    baselines: dict[str, float]

    @classmethod
    def take(cls, customer: str, at: datetime, features: Mapping[str, float], score: float | None,
             baselines: Mapping[str, float]) -> Snapshot:
        """A snapshot whose ``id`` is ``snapshot_id(customer, at)``."""
        return cls(snapshot_id(customer, at), at, dict(features), score, dict(baselines))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields, ``at`` in ISO-8601.

        >>> from datetime import datetime, timezone
        >>> s = Snapshot.take("c1", datetime(2026, 1, 1, tzinfo=timezone.utc), {"orders": 2.0}, None, {"recency": 0.1})
        >>> Snapshot.from_dict(s.to_dict()) == s
        True
        """
        return {"id": self.id, "at": self.at.isoformat(), "features": self.features, "score": self.score,
                "baselines": self.baselines}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        """The snapshot ``to_dict`` gave."""
        score = data["score"]
        return cls(str(data["id"]), datetime.fromisoformat(data["at"]), dict(data["features"]),
                   None if score is None else float(score), dict(data["baselines"]))


@dataclass(frozen=True, slots=True)
class Matured:
    """A snapshot with its label (1 churned, 0 retained) and the event time it matured."""

    snapshot: Snapshot
    label: int
    at: datetime


def snapshot_id(customer: str, at: datetime) -> str:
    """A deterministic id of the scoring of ``customer`` at ``at``: 32 hex digits of blake2b.

    The same instant written in another time zone gives the same id.

    >>> from datetime import datetime, timedelta, timezone
    >>> t = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    >>> snapshot_id("c1", t) == snapshot_id("c1", t.astimezone(timezone(timedelta(hours=2))))
    True
    >>> snapshot_id("c1", t) == snapshot_id("c2", t)
    False
    """
    key = f"{customer}\x1f{at.astimezone(timezone.utc).isoformat()}"
    return blake2b(key.encode(), digest_size=16).hexdigest()


def add(pending: Pending, snapshot: Snapshot, limit: int = LIMIT, min_gap: timedelta = MIN_GAP) -> Pending:
    """``pending`` with ``snapshot`` in time order, unless the policy refuses it (then ``pending`` itself).

    Refused: a snapshot within ``min_gap`` (inclusive, so also one of the same instant) of a
    pending one, and any while ``limit`` are pending. See the module docstring.
    """
    if min_gap < timedelta(0):
        raise ValueError(f"min_gap must not be negative, got {min_gap}")
    if len(pending) >= limit or any(abs(snapshot.at - s.at) <= min_gap for s in pending):
        return pending
    return tuple(sorted((*pending, snapshot), key=_at))


def expire(pending: Pending, now: datetime, horizon: timedelta) -> tuple[Pending, list[Matured]]:
    """Mature as churned every snapshot whose horizon has passed by ``now`` (a watermark).

    A snapshot taken at ``t`` expires when ``t + horizon <= now`` and matures at
    ``t + horizon``, not at ``now``.
    """
    due = [s for s in pending if s.at + horizon <= now]
    return _without(pending, due), [Matured(s, 1, s.at + horizon) for s in due]


def on_activity(pending: Pending, ts: datetime, horizon: timedelta) -> tuple[Pending, list[Matured]]:
    """The customer was active at ``ts``: expire what is due, then mature the rest taken before ``ts`` as retained.

    Snapshots taken at ``ts`` or later stay pending.
    """
    pending, matured = expire(pending, ts, horizon)
    before = [s for s in pending if s.at < ts]
    return _without(pending, before), matured + [Matured(s, 0, ts) for s in before]


def next_due(pending: Pending, horizon: timedelta) -> datetime | None:
    """The event time at which the oldest pending snapshot expires (``None`` when none is pending)."""
    return min(s.at for s in pending) + horizon if pending else None


def _at(snapshot: Snapshot) -> datetime:
    return snapshot.at


def _without(pending: Pending, gone: list[Snapshot]) -> Pending:
    if not gone:
        return pending
    ids = {s.id for s in gone}
    return tuple(s for s in pending if s.id not in ids)
