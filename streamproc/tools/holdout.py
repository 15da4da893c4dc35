"""Churn scores against what customers did next: a held-out period at the end of a history.

In: a history's events in event-time order, the settings, and the length of the held-out
period. Out: ``Holdout``: the cut (the last event's time minus the period), how many customers
were known at the cut and how many of them did nothing in the period (churned), and the ROC
AUC against that outcome of each score read at the cut:

* ``served``: the churn score a read at the cut serves (``decisions.learning.churn_as_of``:
  the candidate the learner chose, from each profile as of the cut), the score a CRM gets;
* ``model``: the online River model's own P(churn);
* ``recency``: days since the last activity;
* ``palive``: BG/NBD 1 - P(alive) on purchase days, fitted at the cut as the worker fits it
  (None when the history has too few buyers, as MovieLens, where nobody buys);
* ``activity_bgnbd``: BG/NBD 1 - P(alive) fitted at the cut on *activity* days (every event
  counts, as a batch BTYD library is usually run on such logs), a baseline the product does
  not serve, there to say whether the served score keeps up with the classic model.

The models learn from the history before the cut only (``tools.evaluate.replay``); the
outcome is never a label the models learned from. AUC is exact (ties count half).

>>> round(auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 4)
0.75
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from scipy.stats import rankdata

from streamproc.decisions import learning, lifecycle
from streamproc.features.vector import vector
from streamproc.models import ltv
from streamproc.models.online import CHURN_FEATURES
from streamproc.records import InputEvent
from streamproc.settings import Settings
from streamproc.state import purchases
from streamproc.tools.evaluate import Progress, refit, replay

SCORES = ("served", "model", "recency", "palive", "activity_bgnbd")


@dataclass
class Holdout:
    """Every score's ROC AUC against churn in the held-out period (see the module docstring)."""

    cut: str
    holdout_days: float
    customers: int
    churned: int
    served: str | None
    label_days: float
    aucs: dict[str, float | None] = field(default_factory=dict)
    stages: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per lifecycle stage at the cut: customers in it, and how many of them were active in the period."""
    thresholds: dict[str, float] = field(default_factory=dict)
    """The lifecycle thresholds in force (days): ``at_risk`` and ``churned``."""

    def to_dict(self) -> dict[str, Any]:
        return {"cut": self.cut, "holdout_days": self.holdout_days, "customers": self.customers,
                "churned": self.churned, "served": self.served, "label_days": self.label_days, "auc": self.aucs,
                "stages": self.stages, "thresholds": self.thresholds}

    def lines(self) -> list[str]:
        """The report as text: the outcome, then one line per score."""
        share = self.churned / self.customers if self.customers else 0.0
        out = [f"held out: {self.holdout_days:g} days after {self.cut[:10]}; {self.customers:,} customers known "
               f"at the cut, {self.churned:,} ({share:.0%}) inactive in the period (churned); the models "
               f"learned churn labels of {self.label_days:g} days (STREAMPROC_CHURN_LABEL_DAYS)"]
        names = {"served": f"served churn score ({self.served})", "model": "online model",
                 "recency": "recency rule", "palive": "BG/NBD 1 - P(alive), purchase days",
                 "activity_bgnbd": "BG/NBD 1 - P(alive), activity days"}
        for key in SCORES:
            value = self.aucs.get(key)
            out.append(f"  {names[key]:<40} ROC AUC {'-' if value is None else f'{value:.3f}'}")
        if self.stages:
            out.append(f"lifecycle at the cut (at-risk after {self.thresholds['at_risk']:g} days, churned after "
                       f"{self.thresholds['churned']:g}), and how many of each stage were active in the period:")
            for stage, n in sorted(self.stages.items(), key=lambda kv: -kv[1]["customers"]):
                back = n["active_after"] / n["customers"] if n["customers"] else 0.0
                out.append(f"  {stage:<12} {n['customers']:>8,}   active after {n['active_after']:>8,} ({back:.0%})")
        return out


def auc(scores: Sequence[float], churned: Sequence[int]) -> float | None:
    """Exact ROC AUC of ``scores`` for the labels ``churned`` (1 churned); None with one class."""
    y = np.asarray(churned, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return None
    ranks = rankdata(np.asarray(scores, dtype=float))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def holdout(events: list[InputEvent], settings: Settings, holdout_days: float, step_days: float = 1.0,
            progress: Progress | None = None) -> Holdout:
    """Learn from the events before the cut, read every score at the cut, compare with the period after."""
    if not events:
        raise ValueError("the history has no events")
    cut = events[-1].ts - timedelta(days=holdout_days)
    before = [e for e in events if e.ts <= cut]
    if not before:
        raise ValueError(f"no event before the cut {cut.isoformat()}: hold out fewer than {holdout_days:g} days")
    back = {e.customer_id for e in events if e.ts > cut}
    run = replay(before, settings, step_days, settings.ltv_refit_days, progress)
    version = run.population.ltv.version + 1 if run.population.ltv is not None else 1
    pop = replace(run.population, ltv=refit(run.profiles, cut, version))
    rules = settings.rules()
    ids = sorted(run.profiles)
    y = [0 if cid in back else 1 for cid in ids]
    scores: dict[str, list[float]] = {k: [] for k in SCORES}
    activity = _activity_fit(before, cut)
    for cid in ids:
        p = run.profiles[cid]
        served = learning.churn_as_of(p, cut, pop, rules)
        v = vector(p, max(cut, p.last_seen))
        alive = learning.p_alive_as_of(p, cut, pop)
        base = learning.baselines(v, p, rules.churn_label_after, alive)
        scores["served"].append(served.p)
        scores["model"].append(pop.churn.predict({f: v[f] for f in CHURN_FEATURES})
                               if pop.churn is not None else base["recency"])
        scores["recency"].append(v["days_since_last"])
        scores["palive"].append(base["palive"])
        scores["activity_bgnbd"].append(activity.get(cid, 0.0))
    stages: dict[str, dict[str, int]] = {}
    for cid, churned in zip(ids, y):
        stage = run.profiles[cid].stage
        for t in lifecycle.inactivity(run.profiles[cid], cut, rules):
            stage = t.new
        n = stages.setdefault(stage, {"customers": 0, "active_after": 0})
        n["customers"] += 1
        n["active_after"] += 1 - churned
    aucs = {k: auc(s, y) for k, s in scores.items()}
    if pop.ltv is None:
        aucs["palive"] = None
    if not activity:
        aucs["activity_bgnbd"] = None
    served_name = pop.churn.served if pop.churn is not None else "recency"
    return Holdout(cut.isoformat(), holdout_days, len(ids), sum(y), served_name, settings.churn_label_days, aucs,
                   stages, {"at_risk": settings.at_risk_days, "churned": settings.churn_days})


def _activity_fit(events: list[InputEvent], cut: datetime) -> dict[str, float]:
    """1 - P(alive) at ``cut`` of each customer, from BG/NBD fitted on days with any activity."""
    days: dict[str, list[tuple[datetime, float]]] = {}
    for e in events:
        days.setdefault(e.customer_id, []).append((e.ts, 1.0))
    summaries = {cid: s for cid, ts in days.items() if (s := purchases.summarise(ts, cut)) is not None}
    try:
        params = ltv.fit(list(summaries.values()), version=0, fitted_at=cut)
    except ltv.FitError:
        return {}
    return {cid: 1.0 - ltv.p_alive(params, s) for cid, s in summaries.items()}
