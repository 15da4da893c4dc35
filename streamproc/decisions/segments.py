"""Population-relative memberships: RFM segment, value tier and behaviour cluster.

In: a profile, the event time ``now`` and the ``Population`` (quantile bounds from Redis,
the current lifetime-value parameters and cluster model). Out: the profile with its
``rfm``, ``value`` and ``cluster`` fields updated and one ``SegmentChange`` per membership
that changed, with the crossing that caused it as the reason.

A customer is scored after each purchase, feedback and closed session, and otherwise every
``rescore_days`` of event time (P(alive) falls and the R score ages as time passes without
purchases). Value tiers by CLV over the population: ``low`` (below the median), ``medium``,
``high`` (top 20 %), with the same hysteresis as RFM scores.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from streamproc.decisions import learning, rfm
from streamproc.decisions.rules import Population, Rules
from streamproc.features.vector import cluster_input, vector
from streamproc.frozen import replace
from streamproc.models import ltv
from streamproc.records import SegmentChange
from streamproc.state import purchases
from streamproc.state.profile import Profile, Rfm, Value

TIER_CUTS = (0.5, 0.8)
TIERS = ("low", "medium", "high")


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).date().isoformat()


def _pct(b: rfm.Bounds, k: int) -> str:
    return f"the {b.cuts[k] * 100:.0f}th percentile"


def _crossing(name: str, old: int | None, new: int, shown: str, b: rfm.Bounds, fmt: type = str) -> str:
    """Why a score moved: the bound of the cut point it crossed."""
    if old is None or new > old:
        k, bound = new - 2, b.high
    else:
        k, bound = new - 1, b.low
    if k < 0:
        return f"{name} {new}: {shown}, at or below {_pct(b, 0)}"
    return rfm.why(name, old, new, shown, f"{_pct(b, k)} ({fmt(bound[k])})")


def score_rfm(p: Profile, pop: Population, now: datetime) -> tuple[Profile, list[SegmentChange]]:
    if not (p.purchases and p.last_purchase and pop.recency and pop.frequency and pop.monetary):
        return p, []
    cur = p.rfm
    r = rfm.score(p.last_purchase.timestamp(), pop.recency, cur and cur.r)
    f = rfm.score(p.purchases, pop.frequency, cur and cur.f)
    m = rfm.score(p.spend, pop.monetary, cur and cur.m)
    new = Rfm(r, f, m, rfm.segment(r, f))
    if cur is not None and new.segment == cur.segment:
        return replace(p, rfm=new), []
    reasons = []
    if cur is None or r != cur.r:
        reasons.append(_crossing("R", cur and cur.r, r, f"last purchase {p.last_purchase.date()}", pop.recency, _day))
    if cur is None or f != cur.f:
        reasons.append(_crossing("F", cur and cur.f, f, f"{p.purchases} order{'s' if p.purchases != 1 else ''}", pop.frequency, lambda v: f"{v:g}"))
    change = SegmentChange(p.customer_id, now, "rfm", cur and cur.segment, new.segment, "; ".join(reasons), None)
    return replace(p, rfm=new), [change]


def score_value(p: Profile, pop: Population, now: datetime, rules: Rules) -> tuple[Profile, list[SegmentChange]]:
    s = purchases.summary(p.days, now)
    if pop.ltv is None or s is None:
        return p, []
    horizon = rules.ltv_horizon_days
    clv = ltv.clv(pop.ltv, s, horizon)
    if not math.isfinite(clv):  # parameters at the edge of their range: keep the last good value
        return p, []
    old_tier = p.value.tier if p.value else ""
    tier = old_tier
    if pop.clv is not None:
        current = TIERS.index(old_tier) + 1 if old_tier else None
        tier = TIERS[rfm.score(clv, pop.clv, current) - 1]
    value = Value(p_alive=round(ltv.p_alive(pop.ltv, s), 4),
                  expected_purchases=round(ltv.expected_purchases(pop.ltv, s, horizon), 4),
                  expected_spend=round(ltv.expected_spend(pop.ltv, s), 2), clv=round(clv, 2), tier=tier,
                  params_version=pop.ltv.version, at=now)
    p = replace(p, value=value)
    if tier == old_tier or pop.clv is None:
        return p, []
    new_i = TIERS.index(tier) + 1
    reason = _crossing("value", TIERS.index(old_tier) + 1 if old_tier else None, new_i,
                       f"CLV {clv:.2f} over {horizon:g} days", pop.clv, lambda v: f"{v:.2f}")
    return p, [SegmentChange(p.customer_id, now, "value", old_tier or None, tier, reason, None)]


def score_cluster(p: Profile, pop: Population, now: datetime, v: dict[str, float]) -> tuple[Profile, list[SegmentChange]]:
    model = pop.clusters
    if model is None:
        return p, []
    cid = model.assign(cluster_input(v), p.cluster)
    if cid is None or cid == p.cluster:
        return p, []
    name = model.describe(cid)
    old = None if p.cluster is None else str(p.cluster)
    reason = f"nearest cluster centre is {cid} ({name})"
    return replace(p, cluster=cid, cluster_name=name), [SegmentChange(p.customer_id, now, "cluster", old, str(cid), reason, None)]


def rescore(p: Profile, now: datetime, pop: Population, rules: Rules) -> tuple[Profile, list[SegmentChange]]:
    """Every population-relative membership of ``p`` as of event time ``now``, and the online
    models' scores with a snapshot for the churn label (``decisions.learning``)."""
    p, a = score_rfm(p, pop, now)
    p, b = score_value(p, pop, now, rules)
    v = vector(p, now)
    p, c = score_cluster(p, pop, now, v)
    p = learning.score(p, v, now, pop, rules)
    return replace(p, scored_at=now), a + b + c


def as_of(p: Profile, now: datetime, pop: Population, rules: Rules) -> Profile:
    """``p`` with the memberships a read at event time ``now`` serves: RFM scores, value (P(alive),
    CLV, tier) and cluster placed afresh against ``pop`` (with population fits, the population of
    the last fit), without the hysteresis that keeps a stored membership from flapping, so that
    two stores that applied the same events serve the same memberships. Nothing is emitted."""
    fresh = replace(p, rfm=None, value=None, cluster=None, cluster_name="")
    fresh, _ = score_rfm(fresh, pop, now)
    fresh, _ = score_value(fresh, pop, now, rules)
    fresh, _ = score_cluster(fresh, pop, now, vector(fresh, now))
    return replace(p, rfm=fresh.rfm, value=fresh.value, cluster=fresh.cluster, cluster_name=fresh.cluster_name)
