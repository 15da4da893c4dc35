"""The rules file: every mistake reported with its line, the rule and what to do."""

from __future__ import annotations

import pytest

from streamproc.decisions import rulefile
from streamproc.errors import RulesInvalid

FIVE_MISTAKES = """\
quiet_hours: {start: "21:00", end: "08:00", timezone: "Europe/Berln"}
rules:
  - id: vip_churn
    version: 1
    severity: urgent
    on: [score_change]
    when:
      all:
        - {attr: churn_risc, op: ">=", value: 0.6}
        - {attr: value_tier, op: ">", value: medium}
    cooldown: 2 weeks
  - id: low_rating
    version: 1
    severity: warning
    on: [purchase]
    when: {attr: event.rating, op: "<=", value: 2}
    destinaton: [crm]
"""


def test_every_mistake_is_reported_with_its_line_rule_and_fix() -> None:
    errors = rulefile.check(FIVE_MISTAKES, "rules.yaml")
    assert [e.split(": ")[0] for e in errors] == [
        "rules.yaml:1", "rules.yaml:5", "rules.yaml:9", "rules.yaml:10", "rules.yaml:11", "rules.yaml:16", "rules.yaml:17"]
    text = "\n".join(errors)
    assert "did you mean 'Europe/Berlin'?" in text
    assert "rules.yaml:9: rule 'vip_churn': unknown attribute 'churn_risc' (did you mean 'churn_risk'?)" in text
    assert "'value_tier' is a string: '>' does not apply" in text
    assert "rule 'vip_churn': cooldown '2 weeks' is not a duration" in text
    assert "attribute 'event.rating' is not a field of trigger 'purchase'" in text
    assert "unknown field 'destinaton' (did you mean 'destinations'?)" in text


def test_parse_raises_with_every_error() -> None:
    with pytest.raises(RulesInvalid) as exc:
        rulefile.parse(FIVE_MISTAKES)
    assert len(exc.value.errors) == 7


@pytest.mark.parametrize("text,fragment", [
    ("rules:\n  - {id: x, version: 1, severity: info, on: [feedback]\n", "not valid YAML"),
    ("quiet_hours: {start: 21:00, end: \"08:00\", timezone: UTC}\nrules: []\n", "quote it"),
    ("rules:\n  - {id: x, version: 1, severity: info, on: [feedback], when: {alll: []}}\n", "unknown key 'alll' (did you mean 'all'?)"),
    ("rules:\n  - {id: x, version: 1, severity: info, on: [feedback], message: 'hi {spnd}'}\n", "did you mean 'spend'?"),
    ("rules:\n  - {id: x, version: 1, severity: info, on: [feedback]}\n  - {id: x, version: 1, severity: info, on: [click]}\n",
     "rules.yaml:3: rule 'x': duplicate id"),
    ("rules:\n  - {id: x, version: 1, severity: info, on: [feedback], when: {attr: spend, op: in, value: 3}}\n",
     "needs a non-empty list of numbers"),
    ("rules:\n  - {id: x, version: 1, severity: info}\n", "missing field 'on'"),
])
def test_specific_messages(text: str, fragment: str) -> None:
    assert fragment in "\n".join(rulefile.check(text, "rules.yaml"))


def test_the_key_on_is_read_as_text_not_as_yaml_true() -> None:
    rs = rulefile.parse("rules:\n  - id: x\n    version: 1\n    severity: info\n    on: [click]\n")
    assert rs.by_trigger["click"][0].id == "x"


def test_the_default_rules_parse_and_json_works_too() -> None:
    rs = rulefile.load()
    assert {r.id for r in rs.rules} >= {"unhappy_top_customer", "top_customer_at_risk", "cart_abandoned",
                                        "valuable_customer_churn_risk", "falling_satisfaction"}
    as_json = rulefile.parse('{"rules": [{"id": "x", "version": 1, "severity": "info", "on": ["click"]}]}', "r.json")
    assert as_json.rules[0].on == ("click",)
