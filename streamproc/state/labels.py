"""Churn labels that mature in event time: a scored customer is later found retained or churned.

In:  ``Snapshot`` values, taken when a customer is rescored at event time ``at`` (the
     feature vector, the model's score and the baselines' scores as served then), and
     afterwards the customer's activity times and the watermark, with the churn ``horizon``.
Out: ``Matured`` values, each a snapshot with its label and the event time it matured,
     and the snapshots still pending. Every function is pure, shaped
     ``(pending, input) -> (pending, matured)`` over one customer's pending snapshots
     (oldest first), which the caller stores with the customer's state.

A snapshot taken at ``t`` is

* **retained** (label 0) when the customer is active again at some ``a`` with
  ``t < a < t + horizon``: the label is known at ``a`` (``retained_at``);
* **churned** (label 1) when no activity came by ``t + horizon``.

Either way the snapshot is released to the learner (``Matured``) at ``t + horizon``, never
earlier. Releasing "retained" labels as soon as they are known would feed the learner a
stream in which recent quiet customers who came back far outnumber recent quiet customers
who did not (their label is a horizon late), and an online model would learn that
inactivity means loyalty; with every label released one horizon after its snapshot, the
learner sees snapshots in the order they were taken, each with its true label (the
delayed-feedback bias, e.g. Chapelle, KDD 2014).

The window is half-open: activity at exactly ``t + horizon`` comes too late. That way the
watermark timer (``expire``) and an activity at the same instant (``on_activity``) agree
whichever the caller runs first. Activity at exactly ``t`` is the activity that caused
the rescoring, and does not count as coming back.

A snapshot matures once: ``expire`` (also run first by ``on_activity``) returns it as
``Matured`` and it is no longer in the ``pending`` it returns, so a learner that learns
every ``Matured`` and keeps the returned ``pending`` learns each snapshot exactly once.
``add`` refuses a snapshot of an instant already pending.

Adding policy: ``add`` refuses a snapshot within ``min_gap`` of the newest pending one, and
any while ``limit`` are pending; the caller also takes at most one snapshot per
``snapshot_every_days``. It never drops a pending snapshot: a dropped one would never be
learned. Both rules depend only on the past, never on the label to come.

>>> from datetime import datetime, timedelta, timezone
>>> day, t0 = timedelta(days=1), datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> pending = add((), Snapshot.take("c1", t0, {"days_since_last": 0.0}, 0.2, {}))
>>> pending = add(pending, Snapshot.take("c1", t0 + 7 * day, {"days_since_last": 7.0}, 0.4, {}))
>>> pending, matured = on_activity(pending, t0 + 9 * day, horizon=8 * day)
>>> [(m.label, m.at.day) for m in matured], [s.retained_at.day for s in pending]
([(1, 9)], [10])
>>> expire(pending, t0 + 16 * day, horizon=8 * day)[1][0].label
0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
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
    ``score`` is the churn model's own probability (``None`` when no model was loaded yet),
    whichever candidate was served; ``baselines`` are the scores of the simpler rules, to be
    evaluated on the same label; ``served`` names the candidate whose score was served
    (``models.serving``: ``"model"`` or a baseline's name; ``None`` before the first model).
    """

    id: str
    at: datetime
    features: dict[str, float]
    score: float | None
    baselines: dict[str, float]
    retained_at: datetime | None = None
    served: str | None = None

    @classmethod
    def take(cls, customer: str, at: datetime, features: Mapping[str, float], score: float | None,
             baselines: Mapping[str, float], served: str | None = None) -> Snapshot:
        """A snapshot whose ``id`` is ``snapshot_id(customer, at)``."""
        return cls(snapshot_id(customer, at), at, dict(features), score, dict(baselines), served=served)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields, ``at`` in ISO-8601.

        >>> from datetime import datetime, timezone
        >>> s = Snapshot.take("c1", datetime(2026, 1, 1, tzinfo=timezone.utc), {"orders": 2.0}, None, {"recency": 0.1})
        >>> Snapshot.from_dict(s.to_dict()) == s
        True
        """
        return {"id": self.id, "at": self.at.isoformat(), "features": self.features, "score": self.score,
                "baselines": self.baselines,
                "retained_at": self.retained_at.isoformat() if self.retained_at else None, "served": self.served}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        """The snapshot ``to_dict`` gave."""
        score = data["score"]
        back = data.get("retained_at")
        return cls(str(data["id"]), datetime.fromisoformat(data["at"]), dict(data["features"]),
                   None if score is None else float(score), dict(data["baselines"]),
                   datetime.fromisoformat(back) if back else None, data.get("served"))


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
    """Release every snapshot whose horizon has passed by ``now`` (a watermark): retained if
    the customer came back in time (``retained_at``), churned otherwise.

    A snapshot taken at ``t`` is released when ``t + horizon <= now``, timed at ``t + horizon``.
    """
    due = [s for s in pending if s.at + horizon <= now]
    return _without(pending, due), [Matured(s, 0 if s.retained_at else 1, s.at + horizon) for s in due]


def on_activity(pending: Pending, ts: datetime, horizon: timedelta) -> tuple[Pending, list[Matured]]:
    """The customer was active at ``ts``: release what is due, then mark every snapshot taken
    before ``ts`` and not yet marked as retained (released at its horizon).

    Snapshots taken at ``ts`` or later are left as they are.
    """
    pending, matured = expire(pending, ts, horizon)
    if not any(s.at < ts and s.retained_at is None for s in pending):
        return pending, matured
    return tuple(replace(s, retained_at=ts) if s.at < ts and s.retained_at is None else s
                 for s in pending), matured


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
