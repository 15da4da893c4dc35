"""Sessions by inactivity gap and abandoned carts, on scripted event-time timelines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.errors import ConfigError
from streamproc.ingest import Click, Item, Purchase
from streamproc.state.sessions import (
    CartAbandoned,
    SessionClosed,
    SessionOutput,
    SessionRules,
    Sessions,
    SessionTotals,
    advance,
    next_due,
    on_click,
    on_purchase,
)

T0 = datetime(2026, 1, 1, 9, tzinfo=timezone.utc)
RULES = SessionRules(timedelta(minutes=30), timedelta(hours=1))
Event = Click | Purchase


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def view(minutes: float) -> Click:
    return Click(f"v{minutes}", "C", at(minutes), "producer-session", "/p", "page_view")


def act(minutes: float, action: str, quantity: int | None = None, price: float | None = None) -> Click:
    return Click(f"{action}{minutes}", "C", at(minutes), "producer-session", "/p", action, "SKU", quantity, price)


def buy(minutes: float, total: float = 20.0) -> Purchase:
    return Purchase(f"b{minutes}", "C", at(minutes), f"o{minutes}", (Item("SKU", 1, total),), total, "EUR")


def feed(s: Sessions, event: Event, rules: SessionRules = RULES) -> tuple[Sessions, list[SessionOutput]]:
    return on_click(s, event, rules) if isinstance(event, Click) else on_purchase(s, event, rules)


def run(events: Sequence[Event], s: Sessions = Sessions(), rules: SessionRules = RULES,
        until: float | None = None) -> tuple[Sessions, list[SessionOutput]]:
    """Feed ``events`` in order, then advance to minute ``until`` if given."""
    out: list[SessionOutput] = []
    for e in events:
        s, emitted = feed(s, e, rules)
        out += emitted
    if until is not None:
        s, emitted = advance(s, at(until), rules)
        out += emitted
    return s, out


def closed(out: list[SessionOutput]) -> list[SessionClosed]:
    return [o for o in out if isinstance(o, SessionClosed)]


def abandoned(out: list[SessionOutput]) -> list[CartAbandoned]:
    return [o for o in out if isinstance(o, CartAbandoned)]


def test_empty_state_has_nothing_due() -> None:
    s, out = advance(Sessions(), at(10_000), RULES)
    assert (s, out, next_due(s, RULES)) == (Sessions(), [], None)


def test_rules_must_make_sense() -> None:
    with pytest.raises(ConfigError):
        SessionRules(gap=timedelta(0), abandon_after=RULES.abandon_after)
    with pytest.raises(ConfigError):
        SessionRules(gap=RULES.gap, abandon_after=timedelta(minutes=-1))


def test_click_just_before_the_gap_continues_the_session() -> None:
    just_before = 30 - 1 / 60_000_000  # one microsecond short of the gap
    s, out = run([view(0), view(just_before)])
    assert out == [] and s.open is not None and s.open.clicks == 2
    assert next_due(s, RULES) == at(just_before) + RULES.gap


def test_click_exactly_at_the_gap_starts_a_new_session() -> None:
    s, out = run([view(0), view(30)])
    assert closed(out) == [SessionClosed(at(0), at(0), 1, 1, 0.0, 0, 0.0, False)]
    assert s.open is not None and (s.open.start, s.open.clicks) == (at(30), 1)
    assert s.totals.sessions == 1


def test_watermark_closes_exactly_at_the_gap_not_before() -> None:
    s, _ = run([view(0)])
    s, out = advance(s, at(30) - timedelta(microseconds=1), RULES)
    assert out == [] and s.open is not None
    s, out = advance(s, at(30), RULES)
    assert len(closed(out)) == 1 and s.open is None and next_due(s, RULES) is None


def test_long_session_of_clicks_each_within_the_gap() -> None:
    minutes = [29 * i for i in range(10)]
    s, out = run([view(m) for m in minutes] + [act(261, "search")])
    assert out == [] and next_due(s, RULES) == at(261 + 30)
    s, out = advance(s, at(1000), RULES)
    assert closed(out) == [SessionClosed(at(0), at(261), 10, 11, 261 * 60.0, 0, 0.0, False)]
    assert s.totals == SessionTotals(sessions=1, duration_s=261 * 60.0, pages=10)


def test_producer_session_id_is_ignored() -> None:
    a = Click("a", "C", at(0), "s1", "/", "page_view")
    b = Click("b", "C", at(5), "s2", "/", "page_view")
    s, out = run([a, b], until=100)
    assert len(closed(out)) == 1 and closed(out)[0].clicks == 2


def test_cart_removed_to_zero_is_not_abandoned() -> None:
    s, out = run([act(0, "add_to_cart", 2, 10.0), act(5, "remove_from_cart", 3, 10.0)], until=500)
    assert closed(out)[0].cart_units == 0 and closed(out)[0].cart_value == 0.0
    assert abandoned(out) == [] and s.pending == ()
    assert (s.totals.cart_sessions, s.totals.abandoned) == (1, 0)


def test_cart_defaults_and_partial_removal() -> None:
    s, _ = run([act(0, "add_to_cart"), act(1, "add_to_cart", 2, 4.25), act(2, "remove_from_cart", 1, 4.25)])
    assert s.open is not None
    assert (s.open.cart_adds, s.open.cart_units, s.open.cart_value, s.open.first_cart_at) == (2, 2, 4.25, at(0))


def test_unbought_cart_is_abandoned_at_last_click_plus_window() -> None:
    events = [view(0), act(3, "add_to_cart", 2, 12.5), view(10), act(12, "checkout")]
    s, out = run(events)
    assert next_due(s, RULES) == at(42)
    s, out = advance(s, at(42), RULES)
    assert closed(out) == [SessionClosed(at(0), at(12), 2, 4, 720.0, 2, 25.0, True)]
    assert next_due(s, RULES) == at(72)
    s, out = advance(s, at(72) - timedelta(microseconds=1), RULES)
    assert out == []
    s, out = advance(s, at(72), RULES)
    assert out == [CartAbandoned(at(72), at(0), at(12), 2, 25.0)]
    assert next_due(s, RULES) is None
    t = s.totals
    assert (t.abandoned, t.abandoned_value, t.last_abandoned_at, t.last_abandoned_value) == (1, 25.0, at(72), 25.0)
    assert (t.cart_sessions, t.checkout_sessions) == (1, 1)


def test_purchase_after_the_session_within_the_window_converts_the_cart() -> None:
    s, out = run([act(0, "add_to_cart", 1, 30.0), view(5)])
    s, out = run([buy(50)], s)
    assert len(closed(out)) == 1 and s.pending == () and next_due(s, RULES) is None
    s, out = advance(s, at(1000), RULES)
    assert out == [] and s.totals.abandoned == 0


def test_purchase_one_microsecond_before_the_deadline_still_converts() -> None:
    last_chance = 65 - 1 / 60_000_000
    s, out = run([act(0, "add_to_cart", 1, 30.0), view(5), buy(last_chance)], until=1000)
    assert abandoned(out) == []


def test_purchase_at_or_after_the_deadline_does_not_undo_the_abandonment() -> None:
    s, out = run([act(0, "add_to_cart", 1, 30.0), view(5), buy(65)])
    assert abandoned(out) == [CartAbandoned(at(65), at(0), at(5), 1, 30.0)]
    later, more = run([buy(90)], s, until=1000)
    assert more == [] and later.totals == s.totals and later.totals.abandoned == 1


def test_purchase_during_the_session_empties_the_cart() -> None:
    s, out = run([act(0, "add_to_cart", 3, 5.0), buy(2)])
    assert out == [] and s.open is not None
    assert (s.open.cart_units, s.open.cart_value, s.open.first_cart_at) == (0, 0.0, None)
    s, out = run([view(4)], s, until=1000)
    assert closed(out)[0].cart_units == 0 and abandoned(out) == []
    assert s.totals.cart_sessions == 1


def test_cart_refilled_after_a_purchase_in_the_session_can_be_abandoned() -> None:
    s, out = run([act(0, "add_to_cart", 1, 5.0), buy(2), act(4, "add_to_cart", 1, 7.0)], until=1000)
    assert abandoned(out) == [CartAbandoned(at(64), at(0), at(4), 1, 7.0)]


def test_watermark_closes_then_fires_and_a_later_click_opens_a_new_session() -> None:
    s, _ = run([act(0, "add_to_cart", 1, 9.99)])
    steps = []
    for minute in (10, 30, 45, 60, 70):
        s, out = advance(s, at(minute), RULES)
        steps.append((minute, [type(o).__name__ for o in out], next_due(s, RULES)))
    assert steps == [
        (10, [], at(30)),
        (30, ["SessionClosed"], at(60)),
        (45, [], at(60)),
        (60, ["CartAbandoned"], None),
        (70, [], None),
    ]
    s, out = run([view(71)], s)
    assert out == [] and s.open is not None and s.open.start == at(71)
    s, out = advance(s, at(200), RULES)
    assert closed(out)[0].start == at(71) and s.totals.sessions == 2 and s.totals.abandoned == 1


def test_advance_backwards_changes_nothing() -> None:
    s, _ = run([view(0)], until=40)
    again, out = advance(s, at(10), RULES)
    assert again == s and out == []


def test_next_event_closes_and_fires_in_event_time_order() -> None:
    s, out = run([act(0, "add_to_cart", 1, 4.0), view(500)])
    assert [(type(o).__name__, o.end if isinstance(o, SessionClosed) else o.at) for o in out] == [
        ("SessionClosed", at(0)), ("CartAbandoned", at(60))]
    assert s.open is not None and s.open.start == at(500)


def test_late_click_is_counted_without_moving_times_backwards() -> None:
    s, _ = run([view(10), view(20)])
    due = next_due(s, RULES)
    s, out = run([act(15, "add_to_cart", 1, 8.0), act(5, "search")], s)
    assert out == [] and next_due(s, RULES) == due
    assert s.open is not None
    o = s.open
    assert (o.start, o.last, o.clicks, o.searches, o.cart_units, o.first_cart_at) == (at(10), at(20), 4, 1, 1, at(15))
    s, out = advance(s, at(1000), RULES)
    assert closed(out)[0].duration_s == 600.0 and abandoned(out)[0].at == at(80)


def test_late_click_after_a_close_does_not_reopen_the_closed_session() -> None:
    s, out = run([view(0), view(10)], until=45)
    assert len(closed(out)) == 1
    s, out = run([view(12)], s)
    assert s.open is not None and s.open.start == at(12) and s.open.clicks == 1
    s, out = advance(s, at(45), RULES)
    assert closed(out) == [SessionClosed(at(12), at(12), 1, 1, 0.0, 0, 0.0, False)]
    assert s.totals.sessions == 2


def test_late_purchase_from_before_the_first_cart_add_does_not_convert() -> None:
    s, _ = run([act(10, "add_to_cart", 1, 3.0)])
    s, _ = run([buy(5)], s)
    assert s.open is not None and s.open.cart_units == 1
    s, out = advance(s, at(1000), RULES)
    assert len(abandoned(out)) == 1


def test_a_long_window_keeps_several_carts_pending_in_deadline_order() -> None:
    rules = SessionRules(gap=RULES.gap, abandon_after=timedelta(hours=3))
    s, out = run([act(0, "add_to_cart", 1, 1.0), act(40, "add_to_cart", 1, 2.0)], rules=rules)
    s, out = advance(s, at(75), rules)
    assert [p.value for p in s.pending] == [1.0, 2.0] and next_due(s, rules) == at(180)
    s, out = run([buy(200)], s, rules=rules)
    assert out == [CartAbandoned(at(180), at(0), at(0), 1, 1.0)] and s.pending == ()
    s, out = advance(s, at(1000), rules)
    assert out == [] and s.totals.abandoned == 1


def test_derived_features_cover_closed_sessions_only() -> None:
    assert SessionTotals().mean_pages is None and SessionTotals().cart_share is None
    events = [view(0), view(1), view(2), act(3, "add_to_cart"),  # 3 pages, 180 s, a cart
              view(100), act(104, "checkout"),                   # 1 page, 240 s, a checkout
              view(300)]                                         # open: not counted yet
    s, _ = run(events)
    t = s.totals
    assert (t.sessions, t.mean_pages, t.mean_duration_s, t.cart_share, t.checkout_share) == (2, 2.0, 210.0, 0.5, 0.5)


@st.composite
def timelines(draw: st.DrawFn) -> tuple[list[Event], list[list[datetime]]]:
    """Events in time order, each with some watermarks between the previous event and it."""
    seconds = st.sampled_from([0, 1, 600, 1799, 1800, 1801, 3599, 3600, 3601, 5400]) | st.integers(0, 3 * 3600)
    kinds = st.sampled_from(["page_view", "search", "add_to_cart", "remove_from_cart", "checkout", "purchase"])
    events: list[Event] = []
    marks: list[list[datetime]] = []
    t = T0
    for i in range(draw(st.integers(0, 25))):
        step = timedelta(seconds=draw(seconds))
        kind, qty = draw(kinds), draw(st.none() | st.integers(1, 3))
        price = draw(st.none() | st.sampled_from([0.5, 9.99]))
        fractions = draw(st.lists(st.integers(0, 100), max_size=3))
        marks.append(sorted(t + step * f / 100 for f in fractions))
        t += step
        events.append(Purchase(f"e{i}", "C", t, f"o{i}", (), 5.0, "EUR") if kind == "purchase"
                      else Click(f"e{i}", "C", t, "s", "/", kind, "SKU", qty, price))
    return events, marks


@settings(max_examples=200, deadline=None)
@given(timelines())
def test_interleaved_watermarks_give_the_same_outputs_and_state(case: tuple[list[Event], list[list[datetime]]]) -> None:
    events, marks = case
    end = at(10 * 24 * 60)
    whole, out_whole = run(events)
    whole, tail = advance(whole, end, RULES)
    out_whole += tail
    s, out = Sessions(), []
    for event, watermarks in zip(events, marks):
        for w in watermarks:
            due = next_due(s, RULES)
            moved, emitted = advance(s, w, RULES)
            assert (moved != s) == (due is not None and due <= w)
            s, out = moved, out + emitted
        s, emitted = feed(s, event)
        out += emitted
    s, tail = advance(s, end, RULES)
    out += tail
    assert (s, out) == (whole, out_whole)
    clicks = [e for e in events if isinstance(e, Click)]
    assert len(closed(out)) == s.totals.sessions and sum(c.clicks for c in closed(out)) == len(clicks)
    assert s.open is None and s.pending == () and len(abandoned(out)) == s.totals.abandoned
