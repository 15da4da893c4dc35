"""The customer profile and how one event changes it.

In: the current ``Profile`` (or ``None`` for a customer never seen) and a typed input event.
Out: the new ``Profile``. Pure: no I/O, no clock; the event's own time is the only time.
Lifecycle stage fields are set by ``streamproc.decisions.lifecycle``, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import singledispatch
from typing import Any

from streamproc.ingest.events import Click, Feedback, InputEvent, Purchase


@dataclass(frozen=True, slots=True)
class Profile:
    """Everything streamproc knows about one customer; amounts in base currency."""

    customer_id: str
    first_seen: datetime
    last_seen: datetime
    events: int = 0
    sessions: int = 0
    last_session_id: str = ""
    page_views: int = 0
    searches: int = 0
    cart_adds: int = 0
    checkouts: int = 0
    purchases: int = 0
    items_bought: int = 0
    spend: float = 0.0
    last_purchase: datetime | None = None
    feedbacks: int = 0
    ratings: int = 0
    rating_sum: int = 0
    last_rating: int | None = None
    last_nps: int | None = None
    satisfaction_sum: float = 0.0
    satisfaction_count: int = 0
    last_satisfaction: float | None = None
    stage: str = ""
    stage_since: datetime | None = None
    stage_reason: str = ""
    seen: tuple[str, ...] = ()

    @property
    def mean_rating(self) -> float | None:
        return self.rating_sum / self.ratings if self.ratings else None

    @property
    def mean_satisfaction(self) -> float | None:
        """Mean satisfaction (0-1 scale, see ``Feedback.satisfaction``) over all feedback."""
        return self.satisfaction_sum / self.satisfaction_count if self.satisfaction_count else None


def new_profile(event: InputEvent) -> Profile:
    """The empty profile of a customer whose first event this is."""
    return Profile(customer_id=event.customer_id, first_seen=event.ts, last_seen=event.ts)


def apply_event(profile: Profile, event: InputEvent, dedupe_window: int) -> Profile:
    """Counts, spend, times and the dedupe window after ``event`` (one new Profile per event)."""
    return replace(
        profile,
        events=profile.events + 1,
        first_seen=min(profile.first_seen, event.ts),
        last_seen=max(profile.last_seen, event.ts),
        seen=(profile.seen + (event.event_id,))[-dedupe_window:],
        **_changes(event, profile),
    )


@singledispatch
def _changes(event: InputEvent, p: Profile) -> dict[str, Any]:
    """The fields an event of this type changes, besides counts and times common to all."""
    raise TypeError(f"no profile rule for {type(event).__name__}")


@_changes.register
def _(event: Click, p: Profile) -> dict[str, Any]:
    return {
        "sessions": p.sessions + (event.session_id != p.last_session_id),
        "last_session_id": event.session_id,
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
        "last_purchase": event.ts if p.last_purchase is None else max(p.last_purchase, event.ts),
    }


@_changes.register
def _(event: Feedback, p: Profile) -> dict[str, Any]:
    rated, sat = event.rating is not None, event.satisfaction
    return {
        "feedbacks": p.feedbacks + 1,
        "satisfaction_sum": round(p.satisfaction_sum + (sat or 0.0), 4),
        "satisfaction_count": p.satisfaction_count + (sat is not None),
        "last_satisfaction": sat if sat is not None else p.last_satisfaction,
        "ratings": p.ratings + rated,
        "rating_sum": p.rating_sum + (event.rating or 0),
        "last_rating": event.rating if rated else p.last_rating,
        "last_nps": event.nps if event.nps is not None else p.last_nps,
    }
