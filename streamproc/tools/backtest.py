"""``streamproc rules backtest``: what a rules file would have fired on a history, before it is published.

In: a rules file and a history (a file, as ``replay`` reads it, or a generated one). The history
runs in process through the same pipeline as the worker (``tools.evaluate.replay``: the online
models learn as they would live, lifetime values are refitted), with the population's rankings
(top spend, RFM and CLV bounds) recomputed before each event-time step. Out: per rule, alerts
fired, distinct customers, suppressed by cooldown, frequency cap and quiet hours (dropped), held
for quiet hours, held out (control groups); and the alerts themselves for ``--json``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from streamproc.decisions.rules import Population
from streamproc.decisions.triggers import RuleSet
from streamproc.pipeline import Output
from streamproc.records import Alert, InputEvent, Suppressed
from streamproc.runtime.population import PopulationView
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.settings import Settings
from streamproc.state.profile import Profile
from streamproc.tools.evaluate import Progress, replay

COLUMNS = ("fired", "customers", "cooldown", "cap", "quiet_hours", "held", "held_out")


@dataclass
class RuleCounts:
    fired: int = 0
    customers: set[str] = field(default_factory=set)
    suppressed: Counter[str] = field(default_factory=Counter)
    held_out: int = 0

    def row(self) -> dict[str, int]:
        return {"fired": self.fired, "customers": len(self.customers), "cooldown": self.suppressed["cooldown"],
                "cap": self.suppressed["cap"], "quiet_hours": self.suppressed["quiet_hours"],
                "held": self.suppressed["held"], "held_out": self.held_out}


@dataclass
class Backtest:
    rules: RuleSet
    events: int
    counts: dict[str, RuleCounts]
    alerts: list[dict[str, Any]]
    start: str | None = None
    end: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        return {"events": self.events, "from": self.start, "to": self.end, "ruleset_digest": self.rules.digest,
                "rules": {r.id: self.counts[r.id].row() for r in self.rules.rules}}


def ranked(settings: Settings) -> Any:
    """The population's rankings from the profiles, as the worker's store ranks them."""
    view = PopulationView(RedisKeys(settings.key_prefix), settings.top_spend_fraction, settings.min_population,
                          settings.segment_margin)

    def rank(profiles: dict[str, Profile], pop: Population) -> Population:
        ps = profiles.values()
        view.fitted = {
            "monetary": np.sort(np.array([p.spend for p in ps if p.spend > 0], dtype=np.float64)),
            "recency": np.sort(np.array([p.last_purchase.timestamp() for p in ps if p.last_purchase], dtype=np.float64)),
            "frequency": np.sort(np.array([p.purchases for p in ps if p.last_purchase], dtype=np.float64)),
            "clv": np.sort(np.array([p.value.clv for p in ps if p.value is not None], dtype=np.float64)),
        }
        fresh = view.as_fitted()
        return replace(pop, top_spend=fresh.top_spend, recency=fresh.recency, frequency=fresh.frequency,
                       monetary=fresh.monetary, clv=fresh.clv)

    return rank


def backtest(events: list[InputEvent], settings: Settings, rules: RuleSet, progress: Progress | None = None) -> Backtest:
    """Run ``events`` (event-time order) under ``rules`` and count what each rule did."""
    counts = {r.id: RuleCounts() for r in rules.rules}
    alerts: list[dict[str, Any]] = []

    def observe(outputs: list[Output]) -> None:
        for o in outputs:
            if isinstance(o, Alert):
                c = counts.setdefault(o.rule, RuleCounts())
                c.fired += 1
                c.customers.add(o.customer_id)
                c.held_out += o.held_out
                alerts.append(o.to_dict())
            elif isinstance(o, Suppressed):
                counts.setdefault(o.rule, RuleCounts()).suppressed[o.why] += 1

    thresholds = replace(settings.rules(), triggers=rules)
    done = replay(events, settings, 1.0, settings.ltv_refit_days, progress, rules=thresholds,
                  ranked=ranked(settings), observe=observe)
    return Backtest(rules, len(events), counts, alerts, events[0].ts.isoformat() if events else None,
                    events[-1].ts.isoformat() if events else None, done.profiles)


def table(b: Backtest) -> Any:
    from rich.table import Table

    t = Table(title=f"backtest of rules {b.rules.digest} on {b.events:,} events ({b.start} to {b.end})")
    t.add_column("rule", no_wrap=True)
    for c in COLUMNS:
        t.add_column(c.replace("_", " "), justify="right", no_wrap=True)
    for rule in b.rules.rules:
        row = b.counts[rule.id].row()
        t.add_row(rule.id, *(f"{row[c]:,}" for c in COLUMNS))
    return t
