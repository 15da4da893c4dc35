"""The event path as pure functions: typed events and profiles in, new profiles and outputs out.

``step`` handles one event of one customer::

    duplicate? -> timers due before the event (session ends, abandoned carts, inactivity,
                  rescoring, alerts held for quiet hours) -> profile update -> session ->
               lifecycle transition caused by the event -> RFM, value, cluster and scores
               (after purchases and feedback) -> trigger rules for what happened

``apply_batch`` runs ``step`` over a batch in event-time order; ``sweep`` fires the timers
of customers with no new events that the partition's watermark has passed.
Nothing here touches Kafka, Redis or the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from streamproc.decisions import alerts, learning, lifecycle, segments, triggers
from streamproc.decisions.catalogue import Trigger
from streamproc.decisions.rules import Population, Rules
from streamproc.features.population import FitGrid, FitRow, row
from streamproc.frozen import replace
from streamproc.records import Alert, Click, Example, Feedback, InputEvent, Purchase, SegmentChange, Suppressed
from streamproc.state import items, sessions
from streamproc.state.profile import Mark, Profile, apply_event, new_profile

Output = SegmentChange | Alert | Example | Suppressed
E = TypeVar("E")
HISTORY = 20
"""Lines of history a profile keeps (``remember``)."""


@dataclass
class BatchResult(Generic[E]):
    """What a batch changed: profiles by customer id, outputs in order, and counts; duplicates
    and failures are the batch's items (events, or the records that carry them)."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    applied: int = 0
    duplicates: list[E] = field(default_factory=list)
    failed: list[tuple[E, str]] = field(default_factory=list)
    rows: list[tuple[datetime, FitRow]] = field(default_factory=list)
    """``(fit time, row)`` of each fit time a changed customer moved past (``features.population``)."""
    items: list[items.Increments] = field(default_factory=list)
    """What the applied events add to the item model's counters (``state.items``), event by event."""


def _transition(p: Profile, t: lifecycle.Transition, cause: str | None) -> tuple[Profile, SegmentChange, Trigger]:
    p = lifecycle.enter(p, t)
    change = SegmentChange(p.customer_id, t.at, "lifecycle", t.old, t.new, t.reason, cause)
    return p, change, alerts.of_transition(t, cause)


def _carts(emitted: list[sessions.SessionOutput]) -> list[Trigger]:
    return [alerts.of_cart(o) for o in emitted if isinstance(o, sessions.CartAbandoned)]


def _rescore(p: Profile, now: datetime, pop: Population, rules: Rules, cause: str | None
             ) -> tuple[Profile, list[SegmentChange], list[Trigger]]:
    """Rescore ``p`` at ``now``: its segment changes, and the triggers of those and of a changed churn risk."""
    p, changes = segments.rescore(p, now, pop, rules)
    if cause is not None:
        changes = [replace(c, cause_event_id=cause) for c in changes]
    trigs = [alerts.of_segment(c) for c in changes]
    if "score_change" in rules.triggers.by_trigger:  # the served risk, as a read at ``now`` serves it
        served = learning.churn_as_of(p, now, pop, rules)
        if served.p != p.triggers.risk:
            trigs.append(alerts.of_score(p.triggers.risk, served, now, cause))
            p = replace(p, triggers=replace(p.triggers, risk=served.p))
    return p, changes, trigs


def next_due(p: Profile, rules: Rules) -> datetime | None:
    """Event time of the customer's next timer: session end, abandoned cart, inactivity, rescoring,
    or the end of quiet hours that hold an alert."""
    times = [lifecycle.next_due(p, rules), sessions.next_due(p.visits, rules.sessions),
             _rescore_due(p, rules), learning.next_due(p, rules), p.triggers.next_release()]
    return min((t for t in times if t is not None), default=None)


def _rescore_due(p: Profile, rules: Rules) -> datetime | None:
    """When a quiet customer is next rescored: every ``rescore_every`` until they churn, then on a
    geometric schedule, each time the silence has doubled since the last rescoring (at least
    ``rescore_every`` later). A read serves scores as of the read anyway (``learning.churn_as_of``);
    what the churned customer's rescorings add is a snapshot each, so the churn model and the
    choice of candidate also learn what months and years of silence lead to, the customers a
    read at the end of a long history mostly ranks, at a cost that grows with the log of the
    silence, not with it."""
    if p.scored_at is None:
        return None
    if p.stage == "churned":
        return p.scored_at + max(rules.rescore_every, p.scored_at - p.last_seen)
    return p.scored_at + rules.rescore_every


def expire(p: Profile, now: datetime, pop: Population, rules: Rules) -> tuple[Profile, list[Output]]:
    """The profile after every timer due by event time ``now``: session ends and abandoned carts,
    then, in event-time order and each at its own time, churn labels whose horizon passed,
    inactivity transitions and the periodic rescorings (every ``rescore_every`` after the
    previous one until the customer churns), each followed by the trigger rules for what it
    did; last, the alerts held for quiet hours that ended by ``now``. However far the watermark
    moved at once, the outputs are those of a watermark that passed every timer one by one:
    what they do depends only on event time."""
    visits, emitted = sessions.advance(p.visits, now, rules.sessions)
    p = replace(p, visits=visits) if visits is not p.visits else p
    out: list[Output] = []
    if carts := _carts(emitted):
        p, fired = triggers.fire(p, carts, pop, rules)
        out += fired
    while (at := _next_timer(p, rules)) is not None and at <= now:
        p, examples = learning.expire(p, at, rules)
        out += examples
        trigs: list[Trigger] = []
        for t in lifecycle.inactivity(p, at, rules):
            p, change, trig = _transition(p, t, None)
            out.append(change)
            trigs.append(trig)
        if (due := _rescore_due(p, rules)) is not None and due <= at:
            p, changes, more = _rescore(p, due, pop, rules, None)
            out += changes
            trigs += more
            trigs.append(alerts.of_timer(due))
        if trigs:
            p, fired = triggers.fire(p, trigs, pop, rules)
            out += fired
    p, released = triggers.release(p, now)
    return p, out + released


def _next_timer(p: Profile, rules: Rules) -> datetime | None:
    times = (learning.next_due(p, rules), lifecycle.next_due(p, rules), _rescore_due(p, rules))
    return min((t for t in times if t is not None), default=None)


def _visit(visits: sessions.Sessions, event: InputEvent, rules: Rules) -> tuple[sessions.Sessions, list[sessions.SessionOutput]]:
    if isinstance(event, Click):
        return sessions.on_click(visits, event, rules.sessions)
    if isinstance(event, Purchase):
        return sessions.on_purchase(visits, event, rules.sessions)
    return visits, []


def step(p: Profile | None, event: InputEvent, pop: Population, rules: Rules) -> tuple[Profile, list[Output], bool]:
    """One event for one customer: ``(profile, outputs, was_duplicate)``."""
    p, out, dup, _ = stepped(p, event, pop, rules)
    return p, out, dup


def stepped(p: Profile | None, event: InputEvent, pop: Population, rules: Rules
            ) -> tuple[Profile, list[Output], bool, items.Increments | None]:
    """``step``, and what the event adds to the item model's counters (None: nothing)."""
    if p is not None and event.event_id in p.seen:
        return p, [], True, None
    out: list[Output] = []
    if p is None:
        p = new_profile(event)
    else:
        p, out = expire(p, event.ts, pop, rules)
    before = p
    visits, emitted = _visit(p.visits, event, rules)
    p = apply_event(p, event, rules.dedupe_window, visits)
    counted = None
    if rules.items is not None and isinstance(event, (Click, Purchase)):
        recent, counted = items.step(p.items, event, rules.items)
        if recent is not p.items:
            p = replace(p, items=recent)
    trigs = _carts(emitted)
    p, examples = learning.on_activity(p, event.ts, rules)
    out += examples
    if isinstance(event, Feedback):
        p, examples = learning.on_feedback(before, p, event, pop)
        out += examples
    t = lifecycle.on_activity(p, event, rules)
    if t is not None:
        p, change, trig = _transition(p, t, event.event_id)
        out.append(change)
        trigs.append(trig)
    if p.scored_at is None or not isinstance(event, Click):
        p, changes, more = _rescore(p, event.ts, pop, rules, event.event_id)
        out += changes
        trigs += more
    if alerts.kind_of(event) in rules.triggers.by_trigger:
        trigs.append(alerts.of_event(event))
    if not trigs:
        return p, out, False, counted
    p, fired = triggers.fire(p, trigs, pop, rules)
    return p, out + fired, False, counted


def remember(p: Profile, outputs: Iterable[Output], keep: int = HISTORY) -> Profile:
    """``p`` with the lifecycle changes and alerts among ``outputs`` added to its history (the last ``keep``).

    >>> from datetime import timezone
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> p = new_profile(Click("e1", "c", at, "s", "/", "page_view"))
    >>> p = remember(p, [SegmentChange("c", at, "lifecycle", "new", "active", "second visit", "e1")])
    >>> p.history
    (Mark(at=datetime.datetime(2026, 1, 5, 0, 0, tzinfo=datetime.timezone.utc), kind='stage', what='new > active', why='second visit'),)
    """
    marks = [Mark(o.ts, "stage", f"{o.old or '-'} > {o.new}", o.reason)
             for o in outputs if isinstance(o, SegmentChange) and o.dimension == "lifecycle"]
    marks += [Mark(o.ts, "alert", o.rule, o.severity + (", held out" if o.held_out else "")) for o in outputs
              if isinstance(o, Alert)]
    if not marks:
        return p
    marks.sort(key=lambda m: m.at)
    return replace(p, history=(*p.history, *marks)[-keep:])


def _itself(item: Any) -> Any:
    return item


def fit_rows(p: Profile, t: datetime, grid: FitGrid | None, rules: Rules) -> list[tuple[datetime, FitRow]]:
    """The rows ``p`` leaves for the fit times a change at ``t`` moves it past (see ``features.population``):
    those from its newest event to ``t``. Redone by each later change, the first row left for a
    fit time is the one kept (the store does not overwrite a row)."""
    if grid is None:
        return []
    out = []
    for at in grid.crossed(p.last_seen, t):
        r = row(p, at, rules.sessions)
        if r is not None:
            out.append((at, r))
    return out


def apply_batch(
    events: Iterable[E], profiles: Mapping[str, Profile | None], pop: Population, rules: Rules,
    event_of: Callable[[E], InputEvent] = _itself, grid: FitGrid | None = None,
) -> BatchResult[E]:
    """Every event in event-time order (stable for ties); ``profiles`` holds the stored profile
    (or None) of each customer. Events of one customer arrive on several topics, so the
    batch is sorted by ``ts`` rather than applied in consumption order. The items are events,
    or values that carry one (``event_of`` gives it).

    An event whose processing raises is returned in ``failed`` and changes nothing. With the
    fit times ``grid``, a customer an event moves past a fit time leaves its row for that fit.
    """
    current = dict(profiles)
    result: BatchResult[E] = BatchResult()
    for item in sorted(events, key=lambda i: (event_of(i).ts, event_of(i).event_id)):
        event = event_of(item)
        before = current.get(event.customer_id)
        try:
            p, out, dup, counted = stepped(before, event, pop, rules)
            rows = fit_rows(before, event.ts, grid, rules) if before is not None and not dup else []
        except Exception as exc:  # a bug must cost one event (dead-lettered), not the stream
            result.failed.append((item, f"{type(exc).__name__}: {exc}"))
            continue
        if dup:
            result.duplicates.append(item)
            continue
        current[event.customer_id] = result.profiles[event.customer_id] = remember(p, out)
        result.outputs += out
        result.rows += rows
        if counted is not None and (counted.popularity or counted.co):
            result.items.append(counted)
        result.applied += 1
    return result


def sweep(profiles: Mapping[str, Profile], now: Mapping[str, datetime], pop: Population, rules: Rules,
          grid: FitGrid | None = None) -> BatchResult[Any]:
    """Every timer of each customer up to its partition's watermark ``now[id]``. A customer whose
    sessions a timer changed (the only timers a fit's row reads) leaves its rows for the fit times
    in ``grid`` it moved past."""
    result: BatchResult[Any] = BatchResult()
    for cid, p in profiles.items():
        new, out = expire(p, now[cid], pop, rules)
        new = remember(new, out)
        if out or new is not p:
            if new.visits is not p.visits:
                result.rows += fit_rows(p, now[cid], grid, rules)
            result.profiles[cid] = new
            result.outputs += out
    return result
