"""Trigger rules: conditions, firing on entering, cooldown, frequency cap, quiet hours, control groups,
and what an alert says about itself."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from streamproc.decisions import rulefile, triggers
from streamproc.decisions.catalogue import Trigger
from streamproc.decisions.rules import Population
from streamproc.pipeline import apply_batch, sweep
from streamproc.records import Alert, Suppressed
from streamproc.state.profile import ChurnScore
from tests.builders import RULES, at, buy, rate

TOP = Population(top_spend=100.0)


def rules_of(text: str):  # noqa: ANN201
    return replace(RULES, triggers=rulefile.parse(text))


LOW_RATING = """
rules:
  - id: low
    version: 3
    severity: warning
    on: [feedback]
    when: {attr: event.rating, op: "<=", value: 2}
    fire: %s
    %s
"""


def alerts(outputs: list) -> list[Alert]:
    return [o for o in outputs if isinstance(o, Alert)]


def run(events: list, text: str, pop: Population = TOP):  # noqa: ANN201
    res = apply_batch(events, {}, pop, rules_of(text))
    return res.profiles.get("C"), res.outputs


def test_a_rule_fires_on_entering_its_condition_and_again_only_after_leaving_it() -> None:
    events = [rate("a", 0, 1), rate("b", 1, 2), rate("c", 2, 5), rate("d", 3, 1)]
    _, out = run(events, LOW_RATING % ("enter", ""))
    assert [a.cause_event_id for a in alerts(out)] == ["a", "d"]
    _, out = run(events, LOW_RATING % ("every", ""))
    assert [a.cause_event_id for a in alerts(out)] == ["a", "b", "d"]


def test_cooldown_suppresses_in_event_time_and_is_counted() -> None:
    events = [rate("a", 0, 1), rate("b", 1, 1), rate("c", 6, 1)]
    _, out = run(events, LOW_RATING % ("every", "cooldown: 5d"))
    assert [a.cause_event_id for a in alerts(out)] == ["a", "c"]
    assert [(s.rule, s.why, s.ts) for s in out if isinstance(s, Suppressed)] == [("low", "cooldown", at(1))]


def test_frequency_cap_counts_across_rules_and_spares_uncapped_rules() -> None:
    text = """
frequency_cap: {max: 2, per: 7d}
rules:
  - {id: r1, version: 1, severity: info, on: [feedback], fire: every}
  - {id: r2, version: 1, severity: info, on: [feedback], fire: every}
  - {id: free, version: 1, severity: info, on: [feedback], fire: every, capped: false}
"""
    _, out = run([rate("a", 0, 3), rate("b", 1, 3), rate("c", 8, 3)], text)
    assert [(a.rule, a.cause_event_id) for a in alerts(out)] == [
        ("r1", "a"), ("r2", "a"), ("free", "a"), ("free", "b"), ("r1", "c"), ("r2", "c"), ("free", "c")]
    assert [(s.rule, s.why) for s in out if isinstance(s, Suppressed)] == [("r1", "cap"), ("r2", "cap")]


QUIET = """
quiet_hours: {start: "21:00", end: "08:00", timezone: "Europe/Berlin"}
rules:
  - {id: held, version: 1, severity: info, on: [feedback], fire: every}
  - {id: dropped, version: 1, severity: info, on: [feedback], fire: every, quiet_hours: drop}
  - {id: loud, version: 1, severity: critical, on: [feedback], fire: every, quiet_hours: ignore}
"""


def test_quiet_hours_hold_until_they_end_in_the_configured_zone_drop_or_ignore() -> None:
    night = at(0) + timedelta(hours=22)  # 23:00 in Berlin (UTC+1 in January)
    p, out = run([replace(rate("a", 0, 3), ts=night)], QUIET)
    assert [a.rule for a in alerts(out)] == ["loud"]
    assert sorted((s.rule, s.why) for s in out if isinstance(s, Suppressed)) == [("dropped", "quiet_hours"), ("held", "held")]
    assert p.triggers.next_release() == at(1) + timedelta(hours=7)  # 08:00 Berlin
    assert sweep({"C": p}, {"C": at(1) + timedelta(hours=6)}, TOP, rules_of(QUIET)).outputs == []
    res = sweep({"C": p}, {"C": at(1) + timedelta(hours=7)}, TOP, rules_of(QUIET))
    (held,) = alerts(res.outputs)
    assert (held.rule, held.ts, held.deliver_at) == ("held", night, at(1) + timedelta(hours=7))
    assert res.profiles["C"].triggers.held == ()


def test_an_alert_names_its_rule_version_facts_and_action() -> None:
    text = """
rules:
  - id: unhappy_top
    version: 4
    severity: critical
    on: [feedback]
    when:
      all:
        - any: [{attr: event.rating, op: "<=", value: 2}, {attr: event.nps, op: "<=", value: 4}]
        - {attr: top_spender, op: "==", value: true}
        - not: {attr: stage, op: "==", value: churned}
    fire: every
    action: call them
    message: "spend {spend:.2f}, rating {event.rating}, nps {event.nps}"
"""
    _, out = run([buy("a", 0, 150.0), rate("b", 1, nps=3)], text)
    (a,) = alerts(out)
    assert (a.rule_version, a.action, a.trigger, a.message) == (4, "call them", "feedback", "spend 150.00, rating n/a, nps 3")
    assert [(f.attr, f.op, f.value, f.saw) for f in a.facts] == [
        ("event.nps", "<=", 4, 3), ("top_spender", "==", True, True), ("stage", "not ==", "churned", "new")]
    assert a.to_dict()["facts"][0] == {"attr": "event.nps", "op": "<=", "value": 4, "saw": 3}
    assert a.to_dict()["schema_version"] == 2 and a.ruleset_digest


def test_a_churn_rule_carries_the_served_scores_reasons_and_model_version() -> None:
    text = """
rules:
  - id: churn
    version: 1
    severity: warning
    on: [timer]
    when: {attr: churn_risk, op: ">=", value: 0.4}
"""
    p, _ = run([buy("a", 0, 150.0)], text)
    res = sweep({"C": p}, {"C": at(30)}, TOP, rules_of(text))
    first = alerts(res.outputs)[0]
    assert first.models == {"churn": 0, "churn_source": "recency"}  # before the first model version
    assert [r[0] for r in first.reasons] == ["days_since_last"] and first.facts[0].saw >= 0.4
    assert len(alerts(res.outputs)) == 1  # fires on entering: once while the risk stays high


def test_score_change_trigger_reads_before_and_after() -> None:
    t = triggers_of_score()
    assert (t.kind, t.fields["before"], t.fields["after"], t.fields["change"]) == ("score_change", 0.2, 0.7, 0.5)


def triggers_of_score() -> Trigger:
    from streamproc.decisions import alerts as made
    return made.of_score(0.2, ChurnScore(0.7, 1, (), at(7)), at(7), None)


def test_control_groups_are_sticky_independent_per_rule_version_and_near_their_share() -> None:
    rs = rulefile.parse("""
control: {share: 0.05, seed: s}
rules:
  - {id: r, version: 1, severity: info, on: [feedback], holdout: 0.2}
""")
    rule = rs.rules[0]
    groups = [triggers.control_of(f"k1_{i}", rule, rs) for i in range(20000)]
    assert groups == [triggers.control_of(f"k1_{i}", rule, rs) for i in range(20000)]
    share_global = groups.count("global") / len(groups)
    share_rule = groups.count("rule") / len(groups)
    assert 0.045 < share_global < 0.055 and 0.18 < share_rule / (1 - share_global) < 0.22
    v2 = replace(rule, version=2)
    again = [triggers.control_of(f"k1_{i}", v2, rs) for i in range(20000)]
    moved = sum(a != b for a, b in zip(groups, again) if "global" not in (a, b))
    assert moved > 1000  # a new rule version draws a new holdout


def test_a_held_out_customer_gets_the_alert_recorded_and_flagged() -> None:
    rs = rulefile.parse("rules:\n  - {id: r, version: 1, severity: info, on: [feedback], fire: every, holdout: 0.5}\n")
    cid = next(f"k{i}" for i in range(100) if triggers.control_of(f"k{i}", rs.rules[0], rs) == "rule")
    res = apply_batch([replace(rate("a", 0, 3), customer_id=cid)], {}, TOP, replace(RULES, triggers=rs))
    (a,) = alerts(res.outputs)
    assert (a.held_out, a.control) == (True, "rule")


@pytest.mark.parametrize("op,saw,value,expected", [
    ("exists", None, False, True), ("!=", None, "x", True), ("==", None, None, False), ("in", "b", ["a", "b"], True),
    ("not_in", "b", ["a"], True), (">", 2, 2, False), (">=", 2, 2, True),
])
def test_compare(op: str, saw: object, value: object, expected: bool) -> None:
    assert triggers.compare(saw, op, value) is expected


def test_a_replay_fires_the_same_alerts() -> None:
    events = [buy("a", 0, 150.0), rate("b", 1, 1), rate("c", 2, 2), rate("d", 40, 1)]
    once = [o.to_dict() for o in alerts(run(events, rulefile.DEFAULT_RULES.read_text())[1])]
    twice = [o.to_dict() for o in alerts(run(list(reversed(events)), rulefile.DEFAULT_RULES.read_text())[1])]
    assert once == twice and once
