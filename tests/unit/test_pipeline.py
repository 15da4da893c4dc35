"""The pure event path: profile updates, lifecycle in event time, alerts, dedupe, sweep."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest

from streamproc.decisions.learning import churn_as_of
from streamproc.decisions.rules import Population
from streamproc.eventtime import advance, watermarks
from streamproc.features.vector import FEATURES
from streamproc.models.online import TEXT_SENTIMENT, SatisfactionModel
from streamproc.pipeline import apply_batch, step, sweep
from streamproc.records import Alert, Example, SegmentChange
from streamproc.state import codec
from streamproc.state.profile import Profile
from tests import builders
from tests.builders import RULES, T0, at, click, rate

buy = partial(builders.buy, lines=2, category=None)
NOBODY = Population(None)






def run(events, pop: Population = NOBODY, profile: Profile | None = None):  # noqa: ANN001, ANN201
    res = apply_batch(events, {"C": profile}, pop, RULES)
    return res.profiles.get("C", profile), res


def changes(res) -> list[tuple]:  # noqa: ANN001
    return [(o.old, o.new, (o.ts - T0) / timedelta(days=1), o.reason)
            for o in res.outputs if isinstance(o, SegmentChange)]


def test_counts_spend_and_times() -> None:
    p, _ = run([click("a", 0), click("b", 0.01, action="add_to_cart"), click("c", 1, session="s2"),
                buy("d", 1, 30.0), rate("e", 2, rating=4, nps=9)])
    assert (p.events, p.sessions, p.page_views, p.cart_adds, p.purchases, p.items_bought, p.spend) == (5, 2, 2, 1, 1, 2, 30.0)
    assert (p.first_seen, p.last_seen, p.last_purchase, p.last_rating, p.last_nps) == (at(0), at(2), at(1), 4, 9)
    assert p.mean_rating == 4.0
    assert (p.last_satisfaction, p.mean_satisfaction) == (0.825, 0.825)  # mean of (4-1)/4 and 9/10


def test_new_then_active_on_second_purchase() -> None:
    _, res = run([click("a", 0), buy("b", 1), buy("c", 3)])
    assert changes(res) == [(None, "new", 0, "first activity"), ("new", "active", 3, "second purchase")]


def test_new_then_active_once_older_than_new_period() -> None:
    _, res = run([click("a", 0), click("b", 13), click("c", 14)])
    assert changes(res)[1:] == [("new", "active", 14, "still active 14 days after first activity")]


def test_inactivity_is_timed_from_last_activity_and_comeback_is_reactivation() -> None:
    p, res = run([click("a", 0), click("b", 10), click("c", 70), buy("d", 71)])
    assert changes(res) == [
        (None, "new", 0, "first activity"),
        ("new", "at_risk", 31, "no activity for 21 days"),
        ("at_risk", "churned", 55, "no activity for 45 days"),
        ("churned", "reactivated", 70, "active again after churned"),
        ("reactivated", "active", 71, "purchase after reactivation"),
    ]
    assert (p.stage, p.stage_since) == ("active", at(71))


def test_late_event_from_before_dormancy_is_counted_but_is_no_comeback() -> None:
    p, _ = run([click("a", 0)])
    p = sweep({"C": p}, {"C": at(25)}, NOBODY, RULES).profiles["C"]
    assert (p.stage, p.stage_since) == ("at_risk", at(21))
    p2, res2 = run([click("late", 5)], profile=p)
    assert changes(res2) == []
    assert (p2.stage, p2.events, p2.last_seen) == ("at_risk", 2, at(5))


def test_resent_event_is_dropped_by_id() -> None:
    p, res = run([click("a", 0), buy("b", 1), buy("b", 1)])
    assert ([e.event_id for e in res.duplicates], p.purchases, p.events) == (["b"], 1, 2)
    p2, res2 = run([buy("b", 1)], profile=p)
    assert (len(res2.duplicates), p2) == (1, p)


def test_batch_is_applied_in_event_time_order() -> None:
    _, res = run([buy("b", 1), click("a", 0)])
    assert changes(res)[0] == (None, "new", 0, "first activity")


def test_unhappy_top_customer_alert_needs_low_score_and_top_spend() -> None:
    top = Population(top_spend=100.0)
    _, res = run([buy("a", 0, 150.0), rate("b", 1, rating=2), rate("c", 2, rating=3), rate("d", 3, nps=4)], top)
    alerts = [o for o in res.outputs if isinstance(o, Alert)]
    assert [(a.rule, a.cause_event_id, a.severity) for a in alerts] == [  # the rating of 2 also puts them at risk
        ("top_customer_at_risk", "b", "warning"), ("unhappy_top_customer", "b", "critical"),
        ("unhappy_top_customer", "d", "critical")]
    _, res = run([buy("a", 0, 50.0), rate("b", 1, rating=1)], top)
    assert not [o for o in res.outputs if isinstance(o, Alert)]
    _, res = run([buy("a", 0, 500.0), rate("b", 1, rating=1)], NOBODY)
    assert not [o for o in res.outputs if isinstance(o, Alert)]


def test_sweep_moves_silent_customers_and_alerts_on_top_customers() -> None:
    p, _ = run([buy("a", 0, 200.0)])
    res = sweep({"C": p}, {"C": at(50)}, Population(100.0), RULES)
    assert [(o.new, o.ts) for o in res.outputs if isinstance(o, SegmentChange)] == [("at_risk", at(21)), ("churned", at(45))]
    assert [(a.rule, a.ts) for a in res.outputs if isinstance(a, Alert)] == [  # risk 30/60 at day 35, quiet hours over
        ("top_customer_at_risk", at(21)), ("valuable_customer_churn_risk", at(35))]
    assert res.profiles["C"].stage == "churned"
    assert sweep({"C": p}, {"C": at(20)}, NOBODY, RULES).outputs == []


def test_sweep_and_lazy_path_emit_identical_outputs() -> None:
    p, _ = run([click("a", 0)])
    swept = sweep({"C": p}, {"C": at(30)}, NOBODY, RULES).outputs
    _, out, _ = step(p, click("b", 30), NOBODY, RULES)
    assert swept and [o.to_dict() for o in swept] == [o.to_dict() for o in out[:len(swept)]]


def test_failing_event_is_returned_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    import streamproc.pipeline as pl

    def boom(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise ValueError("bad state")

    monkeypatch.setattr(pl.alerts, "kind_of", boom)
    p, res = run([click("a", 0)])
    assert p is None and [(e.event_id, why) for e, why in res.failed] == [("a", "ValueError: bad state")]


def test_profile_codec_round_trip() -> None:
    p, _ = run([click("a", 0), buy("b", 1), rate("c", 2, rating=5)])
    assert codec.loads(Profile, codec.dumps(p)) == p


def test_watermark_is_slowest_busy_input() -> None:
    high = advance({}, [("clicks", 0, 100.0), ("buys", 0, 40.0), ("clicks", 1, 70.0), ("clicks", 0, 90.0)])
    assert high == {"clicks:0": 100.0, "buys:0": 40.0, "clicks:1": 70.0}
    busy = lambda tp: False  # noqa: E731
    assert watermarks(high, ["clicks", "buys"], [0, 1], busy, 10) == {0: 30.0, 1: float("-inf")}
    idle_buys = lambda tp: tp.startswith("buys")  # noqa: E731
    assert watermarks(high, ["clicks", "buys"], [0, 1], idle_buys) == {0: 100.0, 1: 70.0}
    assert watermarks(high, ["clicks", "buys"], [0], lambda tp: True) == {0: 100.0}
    assert watermarks({}, ["clicks"], [3], lambda tp: True) == {3: float("-inf")}


def text_model() -> SatisfactionModel:
    """A satisfaction model that has learned that the text's sentiment is the satisfaction."""
    model = SatisfactionModel()
    base = dict.fromkeys(FEATURES, 0.0)
    for i in range(400):
        s = (i % 21 - 10) / 10
        model.learn(base | {TEXT_SENTIMENT: s}, (s + 1) / 2)
    model.version = 3
    return model


def test_text_only_feedback_enters_the_sentiment_and_is_estimated_but_never_learned_from() -> None:
    pop = Population(satisfaction=text_model())
    p, res = run([buy("a", 0, 20.0), rate("b", 1, text="Terrible service, the parcel never arrived. Awful."),
                  rate("c", 2, rating=5, text="Great, thanks!")], pop)
    examples = [o for o in res.outputs if isinstance(o, Example) and o.model == "satisfaction"]
    assert [(e.label, e.ts) for e in examples] == [(1.0, at(2).isoformat())]
    assert (p.feedbacks, p.ratings, p.texts, p.satisfaction_count, p.recent_satisfaction) == (2, 1, 2, 1, (1.0,))
    est = p.unrated_feedback
    assert est is not None and (est.version, est.at) == (3, at(1))
    happy, _ = run([buy("a", 0, 20.0), rate("b", 1, text="Lovely service, the parcel came early. Great!")], pop)
    assert happy.unrated_feedback is not None and est.value < happy.unrated_feedback.value  # the text's sentiment counts


def test_text_only_feedback_before_any_model_is_applied_without_estimate() -> None:
    p, res = run([rate("a", 0, text="Nice shop")])
    assert (p.feedbacks, p.texts, p.unrated_feedback) == (1, 1, None) and p.last_sentiment > 0
    assert not [o for o in res.outputs if isinstance(o, Example)]


def test_a_read_scores_every_customer_as_of_the_read_recency_before_any_model() -> None:
    p, _ = run([click("a", 0), buy("b", 1)])
    score = churn_as_of(p, at(31), NOBODY, RULES)
    assert (score.source, score.version, score.at) == ("recency", 0, at(31))
    assert score.reasons == (("days_since_last", 30.0, "raises risk"),)
    later = churn_as_of(p, at(61), NOBODY, RULES)
    assert later.p > score.p  # as of the read, not of the last rescoring
