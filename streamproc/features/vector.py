"""Derived profile features, as of an event time: what clusters, scores and people read.

In: a ``Profile`` and the event time ``now`` (an event's time or a watermark, never the
clock). Out: named numbers. ``FEATURES`` documents each one; the README's feature table is
this table.
"""

from __future__ import annotations

from datetime import datetime

from streamproc.state import purchases
from streamproc.state.profile import Profile

DAY = 86400.0

FEATURES: dict[str, str] = {
    "recency_days": "BTYD recency: days from the first to the last purchase day (UTC days)",
    "frequency": "BTYD frequency: number of repeat purchase days (purchase days - 1)",
    "T_days": "BTYD T: days from the first purchase day to now",
    "monetary": "BTYD monetary: mean value of the repeat purchase days (first day excluded), base currency",
    "days_since_purchase": "days since the last purchase",
    "days_since_last": "days since the last activity of any kind",
    "orders": "number of purchases",
    "orders_per_month": "purchases per 30 days of customer age",
    "spend": "total spend, base currency",
    "avg_order_value": "mean order total, base currency",
    "items_per_order": "mean units per order",
    "max_order": "largest order total, base currency",
    "top_category_share": "share of spend in the customer's top category (category affinity)",
    "visits_per_week": "sessions per week of customer age (visit cadence)",
    "days_between_visits": "mean days between session starts",
    "pages_per_visit": "mean page views per closed session",
    "visit_minutes": "mean duration of a closed session, minutes",
    "cart_rate": "share of closed sessions with an add-to-cart",
    "conversion": "purchases per session",
    "abandoned_carts": "carts left in a session and not bought within the abandonment window",
    "abandoned_value": "value of those carts, base currency",
    "satisfaction": "mean satisfaction 0-1 over all feedback (0.5 when none)",
    "satisfaction_recent": "mean of the last 5 satisfaction scores",
    "satisfaction_trend": "slope of the last 5 satisfaction scores, per feedback (positive: improving)",
    "sentiment": "mean VADER compound score of feedback texts, -1..1 (0 when none)",
    "feedbacks": "number of feedback events",
}


def _per(n: float, d: float) -> float:
    return n / d if d else 0.0


def _slope(ys: tuple[float, ...]) -> float:
    """Least-squares slope of ``ys`` against 0, 1, 2, ...

    >>> _slope((1.0, 0.75, 0.5)), _slope((0.5,))
    (-0.25, 0.0)
    """
    n = len(ys)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(ys) / n
    return sum((i - mx) * (y - my) for i, y in enumerate(ys)) / sum((i - mx) ** 2 for i in range(n))


def vector(p: Profile, now: datetime) -> dict[str, float]:
    """Every feature in ``FEATURES`` for ``p`` as of event time ``now``."""
    s = purchases.summary(p.days, now)
    age_days = max((now - p.first_seen).total_seconds() / DAY, 1.0)
    t = p.visits.totals
    spend_top = max(p.categories.values(), default=0.0)
    recent = p.recent_satisfaction
    return {
        "recency_days": s.recency if s else 0.0,
        "frequency": float(s.frequency) if s else 0.0,
        "T_days": s.T if s else 0.0,
        "monetary": s.monetary if s else 0.0,
        "days_since_purchase": (now - p.last_purchase).total_seconds() / DAY if p.last_purchase else age_days,
        "days_since_last": max((now - p.last_seen).total_seconds() / DAY, 0.0),
        "orders": float(p.purchases),
        "orders_per_month": p.purchases / (age_days / 30),
        "spend": p.spend,
        "avg_order_value": _per(p.spend, p.purchases),
        "items_per_order": _per(p.items_bought, p.purchases),
        "max_order": p.max_order,
        "top_category_share": _per(spend_top, sum(p.categories.values())),
        "visits_per_week": p.sessions / (age_days / 7),
        "days_between_visits": _per(age_days, max(p.sessions - 1, 0)),
        "pages_per_visit": t.mean_pages or 0.0,
        "visit_minutes": (t.mean_duration_s or 0.0) / 60,
        "cart_rate": t.cart_share or 0.0,
        "conversion": _per(p.purchases, p.sessions),
        "abandoned_carts": float(t.abandoned),
        "abandoned_value": t.abandoned_value,
        "satisfaction": p.mean_satisfaction if p.mean_satisfaction is not None else 0.5,
        "satisfaction_recent": sum(recent) / len(recent) if recent else 0.5,
        "satisfaction_trend": _slope(recent),
        "sentiment": p.mean_sentiment or 0.0,
        "feedbacks": float(p.feedbacks),
    }


CLUSTER_FEATURES = ("visits_per_week", "pages_per_visit", "cart_rate", "conversion", "orders_per_month",
                    "avg_order_value", "days_since_last", "satisfaction")


def cluster_input(v: dict[str, float]) -> dict[str, float]:
    """The behaviour-cluster model's inputs (``models.clusters``) from a feature vector."""
    return {k: v[k] for k in CLUSTER_FEATURES}
