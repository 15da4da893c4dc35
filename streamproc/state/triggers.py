"""What the trigger rules remember about one customer, kept in the profile.

``inside``: rules whose condition held at their last evaluation (a rule that fires on entering
its condition fires again only after it stopped holding); ``last``: event time each rule last
fired for the customer (its cooldown); ``recent``: event times of the alerts of the last
frequency-cap window, across rules; ``held``: alerts held until the quiet hours end; ``risk``:
the served churn risk at the last rescoring. All in
event time, so a replay of the same events fires the same alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from streamproc.records import Alert


@dataclass(frozen=True, slots=True)
class TriggerMemory:
    inside: tuple[str, ...] = ()
    last: dict[str, datetime] = field(default_factory=dict)
    recent: tuple[datetime, ...] = ()
    held: tuple[Alert, ...] = ()
    risk: float | None = None
    """The served churn risk at the last rescoring rules saw (``score_change`` fires when it moves)."""

    def next_release(self) -> datetime | None:
        """When the first held alert is due (the end of its quiet hours)."""
        return min((a.deliver_at for a in self.held if a.deliver_at is not None), default=None)


EMPTY = TriggerMemory()
