"""The attributes a trigger rule's condition can read: profile features, segments, model scores
and the triggering event's own fields, each with its kind and meaning.

A condition leaf ``{attr, op, value}`` names one of them. ``Scene`` is what they are read from:
the profile after the trigger, the population, the thresholds and the trigger itself; the served
churn score is computed once per scene, and only if a rule reads it. Every time is the trigger's
event time, so a replay reads the same values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streamproc.decisions import learning
from streamproc.decisions.rules import Population, Rules
from streamproc.models.items import Offer, offers_for
from streamproc.state.profile import ChurnScore, Profile

TRIGGERS = ("purchase", "feedback", "click", "lifecycle_change", "segment_change", "score_change",
            "cart_abandoned", "timer")
DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class Trigger:
    """Something that happened to a customer at event time ``ts``: an event of theirs, a change of
    stage, segment or score, a cart left behind, or the periodic rescoring (``timer``);
    ``fields`` are what a rule reads as ``event.<name>``."""

    kind: str
    ts: datetime
    fields: Mapping[str, Any] = field(default_factory=dict)
    cause_event_id: str | None = None


class Scene:
    """What one rule evaluation reads: the profile, the population, the thresholds, the trigger."""

    __slots__ = ("p", "pop", "rules", "trigger", "_churn", "_offers")

    def __init__(self, p: Profile, pop: Population, rules: Rules, trigger: Trigger) -> None:
        self.p, self.pop, self.rules, self.trigger = p, pop, rules, trigger
        self._churn: ChurnScore | None = None
        self._offers: list[Offer] | None = None

    @property
    def now(self) -> datetime:
        return self.trigger.ts

    def churn(self) -> ChurnScore:
        """The churn score a read at the trigger's time serves (``learning.churn_as_of``)."""
        if self._churn is None:
            self._churn = learning.churn_as_of(self.p, self.now, self.pop, self.rules)
        return self._churn

    def offers(self) -> list[Offer]:
        """The customer's next-best offers from the item counters the batch read (none without them)."""
        if self._offers is None:
            view = self.pop.items
            self._offers = [] if view is None or self.rules.items is None else \
                offers_for(self.p.items, view, self.rules.offers, self.rules.repurchase)
        return self._offers


@dataclass(frozen=True, slots=True)
class Attr:
    """One readable attribute: ``kind`` is ``number``, ``string`` or ``boolean``; ``model`` names the
    model whose score it is (its version goes into the alert); an event field lists the
    ``triggers`` that carry it."""

    name: str
    kind: str
    doc: str
    get: Callable[[Scene], Any]
    model: str | None = None
    triggers: tuple[str, ...] = ()


def _days(later: datetime, earlier: datetime | None) -> float | None:
    return None if earlier is None else round((later - earlier).total_seconds() / DAY_S, 4)


def _mean(xs: tuple[float, ...]) -> float | None:
    return round(sum(xs) / len(xs), 4) if xs else None


def _trend(p: Profile) -> float | None:
    """The latest satisfaction minus the mean of the earlier ones (None before two scores)."""
    if p.satisfaction_count < 2 or p.last_satisfaction is None:
        return None
    earlier = (p.satisfaction_sum - p.last_satisfaction) / (p.satisfaction_count - 1)
    return round(p.last_satisfaction - earlier, 4)


def _profile(name: str, kind: str, doc: str, get: Callable[[Profile], Any]) -> Attr:
    return Attr(name, kind, doc, lambda s: get(s.p))


def _event(name: str, kind: str, doc: str, *triggers: str) -> Attr:
    key = name.removeprefix("event.")
    return Attr(name, kind, doc, lambda s: s.trigger.fields.get(key), triggers=triggers)


_ATTRS = [
    # profile features
    _profile("events", "number", "events applied so far", lambda p: p.events),
    _profile("page_views", "number", "page views so far", lambda p: p.page_views),
    _profile("searches", "number", "searches so far", lambda p: p.searches),
    _profile("cart_adds", "number", "add-to-cart clicks so far", lambda p: p.cart_adds),
    _profile("checkouts", "number", "checkout clicks so far", lambda p: p.checkouts),
    _profile("sessions", "number", "visits so far, the open one included", lambda p: p.sessions),
    _profile("purchases", "number", "orders so far", lambda p: p.purchases),
    _profile("items_bought", "number", "units bought so far", lambda p: p.items_bought),
    _profile("spend", "number", "total spend, base currency", lambda p: p.spend),
    _profile("max_order", "number", "largest order, base currency", lambda p: p.max_order),
    _profile("feedbacks", "number", "feedback answers so far", lambda p: p.feedbacks),
    _profile("last_rating", "number", "latest rating, 1-5", lambda p: p.last_rating),
    _profile("last_nps", "number", "latest NPS answer, 0-10", lambda p: p.last_nps),
    _profile("satisfaction_mean", "number", "mean satisfaction over all feedback, 0-1", lambda p: p.mean_satisfaction),
    _profile("satisfaction_recent", "number", "mean of the latest satisfaction scores (up to 5), 0-1",
             lambda p: _mean(p.recent_satisfaction)),
    _profile("satisfaction_trend", "number", "latest satisfaction minus the mean of the earlier ones: below 0 "
             "is falling (-0.25: a rating point)", _trend),
    _profile("last_satisfaction", "number", "latest satisfaction score, 0-1", lambda p: p.last_satisfaction),
    _profile("sentiment_mean", "number", "mean sentiment of feedback texts, -1..1", lambda p: p.mean_sentiment),
    Attr("days_since_last_seen", "number", "days from the latest activity to the trigger",
         lambda s: _days(s.now, s.p.last_seen)),
    Attr("days_since_last_purchase", "number", "days from the latest order to the trigger",
         lambda s: _days(s.now, s.p.last_purchase)),
    Attr("days_as_customer", "number", "days from the first activity to the trigger", lambda s: _days(s.now, s.p.first_seen)),
    # segments
    _profile("stage", "string", "lifecycle stage: new, active, loyal, at_risk, churned", lambda p: p.stage),
    Attr("stage_days", "number", "days in the current lifecycle stage", lambda s: _days(s.now, s.p.stage_since)),
    _profile("rfm_segment", "string", "RFM segment name (champions, at_risk, hibernating, ...)",
             lambda p: p.rfm.segment if p.rfm else None),
    _profile("rfm_r", "number", "RFM recency score 1-5", lambda p: p.rfm.r if p.rfm else None),
    _profile("rfm_f", "number", "RFM frequency score 1-5", lambda p: p.rfm.f if p.rfm else None),
    _profile("rfm_m", "number", "RFM monetary score 1-5", lambda p: p.rfm.m if p.rfm else None),
    _profile("value_tier", "string", "lifetime-value tier: low, medium, high", lambda p: p.value.tier if p.value else None),
    _profile("cluster", "number", "behaviour cluster number", lambda p: p.cluster),
    _profile("cluster_name", "string", "behaviour cluster description", lambda p: p.cluster_name or None),
    Attr("top_spender", "boolean", "spend within the top fraction of customers (STREAMPROC_TOP_SPEND_FRACTION)",
         lambda s: s.pop.is_top_spender(s.p.spend)),
    # model scores
    Attr("churn_risk", "number", "served churn risk at the trigger, 0-1 (its reasons go into the alert)",
         lambda s: s.churn().p, model="churn"),
    Attr("churn_source", "string", "the churn candidate served: model, recency or palive",
         lambda s: s.churn().source, model="churn"),
    Attr("predicted_satisfaction", "number", "the satisfaction model's prediction, 0-1",
         lambda s: s.p.predicted_satisfaction, model="satisfaction"),
    Attr("p_alive", "number", "BG/NBD probability the customer is still active",
         lambda s: s.p.value.p_alive if s.p.value else None, model="ltv"),
    Attr("clv", "number", "customer lifetime value over the horizon, base currency",
         lambda s: s.p.value.clv if s.p.value else None, model="ltv"),
    Attr("expected_purchases", "number", "BG/NBD expected orders over the horizon",
         lambda s: s.p.value.expected_purchases if s.p.value else None, model="ltv"),
    # next-best offer (models.items)
    Attr("offer", "string", "the item to offer first (co-occurrence with the recent items, else popular), or absent",
         lambda s: s.offers()[0].item if s.offers() else None, model="items"),
    Attr("offer_score", "number", "the first offer's co-occurrence score (0: a popular item, not a learned one)",
         lambda s: s.offers()[0].score if s.offers() else None, model="items"),
    Attr("offer_source", "string", "where the first offer comes from: co_occurrence or popularity",
         lambda s: s.offers()[0].source if s.offers() else None, model="items"),
    # the triggering event's own fields
    _event("event.total", "number", "order total, base currency", "purchase"),
    _event("event.units", "number", "units in the order, or in the abandoned cart", "purchase", "cart_abandoned"),
    _event("event.lines", "number", "order lines", "purchase"),
    _event("event.rating", "number", "the feedback's rating, 1-5", "feedback"),
    _event("event.nps", "number", "the feedback's NPS answer, 0-10", "feedback"),
    _event("event.satisfaction", "number", "the feedback's satisfaction, 0-1", "feedback"),
    _event("event.channel", "string", "the feedback's channel", "feedback"),
    _event("event.has_text", "boolean", "the feedback came with text", "feedback"),
    _event("event.page", "string", "the clicked page", "click"),
    _event("event.action", "string", "the click's action: page_view, search, add_to_cart, checkout", "click"),
    _event("event.sku", "string", "the clicked product", "click"),
    _event("event.price", "number", "the clicked product's price", "click"),
    _event("event.old", "string", "the stage or segment left (absent on a first placement)", "lifecycle_change",
           "segment_change"),
    _event("event.new", "string", "the stage or segment entered", "lifecycle_change", "segment_change"),
    _event("event.reason", "string", "why the stage or segment changed", "lifecycle_change", "segment_change"),
    _event("event.dimension", "string", "the segment dimension: rfm, value or cluster", "segment_change"),
    _event("event.before", "number", "the churn risk before the rescoring", "score_change"),
    _event("event.after", "number", "the churn risk after the rescoring", "score_change"),
    _event("event.change", "number", "after minus before", "score_change"),
    _event("event.value", "number", "the abandoned cart's value", "cart_abandoned"),
    _event("event.session_end", "string", "when the abandoned cart's session ended", "cart_abandoned"),
]
CATALOGUE: dict[str, Attr] = {a.name: a for a in _ATTRS}
"""Every attribute a rule can read, by name."""
