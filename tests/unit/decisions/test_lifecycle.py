"""Lifecycle and segment decisions on scripted timelines: loyal, overdue, unhappy, recovery;
RFM scores with hysteresis and named segments; value tiers; rescoring timers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import partial

from streamproc.decisions import lifecycle, rfm
from streamproc.decisions.rules import Population, Rules
from streamproc.models.ltv import LtvParams
from streamproc.pipeline import apply_batch, next_due, sweep
from streamproc.records import Alert, Example, SegmentChange
from streamproc.state.profile import Rfm
from tests import builders
from tests.builders import RULES

T0 = datetime(2026, 1, 1, 9, tzinfo=timezone.utc)
at = partial(builders.at, start=T0)
click = partial(builders.click, session="s", start=T0)
buy = partial(builders.buy, start=T0)
rate = partial(builders.rate, start=T0)






def stages(outputs: list) -> list[tuple]:  # noqa: ANN001
    return [(o.old, o.new, round((o.ts - T0) / timedelta(days=1), 3), o.reason)
            for o in outputs if isinstance(o, SegmentChange) and o.dimension == "lifecycle"]


def run(events, pop: Population = Population(), rules: Rules = RULES, until: float | None = None):  # noqa: ANN001, ANN201
    res = apply_batch(events, {}, pop, rules)
    outputs = list(res.outputs)
    p = res.profiles["C"]
    if until is not None:
        swept = sweep({"C": p}, {"C": at(until)}, pop, rules)
        outputs += swept.outputs
        p = swept.profiles.get("C", p)
    return p, outputs


def test_active_customer_becomes_loyal_on_the_purchase_that_qualifies() -> None:
    events = [buy(f"b{i}", d) for i, d in enumerate((0, 10, 20, 40, 55, 62))]
    p, out = run(events)
    assert stages(out) == [
        (None, "new", 0, "first activity"),
        ("new", "active", 10, "second purchase"),
        ("active", "loyal", 62, "6 purchases over 62 days"),  # 5 purchases by day 55, but not 60 days old
    ]
    assert p.stage == "loyal"


def test_overdue_customer_is_at_risk_before_the_inactivity_threshold_and_reactivates() -> None:
    visits = [click(f"c{i}", i) for i in range(6)]  # a visit a day: usual gap 1 day
    p, out = run(visits + [click("late", 11)])
    assert stages(out) == [
        (None, "new", 0, "first activity"),
        ("new", "at_risk", 10, "overdue: no visit for 5.0 days, 5x the usual 1.0 days between visits"),
        ("at_risk", "reactivated", 11, "active again after at-risk"),
    ]
    assert p.stage == "reactivated"


def test_overdue_never_fires_sooner_than_the_minimum() -> None:
    hourly = [click(f"c{i}", i / 24) for i in range(6)]  # 5 x 1 hour is far below 3 days
    _, out = run(hourly, until=10)
    assert stages(out)[1][1:] == ("at_risk", round(5 / 24 + 3, 3),
                                  "overdue: no visit for 3.0 days, 5x the usual 1.0 hours between visits")


def test_overdue_wait_scales_with_the_usual_gap_and_never_exceeds_at_risk_days() -> None:
    every_2_days = [click(f"c{i}", 2 * i) for i in range(5)]
    p, _ = run(every_2_days)
    assert next_due(p, RULES) == at(8) + RULES.sessions.gap  # the open session ends first
    assert lifecycle.next_due(p, RULES) == at(8 + 10)
    _, out = run(every_2_days, until=30)
    assert stages(out)[-1][1:] == ("at_risk", 18, "overdue: no visit for 10.0 days, 5x the usual 2.0 days between visits")
    sparse = [click(f"c{i}", 6 * i) for i in range(5)]  # 5 x 6 days > 21 days: the plain rule applies
    _, out = run(sparse, until=60)
    assert stages(out)[-1][1:] == ("at_risk", 24 + 21, "no activity for 21 days")


def test_low_rating_puts_an_active_customer_at_risk_until_satisfaction_recovers() -> None:
    events = [click("c0", 0), rate("r1", 1, 5), rate("r2", 2, 2), click("c1", 2.5), rate("r3", 3, 2), rate("r4", 4, 3)]
    p, out = run(events)
    assert stages(out) == [
        (None, "new", 0, "first activity"),
        ("new", "at_risk", 2, "satisfaction falling: latest score is 0.25"),
        ("at_risk", "active", 4, "satisfaction recovered: recent mean 0.50"),
    ]  # neither the click nor another 2 while unhappy is a recovery; a 3 (0.5 > 0.25 + 0.2) is
    assert p.stage == "active"


def test_unhappy_customer_who_goes_quiet_churns() -> None:
    _, out = run([click("c0", 0), rate("r1", 1, 1)], until=60)
    assert [s[1] for s in stages(out)] == ["new", "at_risk", "churned"]
    assert stages(out)[-1][2] == 1 + 45


def test_rfm_scores_have_hysteresis_at_cut_points() -> None:
    b = rfm.Bounds((0.2, 0.4, 0.6, 0.8), low=(1, 2, 3, 4), mid=(2, 3, 4, 5), high=(3, 4, 5, 6), size=100)
    assert rfm.score(4.5, b, None) == 4
    assert rfm.score(4.5, b, 3) == 3  # must pass the 60th percentile + margin (5) to move up
    assert rfm.score(5.5, b, 3) == 4
    assert rfm.score(3.5, b, 4) == 4  # must fall to the 60th percentile - margin (3) to move down
    assert rfm.score(3.0, b, 4) == 3
    assert rfm.score(0, b, None) == 1 and rfm.score(100, b, 2) == 5


def test_every_rfm_cell_maps_to_one_of_the_named_segments() -> None:
    names = {rfm.segment(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert names == {"Champions", "Loyal", "Potential loyalist", "New", "At risk", "Can't lose them",
                     "Hibernating", "Lost"}


def _pop() -> Population:
    cuts = rfm.RFM_CUTS
    recency = rfm.Bounds(cuts, *[tuple(at(d).timestamp() for d in ds) for ds in
                                 ((4, 9, 14, 19), (5, 10, 15, 20), (6, 11, 16, 21))], size=50)
    freq = rfm.Bounds(cuts, (1, 1, 2, 3), (1, 1, 2, 3), (1, 2, 3, 4), size=50)
    money = rfm.Bounds(cuts, (5, 10, 20, 40), (5, 10, 20, 40), (5, 10, 20, 40), size=50)
    clv = rfm.Bounds((0.5, 0.8), (10, 50), (12, 60), (14, 70), size=50)
    ltv = LtvParams(r=0.5, alpha=5.0, a=0.5, b=3.0, p=2.0, q=3.0, v=20.0, version=3, fitted_at=T0.isoformat(),
                    customers=50, repeat_buyers=30)
    return Population(top_spend=None, recency=recency, frequency=freq, monetary=money, clv=clv, ltv=ltv)


def test_purchases_score_rfm_and_value_with_reasons_and_deterministic_ids() -> None:
    pop = _pop()
    p, out = run([buy("b1", 21), buy("b2", 22, 40.0), buy("b3", 23, 30.0)], pop)
    seg = [o for o in out if isinstance(o, SegmentChange) and o.dimension == "rfm"]
    assert [(o.old, o.new, o.cause_event_id) for o in seg] == [
        (None, "New", "b1"), ("New", "Potential loyalist", "b2"), ("Potential loyalist", "Loyal", "b3")]
    assert seg[0].reason == ("R 5: last purchase 2026-01-22, above the 80th percentile (2026-01-22); "
                             "F 1: 1 order, at or below the 20th percentile")
    assert seg[2].reason == "F 2->3: 3 orders, above the 40th percentile (2)"
    assert p.rfm == Rfm(5, 3, 5, "Loyal")
    tiers = [(o.old, o.new, o.reason) for o in out if isinstance(o, SegmentChange) and o.dimension == "value"]
    assert tiers == [(None, "high", "value 3: CLV 97.49 over 90 days, above the 80th percentile (70.00)")]
    assert p.value is not None and p.value.params_version == 3 and p.value.tier == "high"
    assert (p.value.p_alive, p.value.expected_spend) == (0.8889, 30.0)
    again, out2 = run([buy("b1", 21), buy("b2", 22, 40.0), buy("b3", 23, 30.0)], pop)
    assert [o.event_id for o in out2] == [o.event_id for o in out]


def test_quiet_customer_is_rescored_every_rescore_interval_of_event_time() -> None:
    pop = _pop()
    p, _ = run([buy("b1", 21), buy("b2", 22)], pop)
    assert p.scored_at == at(22) and next_due(p, RULES) == at(22) + RULES.rescore_every
    swept = sweep({"C": p}, {"C": at(22 + 7 * 2 + 1)}, pop, RULES)
    q = swept.profiles["C"]
    assert q.scored_at == at(22 + 14)  # rescored at 29 and 36, each at its own time, not at the watermark
    assert q.value is not None and q.value.p_alive <= p.value.p_alive


def test_abandoned_cart_becomes_an_alert_at_its_deadline() -> None:
    p, out = run([click("c0", 0, "add_to_cart", price=25.0)], until=1)
    alerts = [o for o in out if isinstance(o, Alert)]
    assert [(a.rule, a.ts, a.trigger) for a in alerts] == [("cart_abandoned", at(0) + timedelta(minutes=60), "cart_abandoned")]
    assert "worth 25.00" in alerts[0].message
    assert p.visits.totals.abandoned == 1


def test_every_output_matches_its_topic_contract() -> None:
    import fastjsonschema
    import orjson

    from streamproc.contracts import load_contracts
    from streamproc.settings import DEFAULT_TOPICS_DIR

    contracts = load_contracts(DEFAULT_TOPICS_DIR)
    check = {role: fastjsonschema.compile(orjson.loads(contracts.one(role).schema_path.read_bytes()))
             for role in ("segments", "alerts", "training")}
    _, out = run([click("c0", 0, "add_to_cart", price=25.0), buy("b1", 21), buy("b2", 22, 40.0), rate("r", 23, 1)],
                 _pop(), until=200)
    dims = {o.dimension for o in out if isinstance(o, SegmentChange)}
    assert dims == {"lifecycle", "rfm", "value"}
    roles = {SegmentChange: "segments", Alert: "alerts", Example: "training"}
    assert {roles[type(o)] for o in out} == {"segments", "alerts", "training"}
    for o in out:
        check[roles[type(o)]](orjson.loads(orjson.dumps(o.to_dict())))


def churn_examples(outputs: list) -> list[tuple[float, float, float]]:  # noqa: ANN001
    """(snapshot day, label, released day) of each churn training example."""
    days = timedelta(days=1)
    return [((datetime.fromisoformat(o.snapshot_at) - T0) / days, o.label, (datetime.fromisoformat(o.ts) - T0) / days)
            for o in outputs if isinstance(o, Example) and o.model == "churn"]


def test_churn_labels_mature_both_ways_one_horizon_after_their_snapshot() -> None:
    """Scored at the purchases and rescored every 7 quiet days: the snapshots of days 0, 8
    and 15 see the customer back on day 20 and are retained; the day-20 purchase's snapshot
    and the quiet rescorings after it see no activity for 30 days and churn, until the
    customer churns on day 65; the next rescoring waits until the silence has doubled (day
    104). Every label is released at its snapshot plus the 30-day horizon, though the
    watermark jumps from day 20 to day 100."""
    _, out = run([buy("b0", 0), buy("b1", 1), click("c20", 20), buy("b2", 20)], until=100)
    assert churn_examples(out) == [(0, 0, 30), (8, 0, 38), (15, 0, 45)] + [
        (d, 1, d + 30) for d in (20, 27, 34, 41, 48, 55, 62)]
    assert stages(out)[-1] == ("at_risk", "churned", 65, "no activity for 45 days")
    assert len({o.event_id for o in out if isinstance(o, Example)}) == 10


def test_a_churned_customer_is_rescored_each_time_the_silence_doubles() -> None:
    """Rescored weekly until the last rescoring before churning (day 62, 42 days after the last
    activity on day 20), then at 84, 168 and 336 days of silence: each rescoring leaves a
    snapshot that matures as churned, so the model learns what long silences lead to, at
    a cost that grows with the log of the silence."""
    _, out = run([buy("b0", 0), buy("b1", 1), click("c20", 20), buy("b2", 20)], until=400)
    assert [d for d, label, _ in churn_examples(out) if d > 62] == [104, 188, 356]
    assert all(label == 1 for d, label, _ in churn_examples(out) if d > 20)
    _, back = run([buy("b0", 0), buy("b1", 1), click("c20", 20), buy("b2", 20), buy("b3", 200)], until=250)
    assert (188, 0, 218) in churn_examples(back)  # back on day 200, within the horizon of day 188's snapshot


def test_the_watermark_s_steps_do_not_change_the_labels() -> None:
    events = [buy("b0", 0), buy("b1", 1), click("c20", 20), buy("b2", 20)]
    p, jumped = run(events, until=100)
    res = apply_batch(events, {}, Population(), RULES)
    stepped, q = list(res.outputs), res.profiles["C"]
    for day in range(21, 101):
        swept = sweep({"C": q}, {"C": at(day)}, Population(), RULES)
        stepped += swept.outputs
        q = swept.profiles.get("C", q)
    assert jumped == stepped and p == q


def test_a_comeback_after_the_horizon_retains_nothing_already_churned() -> None:
    _, quiet = run([buy("b0", 0)], until=29.9)
    assert churn_examples(quiet) == []  # not released before the horizon
    _, out = run([buy("b0", 0), buy("b45", 45)], until=80)
    assert churn_examples(out)[0] == (0, 1.0, 30)
    assert (45, 1.0, 75) in churn_examples(out)  # day 45's snapshot, then quiet: churned at 75
