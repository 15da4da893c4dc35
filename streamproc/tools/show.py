"""A customer profile for people: what ``streamproc profile KEY`` prints.

In: a ``Profile``, the event time to show it as of (the newest event time streamproc
has seen) and the base currency its amounts are in. Out: ``rich`` tables: memberships (lifecycle, RFM, value, cluster) first, then
activity, purchases, feedback and every derived feature.
"""

from __future__ import annotations

from datetime import datetime

from rich.console import Group
from rich.table import Table

from streamproc.features.vector import FEATURES, vector
from streamproc.models.items import Offer
from streamproc.state.profile import ChurnScore, Profile

SOURCES = {"model": "online model", "recency": "recency rule", "palive": "BG/NBD 1 - P(alive)"}


def _t(v: datetime | None) -> str:
    return v.strftime("%Y-%m-%d %H:%M UTC") if v else "-"


def _table(title: str, rows: list[tuple[str, str]]) -> Table:
    t = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold", min_width=22)
    t.add_column()
    for k, v in rows:
        t.add_row(k, v)
    return t


def _scores(p: Profile, current: ChurnScore | None) -> list[tuple[str, str]]:
    """The online models' scores: churn risk as of the read (``current``) and as stored at the last
    rescoring, predicted satisfaction, the latest text-only feedback."""
    rows = [("churn risk now", churn_risk(current) if current is not None else "no model published yet")]
    if p.churn is not None:
        rows.append(("churn risk at rescoring", churn_risk(p.churn)))
    if p.predicted_satisfaction is not None:
        rows.append(("predicted satisfaction", f"{p.predicted_satisfaction:.2f} (0-1)"))
    if (u := p.unrated_feedback) is not None:
        rows.append(("text-only feedback", f"estimated satisfaction {u.value:.2f} (0-1; online model v{u.version}, "
                                           f"feedback of {_t(u.at)})"))
    return rows


def memberships(p: Profile, horizon_days: float, currency: str,
                current: ChurnScore | None = None) -> list[tuple[str, str]]:
    rows = [("lifecycle stage", f"{p.stage} since {_t(p.stage_since)} ({p.stage_reason})")]
    if p.rfm:
        rows.append(("RFM", f"R {p.rfm.r}  F {p.rfm.f}  M {p.rfm.m}  ->  {p.rfm.segment}"))
    else:
        rows.append(("RFM", "not scored yet (no purchase, or too few customers with purchases)"))
    if p.value:
        v = p.value
        rows += [
            ("P(alive)", f"{v.p_alive:.3f}"),
            ("expected purchases", f"{v.expected_purchases:.2f} in the next {horizon_days:g} days"),
            ("expected spend", f"{v.expected_spend:.2f} {currency} per purchase"),
            ("CLV", f"{v.clv:.2f} {currency} over {horizon_days:g} days   value tier: {v.tier or '-'}   (models v{v.params_version}, as of {_t(v.at)})"),
        ]
    else:
        rows.append(("lifetime value", "not yet: no purchase, or no population fit yet"))
    cluster = f"{p.cluster}: {p.cluster_name}" if p.cluster is not None else "not assigned yet (model warming up)"
    rows.append(("behaviour cluster", cluster))
    return rows + _scores(p, current)


def churn_risk(c: ChurnScore) -> str:
    """The served churn score, which candidate served it (``models.serving``), as of when, and why."""
    if c.source == "model":
        why = "; ".join(f"{feature} {direction} ({contribution:+.2f})" for feature, contribution, direction in c.reasons)
    else:
        why = "; ".join(f"{feature} {value:g}" for feature, value, _ in c.reasons)
    return f"{c.p:.3f} ({SOURCES.get(c.source, c.source)}, online models v{c.version}, {_t(c.at)}): {why or '-'}"


def render(p: Profile, now: datetime, horizon_days: float, currency: str,
           current: ChurnScore | None = None, offers: list[Offer] | None = None) -> Group:
    """Every section of the profile, features computed as of event time ``now``, amounts labelled
    with ``currency`` (the base currency, ``STREAMPROC_BASE_CURRENCY``)."""
    t = p.visits.totals
    open_s = p.visits.open
    f = vector(p, max(now, p.last_seen))
    top = sorted(p.categories.items(), key=lambda kv: -kv[1])[:3]
    activity = [
        ("first / last seen", f"{_t(p.first_seen)}  /  {_t(p.last_seen)}"),
        ("events", f"{p.events:,}  (page views {p.page_views:,}, searches {p.searches:,}, cart adds {p.cart_adds:,})"),
        ("sessions", f"{p.sessions:,}  ({f['visits_per_week']:.2f}/week, {f['pages_per_visit']:.1f} pages, "
                     f"{f['visit_minutes']:.1f} min each)"),
        ("open session", f"since {_t(open_s.start)}, cart {open_s.cart_units} unit(s) {open_s.cart_value:.2f} {currency}"
         if open_s else "-"),
        ("abandoned carts", f"{t.abandoned} worth {t.abandoned_value:.2f} {currency} (last {_t(t.last_abandoned_at)})"),
    ]
    purchases = [
        ("orders", f"{p.purchases:,}, spend {p.spend:.2f} {currency}, average {f['avg_order_value']:.2f}, "
                   f"largest {p.max_order:.2f}"),
        ("last purchase", _t(p.last_purchase)),
        ("BTYD summary", f"frequency {f['frequency']:.0f}, recency {f['recency_days']:.0f} d, T {f['T_days']:.0f} d, "
                         f"monetary {f['monetary']:.2f} {currency}"),
        ("top categories", ", ".join(f"{k} {v:.2f} {currency}" for k, v in top) or "-"),
    ]
    trend = f"{f['satisfaction_trend']:+.3f} per feedback"
    feedback = [
        ("feedback", f"{p.feedbacks} ({p.ratings} ratings, mean {p.mean_rating:.2f})" if p.ratings else f"{p.feedbacks}"),
        ("satisfaction", f"mean {f['satisfaction']:.2f}, recent {list(p.recent_satisfaction)}, trend {trend}"),
        ("sentiment", f"mean {f['sentiment']:+.3f} over {p.texts} text(s)"),
    ]
    features = Table(title=f"features as of {_t(max(now, p.last_seen))} (amounts in {currency})", title_justify="left",
                     box=None)
    features.add_column("feature", style="bold")
    features.add_column("value", justify="right")
    features.add_column("meaning", style="dim")
    for name, meaning in FEATURES.items():
        features.add_row(name, f"{f[name]:.3f}", meaning)
    recent = ", ".join(p.items.skus) or "-"
    offered = [("recent items", recent), ("bought lately", ", ".join(p.items.bought[:10]) or "-")]
    offered += [(f"offer {i}", f"{o.item}: {o.reason}" + (f" (score {o.score:.3f})" if o.score else ""))
                for i, o in enumerate(offers or (), 1)]
    return Group(
        _table(f"customer {p.customer_id}", memberships(p, horizon_days, currency, current)), "",
        _table("activity", activity), "", _table("purchases", purchases), "", _table("feedback", feedback), "",
        _table("next-best offers (item model now)" if offers is not None else "items (offers are off)", offered), "",
        features,
    )
