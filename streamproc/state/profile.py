"""The customer profile and how one event changes it.

In: the current ``Profile`` (or ``None`` for a customer never seen) and a typed input event.
Out: the new ``Profile``. Pure: no I/O, no clock; the event's own time is the only time.
Lifecycle, RFM, value and cluster fields are set by ``streamproc.decisions``; derived
features (rates, trends, BTYD summary) are computed from these fields by
``streamproc.features.vector``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import singledispatch
from typing import Any

from streamproc.frozen import replace
from streamproc.ingest import sentiment
from streamproc.records import Click, Feedback, InputEvent, Purchase
from streamproc.state.items import RecentItems
from streamproc.state.labels import Snapshot
from streamproc.state.purchases import PurchaseDays, add_purchase
from streamproc.state.sessions import Sessions
from streamproc.state.triggers import EMPTY, TriggerMemory

RECENT_SATISFACTION = 5
TOP_CATEGORIES = 12
OTHER = "other"


@dataclass(frozen=True, slots=True)
class Mark:
    """One line of a customer's history: a lifecycle change (``kind`` "stage") or an alert ("alert")."""

    at: datetime
    kind: str
    what: str
    why: str = ""


@dataclass(frozen=True, slots=True)
class Rfm:
    """RFM scores 1-5 (5 best) and the named segment they map to (``decisions.rfm``)."""

    r: int
    f: int
    m: int
    segment: str


@dataclass(frozen=True, slots=True)
class Value:
    """Lifetime value from the BG/NBD and Gamma-Gamma models (``decisions.value``), as of ``at``."""

    p_alive: float
    expected_purchases: float
    expected_spend: float
    clv: float
    tier: str
    params_version: int
    at: datetime


@dataclass(frozen=True, slots=True)
class ChurnScore:
    """The churn score served at event time ``at`` by the candidate ``source`` chosen with
    online models ``version`` (``models.serving``), and why.

    ``source`` ``"model"``: ``p`` is the online model's P(churn within the label horizon) and
    ``reasons`` the features that moved it most, ``(feature, contribution to the log-odds,
    "raises risk" | "lowers risk")``. A baseline (``"recency"``, ``"palive"``): ``p`` is its
    score (higher is riskier; a rank more than a probability) and ``reasons`` the one input it
    reads, ``(feature, its value, the way it moves the score)``: ``("days_since_last", days,
    "raises risk")`` or ``("p_alive", P(alive), "lowers risk")``.
    """

    p: float
    version: int
    reasons: tuple[tuple[str, float, str], ...]
    at: datetime
    source: str = "model"


@dataclass(frozen=True, slots=True)
class SatisfactionEstimate:
    """The satisfaction model's estimate (0-1) of a feedback that came without a rating or NPS
    (text only), made at the feedback's time ``at`` by model ``version``."""

    value: float
    version: int
    at: datetime


@dataclass(frozen=True, slots=True)
class Profile:
    """Everything streamproc knows about one customer; amounts in base currency."""

    customer_id: str
    first_seen: datetime
    last_seen: datetime
    events: int = 0
    # clickstream
    page_views: int = 0
    searches: int = 0
    cart_adds: int = 0
    checkouts: int = 0
    visits: Sessions = Sessions()
    # purchases
    purchases: int = 0
    items_bought: int = 0
    spend: float = 0.0
    max_order: float = 0.0
    last_purchase: datetime | None = None
    days: PurchaseDays = PurchaseDays()
    categories: dict[str, float] = field(default_factory=dict)
    # feedback
    feedbacks: int = 0
    ratings: int = 0
    rating_sum: int = 0
    last_rating: int | None = None
    last_nps: int | None = None
    satisfaction_sum: float = 0.0
    satisfaction_count: int = 0
    last_satisfaction: float | None = None
    recent_satisfaction: tuple[float, ...] = ()
    texts: int = 0
    sentiment_sum: float = 0.0
    last_sentiment: float | None = None
    # decisions
    stage: str = ""
    stage_since: datetime | None = None
    stage_reason: str = ""
    rfm: Rfm | None = None
    value: Value | None = None
    cluster: int | None = None
    cluster_name: str = ""
    scored_at: datetime | None = None
    # items, for next-best offers (state.items)
    items: RecentItems = RecentItems()
    # online models (decisions.learning)
    churn: ChurnScore | None = None
    predicted_satisfaction: float | None = None
    unrated_feedback: SatisfactionEstimate | None = None
    pending: tuple[Snapshot, ...] = ()
    snapshot_at: datetime | None = None
    # trigger rules (decisions.triggers)
    triggers: TriggerMemory = EMPTY
    history: tuple[Mark, ...] = ()
    """The latest lifecycle changes and alerts, newest last (``pipeline.remember``)."""
    seen: tuple[str, ...] = ()

    @property
    def sessions(self) -> int:
        """Sessions so far, the open one included."""
        return self.visits.totals.sessions + (self.visits.open is not None)

    @property
    def mean_rating(self) -> float | None:
        return self.rating_sum / self.ratings if self.ratings else None

    @property
    def mean_satisfaction(self) -> float | None:
        """Mean satisfaction (0-1 scale, see ``Feedback.satisfaction``) over all feedback."""
        return self.satisfaction_sum / self.satisfaction_count if self.satisfaction_count else None

    @property
    def mean_sentiment(self) -> float | None:
        """Mean VADER compound score (-1..1) of the feedback texts."""
        return self.sentiment_sum / self.texts if self.texts else None


def new_profile(event: InputEvent) -> Profile:
    """The empty profile of a customer whose first event this is."""
    return Profile(customer_id=event.customer_id, first_seen=event.ts, last_seen=event.ts)


def apply_event(profile: Profile, event: InputEvent, dedupe_window: int, visits: Sessions | None = None) -> Profile:
    """Counts, spend, times and the dedupe window after ``event`` (one new Profile per event).

    Sessions are not advanced here: ``pipeline.step`` runs ``features.sessions`` alongside,
    because session ends and abandoned carts are outputs as well as state, and passes the
    session state after the event as ``visits``, set in the same copy.
    """
    return replace(
        profile,
        events=profile.events + 1,
        first_seen=min(profile.first_seen, event.ts),
        last_seen=max(profile.last_seen, event.ts),
        seen=(profile.seen + (event.event_id,))[-dedupe_window:],
        visits=profile.visits if visits is None else visits,
        **_changes(event, profile),
    )


@singledispatch
def _changes(event: InputEvent, p: Profile) -> dict[str, Any]:
    """The fields an event of this type changes, besides counts and times common to all."""
    raise TypeError(f"no profile rule for {type(event).__name__}")


@_changes.register
def _(event: Click, p: Profile) -> dict[str, Any]:
    return {
        "page_views": p.page_views + (event.action == "page_view"),
        "searches": p.searches + (event.action == "search"),
        "cart_adds": p.cart_adds + (event.action == "add_to_cart"),
        "checkouts": p.checkouts + (event.action == "checkout"),
    }


@_changes.register
def _(event: Purchase, p: Profile) -> dict[str, Any]:
    return {
        "purchases": p.purchases + 1,
        "items_bought": p.items_bought + sum(i.quantity for i in event.items),
        "spend": round(p.spend + event.total, 2),
        "max_order": max(p.max_order, event.total),
        "last_purchase": event.ts if p.last_purchase is None else max(p.last_purchase, event.ts),
        "days": add_purchase(p.days, event.ts, event.total),
        "categories": _categories(p.categories, event),
    }


def split_total(total: float, weights: Mapping[str, float]) -> dict[str, float]:
    """``total`` shared across the keys of ``weights`` in proportion to them, in whole cents that
    add up to ``total`` to the cent (largest remainder, ties by name); weights that are all 0
    share it equally.

    >>> split_total(10.0, {"books": 1.0, "games": 1.0, "toys": 1.0})
    {'books': 3.34, 'games': 3.33, 'toys': 3.33}
    """
    cents = round(total * 100)
    whole = sum(weights.values())
    exact = {k: cents * (w / whole if whole > 0 else 1 / len(weights)) for k, w in weights.items()}
    shares = {k: math.floor(x) for k, x in exact.items()}
    for k in sorted(exact, key=lambda k: (shares[k] - exact[k], k))[:cents - sum(shares.values())]:
        shares[k] += 1
    return {k: c / 100 for k, c in shares.items()}


def _line_values(event: Purchase) -> dict[str, float]:
    """Value of the order's lines per category (``other`` for lines without one, or no lines)."""
    out: dict[str, float] = {}
    for item in event.items:
        name = item.category or OTHER
        out[name] = out.get(name, 0.0) + item.price * item.quantity
    return out or {OTHER: 0.0}


def _categories(spend: dict[str, float], event: Purchase) -> dict[str, float]:
    """Spend per product category: the order total split across its lines' categories, so that the
    categories add up to ``spend``; beyond the top few, the smallest are folded into ``other``."""
    out = dict(spend)
    for name, share in split_total(event.total, _line_values(event)).items():
        out[name] = round(out.get(name, 0.0) + share, 2)
    if len(out) <= TOP_CATEGORIES:
        return out
    ranked = sorted(((k, v) for k, v in out.items() if k != OTHER), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[:TOP_CATEGORIES - 1])
    return kept | {OTHER: round(sum(out.values()) - sum(kept.values()), 2)}


@_changes.register
def _(event: Feedback, p: Profile) -> dict[str, Any]:
    rated, sat = event.rating is not None, event.satisfaction
    score = sentiment.compound(event.text) if event.text else None
    return {
        "feedbacks": p.feedbacks + 1,
        "satisfaction_sum": round(p.satisfaction_sum + (sat or 0.0), 4),
        "satisfaction_count": p.satisfaction_count + (sat is not None),
        "last_satisfaction": sat if sat is not None else p.last_satisfaction,
        "recent_satisfaction": (p.recent_satisfaction + ((sat,) if sat is not None else ()))[-RECENT_SATISFACTION:],
        "ratings": p.ratings + rated,
        "rating_sum": p.rating_sum + (event.rating or 0),
        "last_rating": event.rating if rated else p.last_rating,
        "last_nps": event.nps if event.nps is not None else p.last_nps,
        "texts": p.texts + (score is not None),
        "sentiment_sum": round(p.sentiment_sum + (score or 0.0), 4),
        "last_sentiment": score if score is not None else p.last_sentiment,
    }
