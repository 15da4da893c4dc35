"""The triggers of the event path: what happened to a customer, as the trigger rules read it.

Each function turns one happening into a ``Trigger`` (``decisions.catalogue``) with the fields
rules read as ``event.<name>``; ``decisions.triggers.fire`` then evaluates the rules file's rules
for it. Which alerts exist is no longer code: the three alerts of the first releases
(``unhappy_top_customer``, ``top_customer_at_risk``, ``cart_abandoned``) are rules of
``default_rules.yaml``.
"""

from __future__ import annotations

from datetime import datetime

from streamproc.decisions.catalogue import Trigger
from streamproc.decisions.lifecycle import Transition
from streamproc.records import Click, Feedback, InputEvent, Purchase, SegmentChange
from streamproc.state.profile import ChurnScore
from streamproc.state.sessions import CartAbandoned

KIND = {Purchase: "purchase", Feedback: "feedback", Click: "click"}


def kind_of(event: InputEvent) -> str:
    """The trigger kind of an input event (its rules are evaluated only if some rule listens to it)."""
    return KIND[type(event)]


def of_event(event: InputEvent) -> Trigger:
    """The trigger of an input event, with its own fields."""
    if isinstance(event, Purchase):
        return Trigger("purchase", event.ts, {"total": event.total, "units": sum(i.quantity for i in event.items),
                                              "lines": len(event.items)}, event.event_id)
    if isinstance(event, Feedback):
        return Trigger("feedback", event.ts, {"rating": event.rating, "nps": event.nps, "channel": event.channel,
                                              "satisfaction": event.satisfaction, "has_text": bool(event.text)},
                       event.event_id)
    assert isinstance(event, Click)
    return Trigger("click", event.ts, {"page": event.page, "action": event.action, "sku": event.sku,
                                       "price": event.price}, event.event_id)


def of_transition(t: Transition, cause: str | None) -> Trigger:
    return Trigger("lifecycle_change", t.at, {"old": t.old or None, "new": t.new, "reason": t.reason}, cause)


def of_segment(c: SegmentChange) -> Trigger:
    return Trigger("segment_change", c.ts, {"dimension": c.dimension, "old": c.old, "new": c.new,
                                            "reason": c.reason}, c.cause_event_id)


def of_score(before: float | None, after: ChurnScore, at: datetime, cause: str | None) -> Trigger:
    """A rescoring at ``at`` that moved the served churn risk from ``before`` (None: the first) to ``after``."""
    change = round(after.p - before, 4) if before is not None else None
    return Trigger("score_change", at, {"before": before, "after": after.p, "change": change}, cause)


def of_cart(cart: CartAbandoned) -> Trigger:
    return Trigger("cart_abandoned", cart.at, {"units": cart.units, "value": cart.value,
                                               "session_end": cart.session_end.isoformat()})


def of_timer(at: datetime) -> Trigger:
    return Trigger("timer", at)
