"""``rules backtest``: the counts agree with the profiles the same history leaves."""

from __future__ import annotations

from streamproc.decisions import rulefile
from streamproc.sim.generator import GeneratorConfig
from streamproc.tools.backtest import backtest
from streamproc.tools.evaluate import generated_events
from tests.builders import SETTINGS


def test_backtest_counts_every_abandoned_cart_and_the_control_group() -> None:
    events = generated_events(GeneratorConfig(customers=60, days=45, seed=3), SETTINGS)
    result = backtest(events, SETTINGS, rulefile.load())
    carts = result.report()["rules"]["cart_abandoned"]
    assert carts["fired"] == sum(p.visits.totals.abandoned for p in result.profiles.values()) > 0
    held_out = [a for a in result.alerts if a["rule"] == "cart_abandoned" and a["held_out"]]
    assert carts["held_out"] == len(held_out) and all(a["control"] == "global" for a in held_out)


def test_a_cooldown_and_a_cap_show_in_the_counts() -> None:
    text = """
frequency_cap: {max: 1, per: 30d}
rules:
  - {id: carts, version: 1, severity: info, on: [cart_abandoned], fire: every, cooldown: 3d, capped: false}
  - {id: clicks, version: 1, severity: info, on: [purchase], fire: every}
"""
    events = generated_events(GeneratorConfig(customers=40, days=45, seed=3), SETTINGS)
    rows = backtest(events, SETTINGS, rulefile.parse(text)).report()["rules"]
    assert rows["carts"]["cooldown"] > 0 and rows["clicks"]["cap"] > 0
    assert rows["carts"]["fired"] <= rows["carts"]["customers"] * 15  # at most one per 3 days each
    loose = backtest(events, SETTINGS, rulefile.parse(text.replace("cooldown: 3d", "cooldown: 0"))).report()["rules"]
    assert loose["carts"]["fired"] > rows["carts"]["fired"]
