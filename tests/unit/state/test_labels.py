"""Churn labels that mature in event time (``state.labels``): each snapshot matures once, with its true label."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.state.labels import Matured, Pending, Snapshot, add, expire, next_due, on_activity

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)
HORIZON = 30 * DAY


def snap(days: float, customer: str = "c1") -> Snapshot:
    return Snapshot.take(customer, T0 + days * DAY, {"days_since_last": 0.0}, 0.5, {"recency": 0.1})


def labels(matured: list[Matured]) -> list[tuple[float, int, float]]:
    """(snapshot day, label, matured day) of each matured snapshot."""
    return [((m.snapshot.at - T0) / DAY, m.label, (m.at - T0) / DAY) for m in matured]


# ----- label maturation ------------------------------------------------------------------
def pending(*days: float) -> Pending:
    out: Pending = ()
    for day in days:
        out = add(out, snap(day))
    assert len(out) == len(days)
    return out


def test_retained_at_the_next_activity_and_released_at_the_horizon() -> None:
    state, matured = on_activity(pending(0), T0 + 3 * DAY, HORIZON)
    assert matured == [] and [s.retained_at for s in state] == [T0 + 3 * DAY]
    assert on_activity(state, T0 + 4 * DAY, HORIZON)[0] == state  # the first comeback is the one recorded
    assert labels(expire(state, T0 + HORIZON, HORIZON)[1]) == [(0, 0, 30)]


def test_churned_at_exactly_the_horizon() -> None:
    state = pending(0)
    assert expire(state, T0 + HORIZON - timedelta(seconds=1), HORIZON) == (state, [])
    assert expire(state, T0 + HORIZON, HORIZON) == ((), [Matured(snap(0), 1, T0 + HORIZON)])
    assert labels(expire(state, T0 + 90 * DAY, HORIZON)[1]) == [(0, 1, 30)]  # at the horizon, not at now
    assert next_due(state, HORIZON) == T0 + HORIZON and next_due((), HORIZON) is None


def test_activity_at_the_horizon_comes_too_late() -> None:
    """Whichever runs first, the timer or the activity, a snapshot at t is churned at t + horizon."""
    by_activity = on_activity(pending(0), T0 + HORIZON, HORIZON)
    by_timer = expire(pending(0), T0 + HORIZON, HORIZON)
    assert by_activity == by_timer == ((), [Matured(snap(0), 1, T0 + HORIZON)])


def test_snapshot_at_the_activity_time_is_not_a_comeback() -> None:
    state, matured = on_activity(pending(0, 5), T0 + 5 * DAY, HORIZON)
    assert matured == [] and [s.retained_at for s in state] == [T0 + 5 * DAY, None]


def test_several_pending_snapshots() -> None:
    """Rescored every 7 quiet days, then active on day 35: by then the first snapshot has churned."""
    state = pending(0, 7, 14, 21)
    assert next_due(state, HORIZON) == T0 + HORIZON
    state, matured = on_activity(state, T0 + 35 * DAY, HORIZON)
    assert labels(matured) == [(0, 1, 30)] and len(state) == 3
    state, matured = expire(state, T0 + 60 * DAY, HORIZON)
    assert labels(matured) == [(7, 0, 37), (14, 0, 44), (21, 0, 51)] and state == ()


def test_add_refuses_new_snapshots_and_never_drops_pending_ones() -> None:
    state = pending(0)
    assert add(state, snap(0)) is state  # the same scoring again
    assert add(state, snap(0.5)) is state  # within min_gap of a pending one
    assert add(state, snap(0.5), min_gap=timedelta(hours=1)) == (snap(0), snap(0.5))
    assert add(state, snap(-3)) == (snap(-3), snap(0))  # a late one goes in time order
    assert add(pending(0, 2, 4), snap(6), limit=3) == pending(0, 2, 4)
    with pytest.raises(ValueError):
        add(state, snap(1), min_gap=-DAY)


def test_snapshot_ids_are_deterministic() -> None:
    assert snap(1).id == snap(1).id != snap(1, customer="c2").id != snap(2).id
    assert len(snap(1).id) == 32


EVENTS = st.lists(st.tuples(st.sampled_from(["snap", "activity", "tick"]), st.integers(0, 200)), max_size=40).map(
    lambda events: [e for i, e in enumerate(events) if e[0] != "snap" or e not in events[:i]])
"""Snapshots, activities and watermark ticks, by hour; one scoring per instant (redelivered
events are dropped upstream, before they could rescore)."""


def run(events: list[tuple[str, int]], horizon: timedelta) -> tuple[set[str], Counter[str], list[Matured]]:
    """Apply ``events`` (kind, hour) in the order given; then expire everything."""
    state: Pending = ()
    added, matured = set[str](), list[Matured]()
    for kind, hour in events:
        ts = T0 + timedelta(hours=hour)
        if kind == "snap":
            state = add(state, Snapshot.take("c1", ts, {}, None, {}), min_gap=timedelta(hours=2))
            added.update(s.id for s in state)
        else:
            state, out = on_activity(state, ts, horizon) if kind == "activity" else expire(state, ts, horizon)
            matured += out
    state, out = expire(state, datetime.max.replace(tzinfo=timezone.utc), horizon)
    assert state == ()
    return added, Counter(m.snapshot.id for m in matured + out), matured + out


@settings(max_examples=300, deadline=None)
@given(EVENTS, st.integers(1, 100))
def test_every_snapshot_matures_exactly_once_whatever_the_interleaving(events: list[tuple[str, int]],
                                                                      horizon_hours: int) -> None:
    added, counts, _ = run(events, timedelta(hours=horizon_hours))
    assert set(counts) == added and set(counts.values()) <= {1}


@settings(max_examples=300, deadline=None)
@given(EVENTS, st.integers(1, 100))
def test_labels_in_event_time_order_are_the_definition(events: list[tuple[str, int]], horizon_hours: int) -> None:
    """Events in time order (ties in any order): retained iff active in (t, t + horizon);
    every label is released at t + horizon."""
    horizon = timedelta(hours=horizon_hours)
    in_order = sorted(events, key=lambda e: e[1])
    activity = sorted(T0 + timedelta(hours=h) for kind, h in in_order if kind == "activity")
    _, _, matured = run(in_order, horizon)
    for m in matured:
        t = m.snapshot.at
        nxt = next((a for a in activity if t < a < t + horizon), None)
        assert (m.label, m.at) == (1 if nxt is None else 0, t + horizon)


def test_snapshot_round_trips_through_json() -> None:
    assert Snapshot.from_dict(json.loads(json.dumps(snap(3).to_dict()))) == snap(3)
