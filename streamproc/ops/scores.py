"""How current the scores are, over every customer (behind ``streamproc scores``).

In: every stored profile, the time of the read (the newest event time seen), and the models the
workers serve now (``Population``, with the population of the last fit). Out: ``Freshness``:
for the churn score and the value (P(alive), CLV, tier), the age in days of the one stored at
each customer's last rescoring and of the one a read serves now (``decisions.learning.
churn_as_of``, ``decisions.segments.as_of``), as quantiles, with the model versions behind
each and the churn candidate a read serves.

A profile is rescored when its customer changes; a quiet customer's stored scores age, and a
read recomputes them from the stored state as of the read, so every customer, churned ones
included, is served a score of the same time and models.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from streamproc.decisions import segments
from streamproc.decisions.learning import churn_as_of
from streamproc.decisions.rules import Population, Rules
from streamproc.state.profile import Profile

QUANTILES = (0.0, 0.5, 0.9, 0.99, 1.0)
DAY = 86400.0


def _ages(times: Sequence[datetime | None], now: datetime) -> dict[str, float | int]:
    ages = [(now - t).total_seconds() / DAY for t in times if t is not None]
    out: dict[str, float | int] = {"scored": len(ages), "unscored": len(times) - len(ages)}
    if ages:
        qs = np.quantile(np.asarray(ages), QUANTILES)
        out |= {f"q{int(q * 100)}": round(float(v), 2) for q, v in zip(QUANTILES, qs)}
    return out


@dataclass
class Freshness:
    """Score ages (days before ``at``) over ``customers`` profiles: stored and as a read serves them."""

    at: str
    customers: int
    churn_stored: dict[str, float | int] = field(default_factory=dict)
    churn_read: dict[str, float | int] = field(default_factory=dict)
    value_stored: dict[str, float | int] = field(default_factory=dict)
    value_read: dict[str, float | int] = field(default_factory=dict)
    churn_versions: dict[str, dict[str, int]] = field(default_factory=dict)
    churn_sources: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def lines(self) -> list[str]:
        """The figures as text, one line per score."""
        def row(name: str, a: Mapping[str, float | int]) -> str:
            spread = (f"median {a['q50']:g}, 90% {a['q90']:g}, 99% {a['q99']:g}, max {a['q100']:g} days"
                      if "q50" in a else "no score")
            return f"  {name:<34} {a['scored']:>7,} scored, {a['unscored']:>6,} without: {spread}"
        return [f"{self.customers:,} customers; scores as of {self.at}; age = that time minus the time a score is as of",
                row("churn risk, stored at last rescoring", self.churn_stored),
                row("churn risk, as a read serves it", self.churn_read),
                row("value (CLV, tier), stored", self.value_stored),
                row("value (CLV, tier), as a read serves", self.value_read),
                f"  churn model versions, stored: {self.churn_versions['stored']}; read: {self.churn_versions['read']}",
                f"  churn candidate a read serves: {self.churn_sources}"]


def freshness(profiles: Mapping[str, Profile], now: datetime, pop: Population, rules: Rules) -> Freshness:
    """The ages of every customer's stored and read scores at event time ``now``."""
    stored = list(profiles.values())
    churn = [churn_as_of(p, now, pop, rules) for p in stored]
    values = [segments.as_of(p, now, pop, rules).value for p in stored]
    return Freshness(
        at=now.isoformat(), customers=len(stored),
        churn_stored=_ages([p.churn.at if p.churn else None for p in stored], now),
        churn_read=_ages([c.at for c in churn], now),
        value_stored=_ages([p.value.at if p.value else None for p in stored], now),
        value_read=_ages([v.at if v else None for v in values], now),
        churn_versions={"stored": dict(sorted(Counter(str(p.churn.version) for p in stored if p.churn).items())),
                        "read": dict(sorted(Counter(str(c.version) for c in churn).items()))},
        churn_sources=dict(Counter(c.source for c in churn)),
    )
