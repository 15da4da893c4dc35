"""Which churn score is served: the candidate with the best recent AUC, held until another is clearly better.

In:  the candidate served so far (``Serving``) and the rolling ROC AUC of every candidate on
     the same recent matured labels (``Window``, from ``ChurnMetrics.window_aucs``).
Out: the candidate to serve from now on, with the figures that decided it (``Serving``), for
     the published churn model (``ChurnModel.served``) and ``streamproc models``.

Candidates (``CANDIDATES``), each scored prequentially on its own score:

* ``model``: the online River model (``models.online``);
* ``recency``: the recency rule, ``days / (days + horizon)`` of inactivity;
* ``palive``: the BG/NBD probability of being dead, ``1 - P(alive)``.

Rules:

* The recency rule is served first, and kept while the window cannot tell the candidates
  apart: a model has to earn its place. Where one class is too rare in the window to compare
  (MovieLens raters, 97-99 % of whom never come back), the model learned from those labels
  ranked held-out inactivity worse than recency (0.94 against 0.99 over 90 days,
  ``streamproc evaluate --holdout-days``), and serving it first kept it served.
* A choice needs ``MIN_LABELS`` labels in the window with at least ``MIN_CLASS`` of each
  class; until then the candidate served stays.
* Another candidate replaces the one served only when its rolling AUC beats the served one's
  by at least the margin: ``MARGIN`` (0.01), or the standard error of the served one's AUC
  on the window (Hanley and McNeil, 1982) when that is larger. Candidates within the margin
  of each other do not take turns (hysteresis); the best of them by AUC is the challenger,
  the rule served first winning ties. The standard error matters where one class is rare: with 30
  churners in the window an AUC of 0.8 has a standard error of about 0.05, and on a generated
  year (``streamproc evaluate``, 300 customers) a fixed 0.01 margin switched candidates seven
  times in 12,857 labels, on windows of 20 to 80 churners.
* The learner decides every ``DECIDE_EVERY`` churn labels, not on publication, so the choice
  depends only on the labels learned, never on wall-clock time.

>>> w = Window(labels=1000, positives=100, aucs={"model": 0.80, "recency": 0.75, "palive": 0.60})
>>> choose(Serving(), w, learned=1000).candidate
'model'
>>> choose(Serving(), Window(1000, 100, {"model": 0.755, "recency": 0.75, "palive": 0.6}), learned=1000).candidate
'recency'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CANDIDATES: tuple[str, ...] = ("model", "recency", "palive")
FIRST = "recency"
MARGIN = 0.01
MIN_LABELS = 200
MIN_CLASS = 30
DECIDE_EVERY = 50


@dataclass(frozen=True, slots=True)
class Window:
    """The last matured labels: how many, how many churned, and each candidate's ROC AUC on them."""

    labels: int
    positives: int
    aucs: Mapping[str, float | None]

    def enough(self) -> bool:
        """``MIN_LABELS`` labels with ``MIN_CLASS`` of each class."""
        return self.labels >= MIN_LABELS and min(self.positives, self.labels - self.positives) >= MIN_CLASS


@dataclass(frozen=True, slots=True)
class Serving:
    """The candidate served, since which churn label (``since``), and why (``reason``, ``aucs``)."""

    candidate: str = FIRST
    since: int = 0
    reason: str = "served first: the model replaces it once it ranks recent labels clearly better"
    aucs: Mapping[str, float | None] = field(default_factory=dict)
    labels: int = 0

    def figures(self) -> dict[str, Any]:
        """JSON-ready: the candidate, since which label, why, and the rolling AUCs compared."""
        return {"candidate": self.candidate, "since": self.since, "reason": self.reason,
                "rolling_aucs": dict(self.aucs), "window_labels": self.labels, "margin": MARGIN}


def choose(current: Serving, window: Window, learned: int) -> Serving:
    """The candidate to serve after ``learned`` churn labels, given the rolling ``window``; see the module docstring."""
    aucs = {c: window.aucs.get(c) for c in CANDIDATES}
    if not window.enough() or any(a is None for a in aucs.values()):
        why = f"kept: fewer than {MIN_LABELS} recent labels with {MIN_CLASS} of each class to compare"
        return Serving(current.candidate, current.since, why, aucs, window.labels)
    held = aucs[current.candidate] or 0.0
    margin = max(MARGIN, auc_se(held, window.positives, window.labels - window.positives))
    best = max(CANDIDATES, key=lambda c: (aucs[c] or 0.0, c == FIRST))
    if best != current.candidate and (aucs[best] or 0.0) >= held + margin:
        why = f"rolling AUC {aucs[best]:.3f} beat {current.candidate}'s {held:.3f} by {margin:.3f} or more"
        return Serving(best, learned, why, aucs, window.labels)
    why = f"kept: rolling AUC {held:.3f}; no other candidate beats it by {margin:.3f} or more"
    return Serving(current.candidate, current.since, why, aucs, window.labels)


def auc_se(a: float, positives: int, negatives: int) -> float:
    """The standard error of an ROC AUC ``a`` on ``positives`` and ``negatives`` (Hanley and McNeil, 1982).

    >>> round(auc_se(0.8, 30, 970), 3), round(auc_se(0.8, 300, 700), 3)
    (0.049, 0.017)
    """
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = a * (1 - a) + (positives - 1) * (q1 - a * a) + (negatives - 1) * (q2 - a * a)
    return math.sqrt(max(var, 0.0) / (positives * negatives))
