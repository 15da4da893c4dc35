"""Lifecycle stages in event time: new, active, at_risk, churned, reactivated.

=============== ==================================================================
``new``         first activity; stays new for ``new_for``
``active``      a second purchase, or any activity once older than ``new_for``
``at_risk``     no activity for ``at_risk_after`` (event time)
``churned``     no activity for ``churned_after``
``reactivated`` activity while at_risk or churned; becomes active on its next purchase
=============== ==================================================================

Inactivity changes are timed at ``last_seen + threshold``, never at the moment they are
noticed, so a replay and a live run give the same transitions with the same times.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from streamproc.decisions.rules import Rules
from streamproc.ingest.events import InputEvent, Purchase
from streamproc.state.profile import Profile

DORMANT = ("at_risk", "churned")


@dataclass(frozen=True, slots=True)
class Transition:
    """A stage change with its event time and a reason a person can read."""

    old: str | None
    new: str
    at: datetime
    reason: str


def next_due(p: Profile, rules: Rules) -> datetime | None:
    """Event time at which inactivity would next change the stage, if nothing happens."""
    if p.stage == "churned":
        return None
    if p.stage == "at_risk":
        return p.last_seen + rules.churned_after
    return p.last_seen + rules.at_risk_after


def inactivity(p: Profile, now: datetime, rules: Rules) -> list[Transition]:
    """Every inactivity transition due at or before event time ``now``."""
    out: list[Transition] = []
    stage = p.stage
    if stage not in DORMANT and p.last_seen + rules.at_risk_after <= now:
        out.append(Transition(stage or None, "at_risk", p.last_seen + rules.at_risk_after,
                              f"no activity for {rules.at_risk_after.days} days"))
        stage = "at_risk"
    if stage == "at_risk" and p.last_seen + rules.churned_after <= now:
        out.append(Transition(stage, "churned", p.last_seen + rules.churned_after,
                              f"no activity for {rules.churned_after.days} days"))
    return out


def on_activity(p: Profile, event: InputEvent, rules: Rules) -> Transition | None:
    """The stage change, if any, caused by ``event`` (``p`` already includes it)."""
    if not p.stage:
        return Transition(None, "new", event.ts, "first activity")
    if p.stage in DORMANT and p.stage_since is not None and event.ts <= p.stage_since:
        return None  # a late event from before the customer went dormant: counted, not a comeback
    if p.stage in DORMANT:
        return Transition(p.stage, "reactivated", event.ts, f"active again after {p.stage.replace('_', '-')}")
    if p.stage == "new" and p.purchases >= 2 and isinstance(event, Purchase):
        return Transition("new", "active", event.ts, "second purchase")
    if p.stage == "new" and event.ts - p.first_seen >= rules.new_for:
        return Transition("new", "active", event.ts, f"still active {rules.new_for.days} days after first activity")
    if p.stage == "reactivated" and isinstance(event, Purchase) and p.stage_since and event.ts > p.stage_since:
        return Transition("reactivated", "active", event.ts, "purchase after reactivation")
    return None


def enter(p: Profile, t: Transition) -> Profile:
    """The profile in the stage ``t`` leads to."""
    return replace(p, stage=t.new, stage_since=t.at, stage_reason=t.reason)
