"""The thresholds the decision functions read, and what they know about the population.

``Rules`` is one small frozen value (``Settings.rules()`` builds it from configuration); ``Population`` is read from
Redis by the store once per batch (quantile bounds, the top-spend threshold) and kept up
to date by the worker (lifetime-value parameters and the cluster model, by version).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from streamproc.state.sessions import SessionRules

if TYPE_CHECKING:
    from streamproc.decisions.rfm import Bounds
    from streamproc.models.clusters import ClusterModel
    from streamproc.models.ltv import LtvParams
    from streamproc.models.online import ChurnModel, SatisfactionModel


@dataclass(frozen=True, slots=True)
class Rules:
    """Thresholds for lifecycle stages, sessions, scoring and alerts (``Settings.rules()`` builds
    them from configuration, where each is described)."""

    new_for: timedelta = timedelta(days=14)
    at_risk_after: timedelta = timedelta(days=21)
    churned_after: timedelta = timedelta(days=45)
    loyal_purchases: int = 5
    loyal_after: timedelta = timedelta(days=60)
    overdue_factor: float = 5.0
    overdue_sessions: int = 5
    overdue_min: timedelta = timedelta(days=3)
    unhappy_ratings: int = 1
    unhappy_max: float = 0.25
    recover_margin: float = 0.2
    low_rating_max: int = 2
    low_nps_max: int = 4
    dedupe_window: int = 64
    sessions: SessionRules = SessionRules()
    rescore_every: timedelta = timedelta(days=7)
    ltv_horizon_days: float = 90.0
    churn_label_after: timedelta = timedelta(days=30)
    snapshot_every: timedelta = timedelta(days=3)



@dataclass(frozen=True, slots=True)
class Population:
    """What a decision needs to know about all customers.

    ``top_spend`` is the smallest total spend inside the top fraction of customers, or
    ``None`` while too few customers have spent for the rank to mean anything; the same
    holds for the quantile ``Bounds`` of last-purchase time, orders, spend and CLV.
    ``ltv`` and ``clusters`` are ``None`` until the first population fit; ``churn`` and
    ``satisfaction`` until the learner publishes its first version.
    """

    top_spend: float | None = None
    recency: Bounds | None = None
    frequency: Bounds | None = None
    monetary: Bounds | None = None
    clv: Bounds | None = None
    ltv: LtvParams | None = None
    clusters: ClusterModel | None = None
    churn: ChurnModel | None = None
    satisfaction: SatisfactionModel | None = None

    def is_top_spender(self, spend: float) -> bool:
        return self.top_spend is not None and spend > 0 and spend >= self.top_spend
