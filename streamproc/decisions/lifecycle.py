"""Lifecycle stages in event time: new, active, loyal, at_risk, churned, reactivated.

=============== ==================================================================
``new``         first activity; stays new for ``new_for``
``active``      a second purchase, or any activity once older than ``new_for``
``loyal``       an active customer's purchase that brings them to ``loyal_purchases``
                purchases or more, once their first activity is ``loyal_after`` old
``at_risk``     no activity for ``at_risk_after`` (event time), or sooner once overdue:
                no visit for ``overdue_factor`` times the customer's usual time between
                visits; or, while still active,
                the mean of the last ``unhappy_ratings`` satisfaction scores falls to
                ``unhappy_max`` or below (feedback turning negative is the earliest sign
                of a customer drifting away)
``churned``     no activity for ``churned_after``
``reactivated`` activity while at_risk (for inactivity) or churned; becomes active on its
                next purchase. A customer at risk for being unhappy stays at risk while
                active, until their recent satisfaction recovers above ``unhappy_max +
                recover_margin`` (back to active) or they go quiet (churned).
=============== ==================================================================

Inactivity changes are timed at ``last_seen + threshold``, never at the moment they are
noticed, so a replay and a live run give the same transitions with the same times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from streamproc.decisions.rules import Rules
from streamproc.frozen import replace
from streamproc.records import Feedback, InputEvent, Purchase
from streamproc.state.profile import Profile

DORMANT = ("at_risk", "churned")
STEADY = ("new", "active", "loyal", "reactivated")
UNHAPPY = "satisfaction falling"
OVERDUE = "overdue"


@dataclass(frozen=True, slots=True)
class Transition:
    """A stage change with its event time and a reason a person can read."""

    old: str | None
    new: str
    at: datetime
    reason: str


def _risk_wait(p: Profile, rules: Rules) -> tuple[timedelta, timedelta | None]:
    """How long a quiet customer stays before becoming at-risk: ``at_risk_after``, or less when
    they are overdue, ``overdue_factor`` times their usual time between visits (at least
    ``overdue_min``) once ``overdue_sessions`` visits show what usual is. The usual time is
    returned with it when it is the reason, else ``None``."""
    if p.sessions < rules.overdue_sessions:
        return rules.at_risk_after, None
    usual = (p.last_seen - p.first_seen) / (p.sessions - 1)
    wait = max(usual * rules.overdue_factor, rules.overdue_min)
    if wait >= rules.at_risk_after:
        return rules.at_risk_after, None
    return wait, usual


def _risk_reason(wait: timedelta, usual: timedelta | None, rules: Rules) -> str:
    """Why a quiet customer became at-risk after ``wait`` (see ``_risk_wait``)."""
    if usual is None:
        return f"no activity for {rules.at_risk_after.days} days"
    return (f"{OVERDUE}: no visit for {_span(wait)}, {rules.overdue_factor:g}x the usual "
            f"{_span(usual)} between visits")


def _span(t: timedelta) -> str:
    """``3.0 days`` or ``5.0 hours``.

    >>> _span(timedelta(days=3)), _span(timedelta(hours=5))
    ('3.0 days', '5.0 hours')
    """
    days = t.total_seconds() / 86400
    return f"{days:.1f} days" if days >= 1 else f"{days * 24:.1f} hours"


def next_due(p: Profile, rules: Rules) -> datetime | None:
    """Event time at which inactivity would next change the stage, if nothing happens."""
    if p.stage == "churned":
        return None
    if p.stage == "at_risk":
        return p.last_seen + rules.churned_after
    return p.last_seen + _risk_wait(p, rules)[0]


def inactivity(p: Profile, now: datetime, rules: Rules) -> list[Transition]:
    """Every inactivity transition due at or before event time ``now``."""
    out: list[Transition] = []
    stage = p.stage
    wait, usual = _risk_wait(p, rules)
    if stage not in DORMANT and p.last_seen + wait <= now:
        out.append(Transition(stage or None, "at_risk", p.last_seen + wait, _risk_reason(wait, usual, rules)))
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
    if p.stage == "at_risk" and p.stage_reason.startswith(UNHAPPY):
        return _recovered(p, event, rules)
    if p.stage in DORMANT:
        return Transition(p.stage, "reactivated", event.ts, f"active again after {p.stage.replace('_', '-')}")
    if p.stage == "new" and p.purchases >= 2 and isinstance(event, Purchase):
        return Transition("new", "active", event.ts, "second purchase")
    if p.stage == "new" and event.ts - p.first_seen >= rules.new_for:
        return Transition("new", "active", event.ts, f"still active {rules.new_for.days} days after first activity")
    if p.stage == "reactivated" and isinstance(event, Purchase) and p.stage_since and event.ts > p.stage_since:
        return Transition("reactivated", "active", event.ts, "purchase after reactivation")
    if p.stage in STEADY and isinstance(event, Feedback) and (mean := _unhappy(p, rules)) is not None:
        what = "latest score" if rules.unhappy_ratings == 1 else f"mean of the last {rules.unhappy_ratings} scores"
        return Transition(p.stage, "at_risk", event.ts, f"{UNHAPPY}: {what} is {mean:.2f}")
    if p.stage == "active" and isinstance(event, Purchase) and _loyal(p, event, rules):
        days = (event.ts - p.first_seen).days
        return Transition("active", "loyal", event.ts, f"{p.purchases} purchases over {days} days")
    return None


def _unhappy(p: Profile, rules: Rules) -> float | None:
    """The recent mean satisfaction if it is low enough to put the customer at risk."""
    recent = p.recent_satisfaction[-rules.unhappy_ratings:]
    if len(recent) < rules.unhappy_ratings:
        return None
    mean = sum(recent) / len(recent)
    return mean if mean <= rules.unhappy_max else None


def _recovered(p: Profile, event: InputEvent, rules: Rules) -> Transition | None:
    recent = p.recent_satisfaction[-rules.unhappy_ratings:]
    if not isinstance(event, Feedback) or not recent:
        return None
    mean = sum(recent) / len(recent)
    if mean <= rules.unhappy_max + rules.recover_margin:
        return None
    return Transition("at_risk", "active", event.ts, f"satisfaction recovered: recent mean {mean:.2f}")


def _loyal(p: Profile, event: InputEvent, rules: Rules) -> bool:
    return p.purchases >= rules.loyal_purchases and event.ts - p.first_seen >= rules.loyal_after


def enter(p: Profile, t: Transition) -> Profile:
    """The profile in the stage ``t`` leads to."""
    return replace(p, stage=t.new, stage_since=t.at, stage_reason=t.reason)
