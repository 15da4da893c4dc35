"""The thresholds the decision functions read, and what they know about the population.

``Rules`` is one small frozen value (``Settings.rules()`` builds it from configuration); ``Population`` is read from
Redis by the store once per batch (quantile bounds, the top-spend threshold) and kept up
to date by the worker (lifetime-value parameters and the cluster model, by version).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from streamproc.state.items import ItemParams
from streamproc.state.sessions import SessionRules

if TYPE_CHECKING:
    from streamproc.decisions.rfm import Bounds
    from streamproc.decisions.triggers import RuleSet
    from streamproc.models.clusters import ClusterModel
    from streamproc.models.items import ItemView
    from streamproc.models.ltv import LtvParams
    from streamproc.models.online import ChurnModel, SatisfactionModel


@dataclass(frozen=True, slots=True)
class Rules:
    """Thresholds for lifecycle stages, sessions, scoring and alerts (``Settings.rules()`` builds
    them from configuration, where each is described)."""

    new_for: timedelta
    at_risk_after: timedelta
    churned_after: timedelta
    loyal_purchases: int
    loyal_after: timedelta
    overdue_factor: float
    overdue_sessions: int
    overdue_min: timedelta
    unhappy_ratings: int
    unhappy_max: float
    recover_margin: float
    dedupe_window: int
    sessions: SessionRules
    rescore_every: timedelta
    ltv_horizon_days: float
    churn_label_after: timedelta
    snapshot_every: timedelta
    triggers: RuleSet
    """The trigger rules in force (``decisions.triggers``); the processor swaps in a published version."""
    items: ItemParams | None = None
    """The item model's parameters (``state.items``); None: no item counting, no offers."""
    offers: int = 3
    """Offers a profile read and an alert carry."""
    repurchase: tuple[str, ...] = ()
    """Glob patterns of SKUs that customers normally buy again (offered though bought)."""


@dataclass(frozen=True, slots=True)
class Population:
    """What a decision needs to know about all customers.

    ``top_spend`` is the largest total spend outside the top fraction of customers: those who
    spent more are the top spenders, so customers tied at the boundary are outside and a
    population where most spent the same (one ride each, say) has few or no top spenders, not
    all of them; ``None`` while too few customers have spent for the rank to mean anything; the same
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
    items: ItemView | None = None
    """What the store read of the item counters for the batch's customers' recent items (offers)."""

    def is_top_spender(self, spend: float) -> bool:
        return self.top_spend is not None and spend > 0 and spend > self.top_spend
