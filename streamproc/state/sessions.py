"""Clickstream sessions split by inactivity, and abandoned carts, in event time.

In: one customer's ``Sessions`` state and either one of their ``Click`` / ``Purchase`` events
(in event-time order) or an event-time watermark ``now``.
Out: the new ``Sessions`` and what the step produced: ``SessionClosed`` when a session ends,
``CartAbandoned`` when a closed session's cart was not bought in time. Pure: no I/O, no
clock; the events' own times and the watermark are the only times, so a replay gives the
same outputs with the same times as live traffic.

Boundaries are half-open, so a timer due at ``t`` and an event at ``t`` always agree:

- A click at ``last + gap`` or later starts a new session; a click before it joins the open
  session. The producer's ``session_id`` is not used. The open session closes at event time
  ``last + gap``: ``advance(now)`` closes it once ``now >= last + gap``.
- A session that closes with units in its cart leaves a ``PendingCart`` due at
  ``last + abandon_after``. A purchase at or after the cart's first add and strictly before
  the deadline converts it (no output, the cart is gone); a purchase at the deadline or
  later is too late: the cart is abandoned at the deadline and stays abandoned.
- A purchase while the session is open empties its cart (if the cart's first add is not
  after the purchase).

Out-of-order input: a click older than the open session's last click is counted into the
open session (clicks, pages, searches, cart, checkout) but moves neither ``start`` nor
``last``, so the close time already given by ``next_due`` stays right. With no open session
such a click starts a new session of its own; a closed session is never reopened, so every
session is counted exactly once.

Amounts are in base currency and rounded to cents. ``on_click`` and ``on_purchase`` first
``advance`` to the event's time, so closes and deadlines before the event come out first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter

from streamproc.errors import ConfigError
from streamproc.frozen import replace
from streamproc.records import Click, Purchase


@dataclass(frozen=True, slots=True)
class SessionRules:
    """Inactivity ``gap`` that ends a session; ``abandon_after`` a session's last click."""

    gap: timedelta
    abandon_after: timedelta

    def __post_init__(self) -> None:
        if self.gap <= timedelta(0):
            raise ConfigError(f"session gap must be positive, got {self.gap}")
        if self.abandon_after < timedelta(0):
            raise ConfigError(f"cart abandonment window must not be negative, got {self.abandon_after}")


@dataclass(frozen=True, slots=True)
class OpenSession:
    """The session in progress; ``first_cart_at`` is the first add of the current cart content."""

    start: datetime
    last: datetime
    clicks: int = 0
    pages: int = 0
    searches: int = 0
    cart_adds: int = 0
    cart_units: int = 0
    cart_value: float = 0.0
    checkout: bool = False
    first_cart_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PendingCart:
    """A closed session's cart that a purchase before ``due`` still converts."""

    session_start: datetime
    session_end: datetime
    due: datetime
    units: int
    value: float
    first_cart_at: datetime


@dataclass(frozen=True, slots=True)
class SessionTotals:
    """Counts over closed sessions only; the open session joins them when it closes."""

    sessions: int = 0
    duration_s: float = 0.0
    pages: int = 0
    cart_sessions: int = 0
    checkout_sessions: int = 0
    abandoned: int = 0
    abandoned_value: float = 0.0
    last_abandoned_at: datetime | None = None
    last_abandoned_value: float | None = None

    @property
    def mean_pages(self) -> float | None:
        """Page views per closed session."""
        return self._per_session(self.pages)

    @property
    def mean_duration_s(self) -> float | None:
        """Seconds from first to last click, per closed session."""
        return self._per_session(self.duration_s)

    @property
    def cart_share(self) -> float | None:
        """Share of closed sessions with at least one ``add_to_cart``."""
        return self._per_session(self.cart_sessions)

    @property
    def checkout_share(self) -> float | None:
        """Share of closed sessions that reached ``checkout``."""
        return self._per_session(self.checkout_sessions)

    def _per_session(self, amount: float) -> float | None:
        return amount / self.sessions if self.sessions else None


@dataclass(frozen=True, slots=True)
class Sessions:
    """One customer's session state; ``pending`` is ordered by ``due``.

    ``pending`` holds at most one cart while ``abandon_after <= 2 * gap`` (as with the
    defaults): a later session cannot close before an earlier cart's deadline has passed.
    """

    open: OpenSession | None = None
    pending: tuple[PendingCart, ...] = ()
    totals: SessionTotals = SessionTotals()


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """A finished session: first and last click, its counts and the cart it ended with."""

    start: datetime
    end: datetime
    pages: int
    clicks: int
    duration_s: float
    cart_units: int
    cart_value: float
    checkout: bool


@dataclass(frozen=True, slots=True)
class CartAbandoned:
    """A cart left unbought; ``at`` is the deadline, ``session_end + abandon_after``."""

    at: datetime
    session_start: datetime
    session_end: datetime
    units: int
    value: float


SessionOutput = SessionClosed | CartAbandoned


def next_due(s: Sessions, rules: SessionRules) -> datetime | None:
    """Event time at which ``advance`` would next change ``s``, or ``None`` if never."""
    times = [p.due for p in s.pending[:1]] + ([s.open.last + rules.gap] if s.open else [])
    return min(times, default=None)


def advance(s: Sessions, now: datetime, rules: SessionRules) -> tuple[Sessions, list[SessionOutput]]:
    """Close the session and fire the cart deadlines that event time ``now`` has reached.

    >>> from datetime import timezone
    >>> t0, rules = datetime(2026, 1, 1, 9, tzinfo=timezone.utc), SessionRules(timedelta(minutes=30), timedelta(hours=1))
    >>> s, _ = on_click(Sessions(), Click("e1", "c", t0, "s", "/p/1", "add_to_cart", "A", 2, 9.5), rules)
    >>> next_due(s, rules) == t0 + rules.gap
    True
    >>> s, out = advance(s, t0 + timedelta(hours=2), rules)
    >>> [type(o).__name__ for o in out], out[1].value, out[1].at == t0 + rules.abandon_after
    (['SessionClosed', 'CartAbandoned'], 19.0, True)
    """
    out: list[SessionOutput] = []
    while (due := next_due(s, rules)) is not None and due <= now:
        s, emitted = _fire(s, rules)
        out.append(emitted)
    return s, out


def on_click(s: Sessions, click: Click, rules: SessionRules) -> tuple[Sessions, list[SessionOutput]]:
    """Count ``click`` into the open session, or into a new one if none is open at its time."""
    s, out = advance(s, click.ts, rules)
    session = s.open or OpenSession(start=click.ts, last=click.ts)
    return replace(s, open=_count_click(session, click)), out


def on_purchase(s: Sessions, purchase: Purchase, rules: SessionRules) -> tuple[Sessions, list[SessionOutput]]:
    """Convert every cart the purchase is in time for: pending ones and the open session's."""
    s, out = advance(s, purchase.ts, rules)
    t = purchase.ts
    pending = tuple(p for p in s.pending if not p.first_cart_at <= t < p.due)
    session = s.open
    if session is not None and session.first_cart_at is not None and session.first_cart_at <= t:
        session = _emptied(session)
    return replace(s, open=session, pending=pending), out


def _fire(s: Sessions, rules: SessionRules) -> tuple[Sessions, SessionOutput]:
    """The one change due first; at equal times a pending deadline goes before a close."""
    if s.pending and (s.open is None or s.pending[0].due <= s.open.last + rules.gap):
        return _abandon(s)
    return _close(s, rules)


def _close(s: Sessions, rules: SessionRules) -> tuple[Sessions, SessionClosed]:
    o = s.open
    assert o is not None
    duration = (o.last - o.start).total_seconds()
    closed = SessionClosed(o.start, o.last, o.pages, o.clicks, duration, o.cart_units, o.cart_value, o.checkout)
    pending = s.pending
    if o.cart_units and o.first_cart_at is not None:
        cart = PendingCart(o.start, o.last, o.last + rules.abandon_after, o.cart_units, o.cart_value, o.first_cart_at)
        pending = tuple(sorted(pending + (cart,), key=attrgetter("due")))
    t = s.totals
    totals = replace(
        t,
        sessions=t.sessions + 1,
        duration_s=t.duration_s + duration,
        pages=t.pages + o.pages,
        cart_sessions=t.cart_sessions + (o.cart_adds > 0),
        checkout_sessions=t.checkout_sessions + o.checkout,
    )
    return Sessions(None, pending, totals), closed


def _abandon(s: Sessions) -> tuple[Sessions, CartAbandoned]:
    p, t = s.pending[0], s.totals
    totals = replace(
        t,
        abandoned=t.abandoned + 1,
        abandoned_value=round(t.abandoned_value + p.value, 2),
        last_abandoned_at=p.due,
        last_abandoned_value=p.value,
    )
    abandoned = CartAbandoned(p.due, p.session_start, p.session_end, p.units, p.value)
    return replace(s, pending=s.pending[1:], totals=totals), abandoned


def _count_click(o: OpenSession, c: Click) -> OpenSession:
    """The session with ``c`` counted; ``last`` only moves forward."""
    o = replace(
        o,
        last=max(o.last, c.ts),
        clicks=o.clicks + 1,
        pages=o.pages + (c.action == "page_view"),
        searches=o.searches + (c.action == "search"),
        checkout=o.checkout or c.action == "checkout",
    )
    if c.action == "add_to_cart":
        return _add(o, c)
    if c.action == "remove_from_cart":
        return _remove(o, c)
    return o


def _line(c: Click) -> tuple[int, float]:
    """Units and value of a cart click; quantity defaults to 1 and price to 0."""
    units = c.quantity if c.quantity is not None else 1
    return units, units * (c.price if c.price is not None else 0.0)


def _add(o: OpenSession, c: Click) -> OpenSession:
    units, value = _line(c)
    since = c.ts if o.first_cart_at is None else min(o.first_cart_at, c.ts)
    return replace(o, cart_adds=o.cart_adds + 1, cart_units=o.cart_units + units,
                   cart_value=round(o.cart_value + value, 2), first_cart_at=since)


def _remove(o: OpenSession, c: Click) -> OpenSession:
    """Take a line out of the cart; neither units nor value go below zero."""
    units, value = _line(c)
    left = max(0, o.cart_units - units)
    if not left:
        return _emptied(o)
    return replace(o, cart_units=left, cart_value=max(0.0, round(o.cart_value - value, 2)))


def _emptied(o: OpenSession) -> OpenSession:
    return replace(o, cart_units=0, cart_value=0.0, first_cart_at=None)
