"""The event path as pure functions: typed events and profiles in, new profiles and outputs out.

``step`` handles one event of one customer::

    duplicate? -> inactivity transitions due before the event -> profile update
               -> lifecycle transition caused by the event -> alert rules

``apply_batch`` runs ``step`` over a batch in order; ``sweep`` moves customers with no new
events through the inactivity transitions that the partition's watermark has passed.
Nothing here touches Kafka, Redis or the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from streamproc.decisions import alerts, lifecycle
from streamproc.decisions.records import Alert, SegmentChange
from streamproc.decisions.rules import Population, Rules
from streamproc.ingest.events import InputEvent
from streamproc.state.profile import Profile, apply_event, new_profile

Output = SegmentChange | Alert


@dataclass
class BatchResult:
    """What a batch changed: profiles by customer id, outputs in order, and counts."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    applied: int = 0
    duplicates: list[InputEvent] = field(default_factory=list)
    failed: list[tuple[InputEvent, str]] = field(default_factory=list)


def _transition(p: Profile, t: lifecycle.Transition, cause: str | None, pop: Population) -> tuple[Profile, list[Output]]:
    p = lifecycle.enter(p, t)
    change = SegmentChange(p.customer_id, t.at, "lifecycle", t.old, t.new, t.reason, cause)
    return p, [change, *alerts.on_transition(p, t, pop)]


def expire(p: Profile, now: datetime, pop: Population, rules: Rules) -> tuple[Profile, list[Output]]:
    """The profile after every inactivity transition due by event time ``now``."""
    out: list[Output] = []
    for t in lifecycle.inactivity(p, now, rules):
        p, emitted = _transition(p, t, None, pop)
        out += emitted
    return p, out


def step(p: Profile | None, event: InputEvent, pop: Population, rules: Rules) -> tuple[Profile, list[Output], bool]:
    """One event for one customer: ``(profile, outputs, was_duplicate)``."""
    if p is not None and event.event_id in p.seen:
        return p, [], True
    out: list[Output] = []
    if p is None:
        p = new_profile(event)
    else:
        p, out = expire(p, event.ts, pop, rules)
    p = apply_event(p, event, rules.dedupe_window)
    t = lifecycle.on_activity(p, event, rules)
    if t is not None:
        p, emitted = _transition(p, t, event.event_id, pop)
        out += emitted
    out += alerts.on_event(p, event, pop, rules)
    return p, out, False


def _ts(event: InputEvent) -> datetime:
    return event.ts


def apply_batch(
    events: Iterable[InputEvent], profiles: Mapping[str, Profile | None], pop: Population, rules: Rules
) -> BatchResult:
    """Every event in event-time order (stable for ties); ``profiles`` holds the stored profile
    (or None) of each customer. Events of one customer arrive on several topics, so the
    batch is sorted by ``ts`` rather than applied in consumption order.

    An event whose processing raises is returned in ``failed`` and changes nothing.
    """
    current = dict(profiles)
    result = BatchResult()
    for event in sorted(events, key=_ts):
        try:
            p, out, dup = step(current.get(event.customer_id), event, pop, rules)
        except Exception as exc:  # a bug must cost one event (dead-lettered), not the stream
            result.failed.append((event, f"{type(exc).__name__}: {exc}"))
            continue
        if dup:
            result.duplicates.append(event)
            continue
        current[event.customer_id] = result.profiles[event.customer_id] = p
        result.outputs += out
        result.applied += 1
    return result


def sweep(profiles: Mapping[str, Profile], now: Mapping[str, datetime], pop: Population, rules: Rules) -> BatchResult:
    """Inactivity transitions for each customer up to its partition's watermark ``now[id]``."""
    result = BatchResult()
    for cid, p in profiles.items():
        new, out = expire(p, now[cid], pop, rules)
        if out:
            result.profiles[cid] = new
            result.outputs += out
    return result
