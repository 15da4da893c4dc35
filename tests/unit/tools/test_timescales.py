"""Time scales from a history's cadence: slower buyers get longer thresholds; no returns, no scales."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from streamproc.sim.generator import GeneratorConfig, generate
from streamproc.tools.timescales import derive

T0 = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)


def world(cadence: float) -> list[tuple[str, datetime]]:
    config = GeneratorConfig(customers=120, days=180, seed=3, cadence=cadence)
    return [(e["customer_id"], datetime.fromisoformat(e["ts"])) for e in generate(config)]


def test_monthly_buyers_get_longer_thresholds_than_weekly_ones() -> None:
    weekly, monthly = derive(world(1.0)), derive(world(0.25))
    assert weekly.at_risk_days < monthly.at_risk_days
    assert weekly.churn_days < monthly.churn_days and weekly.label_days < monthly.label_days
    for t in (weekly, monthly):
        assert 1 <= t.at_risk_days < t.churn_days and t.p50 <= t.p80 <= t.p90 <= t.p95
        assert t.env_lines()[1] == f"STREAMPROC_CHURN_DAYS={t.churn_days}"


def test_every_returning_customer_weighs_the_same() -> None:
    """One daily visitor with 100 gaps of a day and four customers with one 60-day gap each:
    customer-weighted, 80 % of the weight lies on the 60-day gaps."""
    seen = [("daily", T0 + timedelta(days=d)) for d in range(101)]
    seen += [(f"c{k}", T0) for k in range(4)] + [(f"c{k}", T0 + timedelta(days=60)) for k in range(4)]
    t = derive(seen)
    assert (t.customers, t.returning, t.gaps) == (5, 5, 104)
    assert (t.p50, t.p80) == (60.0, 60.0)
    assert derive(seen[:101]).p95 == 1.0


def test_a_history_without_a_return_says_so() -> None:
    with pytest.raises(ValueError, match="two different days"):
        derive([("a", T0), ("a", T0 + timedelta(hours=3)), ("b", T0)])
