"""The thresholds the decision functions read, as one small frozen value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from streamproc.settings import Settings


@dataclass(frozen=True, slots=True)
class Rules:
    """Thresholds for lifecycle stages and alerts (see ``Settings`` for their meaning)."""

    new_for: timedelta = timedelta(days=14)
    at_risk_after: timedelta = timedelta(days=21)
    churned_after: timedelta = timedelta(days=45)
    low_rating_max: int = 2
    low_nps_max: int = 4
    dedupe_window: int = 64

    @classmethod
    def from_settings(cls, s: Settings) -> Rules:
        return cls(
            new_for=timedelta(days=s.new_days),
            at_risk_after=timedelta(days=s.at_risk_days),
            churned_after=timedelta(days=s.churn_days),
            low_rating_max=s.low_rating_max,
            low_nps_max=s.low_nps_max,
            dedupe_window=s.dedupe_window,
        )


@dataclass(frozen=True, slots=True)
class Population:
    """What a decision needs to know about all customers: the spend of the top fraction.

    ``top_spend`` is the smallest total spend inside the top fraction of customers, or
    ``None`` while too few customers have spent for the rank to mean anything.
    """

    top_spend: float | None = None

    def is_top_spender(self, spend: float) -> bool:
        return self.top_spend is not None and spend > 0 and spend >= self.top_spend
