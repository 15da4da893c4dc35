"""Tests of the synthetic event generator: determinism, schema validity, ordering and the
hidden per-persona structure, recovered from the event stream in aggregate."""

from __future__ import annotations

import json
import statistics
import time
import tracemalloc
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, Callable

import fastjsonschema
import pytest

from streamproc.sim.generator import (
    CATEGORIES,
    TASTE_SHIFT_PERSONA,
    TASTES,
    TEXT_BANKS,
    CustomerTruth,
    GeneratorConfig,
    bundles,
    generate,
    ground_truth,
    taste_favourites,
)
from tests.builders import REPO

SCHEMAS = REPO / "topics" / "schemas"
SCHEMA_FILES = {"clickstream": "clickstream.v1.json", "purchase": "purchases.v1.json",
                "feedback": "feedback.v1.json"}
DEFAULT = GeneratorConfig()
SMALL = GeneratorConfig(customers=60, days=20, seed=3)
Event = dict[str, Any]


@dataclass(frozen=True)
class Stream:
    """The default config's events, their parsed timestamps and ground truth."""

    events: list[Event]
    times: list[datetime]
    truth: dict[str, CustomerTruth]

    def by_customer(self) -> dict[str, list[tuple[datetime, Event]]]:
        out: dict[str, list[tuple[datetime, Event]]] = defaultdict(list)
        for t, event in zip(self.times, self.events):
            out[event["customer_id"]].append((t, event))
        return out

    def persona(self, event: Event) -> str:
        return self.truth[event["customer_id"]].persona

    def personas(self) -> Counter[str]:
        return Counter(t.persona for t in self.truth.values())


@pytest.fixture(scope="module")
def stream() -> Stream:
    events = list(generate(DEFAULT))
    return Stream(events, [datetime.fromisoformat(e["ts"]) for e in events], ground_truth(DEFAULT))


def _lines(config: GeneratorConfig) -> list[str]:
    return [json.dumps(event) for event in generate(config)]


def _session_starts(stream: Stream) -> dict[str, datetime]:
    starts: dict[str, datetime] = {}
    for t, event in zip(stream.times, stream.events):
        if event["type"] == "clickstream":
            starts.setdefault(event["session_id"], t)
    return starts


def _sessions(stream: Stream) -> dict[str, list[Event]]:
    sessions: dict[str, list[Event]] = defaultdict(list)
    for event in stream.events:
        if event["type"] == "clickstream":
            sessions[event["session_id"]].append(event)
    return sessions


# ----- determinism, format, ordering -------------------------------------------------
def test_same_config_gives_byte_identical_stream() -> None:
    first, second = _lines(SMALL), _lines(SMALL)
    assert first and first == second


def test_different_seed_gives_different_stream() -> None:
    other = GeneratorConfig(customers=SMALL.customers, days=SMALL.days, seed=SMALL.seed + 1)
    assert _lines(SMALL) != _lines(other)


def test_default_volume_is_in_range_and_scales_with_customers() -> None:
    n_small = sum(1 for _ in generate(GeneratorConfig(customers=100, days=30)))
    n_double = sum(1 for _ in generate(GeneratorConfig(customers=200, days=30)))
    assert 1.6 < n_double / n_small < 2.4


def test_default_config_event_count(stream: Stream) -> None:
    assert 50_000 <= len(stream.events) <= 150_000
    assert set(Counter(e["type"] for e in stream.events)) == {"clickstream", "purchase", "feedback"}


def test_timestamps_ascend_within_the_window_in_utc(stream: Stream) -> None:
    assert all(a <= b for a, b in zip(stream.times, stream.times[1:]))
    assert stream.times[0] >= DEFAULT.start
    assert stream.times[-1] < DEFAULT.start + timedelta(days=DEFAULT.days)
    assert all(t.utcoffset() == timedelta(0) for t in stream.times)


def test_every_event_validates_against_its_schema(stream: Stream) -> None:
    validators: dict[str, Callable[[Event], Any]] = {
        kind: fastjsonschema.compile(json.loads((SCHEMAS / name).read_text()))
        for kind, name in SCHEMA_FILES.items()
    }
    for event in stream.events:
        validators[event["type"]](event)


def test_event_ids_are_unique(stream: Stream) -> None:
    ids = [e["event_id"] for e in stream.events]
    assert len(set(ids)) == len(ids)


def test_pii_is_fixed_per_customer(stream: Stream) -> None:
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in stream.events:
        for field in ("ip", "email", "phone"):
            if field in event:
                seen[(event["customer_id"], field)].add(event[field])
    assert all(len(values) == 1 for values in seen.values())
    ips = {v for (_, field), values in seen.items() if field == "ip" for v in values}
    assert all(ip.startswith(("203.0.113.", "198.51.100.", "192.0.2.")) for ip in ips)


def test_generation_streams_without_materialising_the_window() -> None:
    huge = GeneratorConfig(customers=200, days=3650)
    tracemalloc.start()
    started = time.perf_counter()
    first = list(islice(generate(huge), 2000))
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(first) == 2000
    assert elapsed < 5.0
    assert peak < 50 * 2**20


# ----- orders and sessions -----------------------------------------------------------
def test_purchase_totals_equal_sum_of_items(stream: Stream) -> None:
    purchases = [e for e in stream.events if e["type"] == "purchase"]
    assert purchases
    for p in purchases:
        assert p["total"] == round(sum(i["quantity"] * i["price"] for i in p["items"]), 2)


def test_clicks_in_a_session_are_seconds_to_minutes_apart(stream: Stream) -> None:
    gaps: list[float] = []
    previous: dict[str, datetime] = {}
    for t, event in zip(stream.times, stream.events):
        if event["type"] == "clickstream":
            if event["session_id"] in previous:
                gaps.append((t - previous[event["session_id"]]).total_seconds())
            previous[event["session_id"]] = t
    assert min(gaps) >= 2.0 and max(gaps) <= 180.0
    assert 10.0 < statistics.median(gaps) < 60.0


def _cart(session: list[Event]) -> Counter[str]:
    cart: Counter[str] = Counter()
    for event in session:
        if event["action"] == "add_to_cart":
            cart[event["sku"]] += event["quantity"]
        elif event["action"] == "remove_from_cart":
            cart[event["sku"]] -= event["quantity"]
    return +cart


def test_checkouts_become_purchases_of_the_cart_and_other_carts_are_abandoned(stream: Stream) -> None:
    purchases = {customer: [(t, e) for t, e in events if e["type"] == "purchase"]
                 for customer, events in stream.by_customer().items()}
    checkout_times = {e["event_id"]: t for t, e in zip(stream.times, stream.events)
                      if e.get("action") == "checkout"}
    checked_out = abandoned = 0
    for session in _sessions(stream).values():
        cart = _cart(session)
        if not cart:
            continue
        checkout = [e for e in session if e["action"] == "checkout"]
        if not checkout:
            abandoned += 1
            continue
        checked_out += 1
        at = checkout_times[checkout[0]["event_id"]]
        after = [(t, p) for t, p in purchases[checkout[0]["customer_id"]] if t > at]
        t, purchase = after[0]
        assert timedelta(seconds=30) <= t - at <= timedelta(seconds=90)
        assert Counter({i["sku"]: i["quantity"] for i in purchase["items"]}) == cart
    assert checked_out > 500 and abandoned > 500


def test_feedback_on_an_order_follows_it_by_hours_to_days(stream: Stream) -> None:
    ordered = {e["order_id"]: t for t, e in zip(stream.times, stream.events) if e["type"] == "purchase"}
    lags = [t - ordered[e["order_id"]] for t, e in zip(stream.times, stream.events)
            if e["type"] == "feedback" and "order_id" in e]
    assert len(lags) > 200
    assert min(lags) >= timedelta(hours=2) and max(lags) <= timedelta(days=10, hours=2)


def test_feedback_text_sentiment_tracks_rating(stream: Stream) -> None:
    moods = {opener: mood for mood, (openers, _) in TEXT_BANKS.items() for opener in openers}
    checked = 0
    for event in stream.events:
        if event["type"] == "feedback" and "rating" in event and "text" in event:
            mood = next(m for opener, m in moods.items() if event["text"].startswith(opener))
            rating = event["rating"]
            assert mood == ("positive" if rating >= 4 else "neutral" if rating == 3 else "negative")
            checked += 1
    assert checked > 500


# ----- hidden structure --------------------------------------------------------------
def test_ground_truth_agrees_with_the_stream(stream: Stream) -> None:
    per_customer = stream.by_customer()
    assert set(per_customer) == set(stream.truth)
    for customer_id, truth in stream.truth.items():
        events = per_customer[customer_id]
        assert truth.signup == events[0][0] and truth.last_active == events[-1][0]
    assert stream.personas() == {"loyal": 125, "bargain_hunter": 125, "browser": 150, "drifting": 100}


def test_signups_spread_over_the_first_part_of_the_window(stream: Stream) -> None:
    days = [(t.signup - DEFAULT.start).days for t in stream.truth.values()]
    assert sum(d == 0 for d in days) >= 0.2 * len(days)
    assert max(days) <= 0.4 * DEFAULT.days and max(days) >= 0.3 * DEFAULT.days


def test_loyal_customers_buy_more_than_browsers(stream: Stream) -> None:
    buys = Counter(stream.persona(e) for e in stream.events if e["type"] == "purchase")
    share = stream.personas()
    assert buys["loyal"] / share["loyal"] > 5 * buys["browser"] / share["browser"]


def test_bargain_hunters_search_more_and_buy_cheaper(stream: Stream) -> None:
    searches = Counter(stream.persona(e) for e in stream.events if e.get("action") == "search")
    sessions = Counter(stream.persona(s[0]) for s in _sessions(stream).values())
    prices: dict[str, list[float]] = defaultdict(list)
    for e in stream.events:
        if e["type"] == "purchase" and e["currency"] == "EUR":
            prices[stream.persona(e)] += [i["price"] for i in e["items"]]
    per_session = {p: searches[p] / sessions[p] for p in ("bargain_hunter", "loyal")}
    assert per_session["bargain_hunter"] > 2 * per_session["loyal"]
    assert statistics.median(prices["bargain_hunter"]) < 0.7 * statistics.median(prices["loyal"])


def test_browsers_mostly_view_pages(stream: Stream) -> None:
    actions = Counter(e["action"] for e in stream.events if e["type"] == "clickstream"
                      and stream.persona(e) == "browser")
    assert actions["page_view"] > 0.75 * sum(actions.values())


def test_loyal_ratings_are_mostly_high(stream: Stream) -> None:
    ratings = [e["rating"] for e in stream.events if e["type"] == "feedback" and "rating" in e
               and stream.persona(e) == "loyal"]
    assert sum(r >= 4 for r in ratings) > 0.7 * len(ratings)


def _ratings(events: list[tuple[datetime, Event]]) -> list[int]:
    return [e["rating"] for _, e in events if e["type"] == "feedback" and "rating" in e]


def test_drifting_customers_ratings_turn_negative(stream: Stream) -> None:
    early: list[int] = []
    late: list[int] = []
    for customer_id, events in stream.by_customer().items():
        if stream.truth[customer_id].persona != "drifting":
            continue
        k = int(0.3 * len(events))
        early += _ratings(events[:k])
        late += _ratings(events[len(events) - k:])
    assert len(early) > 20 and len(late) > 20
    assert statistics.mean(late) < statistics.mean(early) - 1.0


def test_churn_flag_matches_last_activity(stream: Stream) -> None:
    end = DEFAULT.start + timedelta(days=DEFAULT.days)
    for truth in stream.truth.values():
        stopped_early = end - truth.last_active >= timedelta(days=14)
        assert truth.churned == (truth.persona == "drifting" and stopped_early)
    drifting = [t for t in stream.truth.values() if t.persona == "drifting"]
    churned_gaps = [(end - t.last_active).days for t in drifting if t.churned]
    assert len(churned_gaps) >= 0.75 * len(drifting)
    assert statistics.median(churned_gaps) >= 21


def test_weekends_have_more_sessions_per_day(stream: Stream) -> None:
    starts = _session_starts(stream).values()
    per_weekday = Counter(t.weekday() for t in starts)
    days = Counter((DEFAULT.start + timedelta(days=d)).weekday() for d in range(DEFAULT.days))
    weekend = sum(per_weekday[d] for d in (5, 6)) / sum(days[d] for d in (5, 6))
    weekday = sum(per_weekday[d] for d in range(5)) / sum(days[d] for d in range(5))
    assert weekend > 1.2 * weekday


def test_sessions_peak_in_the_evening(stream: Stream) -> None:
    hours = Counter(t.hour for t in _session_starts(stream).values())
    evening = sum(hours[h] for h in (19, 20, 21)) / 3
    night = sum(hours[h] for h in (2, 3, 4)) / 3
    morning = sum(hours[h] for h in (8, 9, 10)) / 3
    assert evening > 1.5 * morning and morning > 5 * night


def test_config_rejects_invalid_values() -> None:
    with pytest.raises(ValueError):
        GeneratorConfig(days=0)
    with pytest.raises(ValueError):
        GeneratorConfig(customers=-1)
    with pytest.raises(ValueError):
        GeneratorConfig(start=datetime(2026, 1, 5))
    with pytest.raises(ValueError):
        GeneratorConfig(taste_shift_at=1.0)


def test_cadence_scales_how_often_customers_visit_and_buy() -> None:
    def counts(cadence: float) -> Counter[str]:
        return Counter(e["type"] for e in generate(GeneratorConfig(customers=120, days=120, seed=3, cadence=cadence)))

    weekly, monthly = counts(1.0), counts(0.25)
    for kind in ("clickstream", "purchase"):
        assert 0.15 < monthly[kind] / weekly[kind] < 0.4, (kind, monthly[kind], weekly[kind])
    with pytest.raises(ValueError, match="cadence"):
        GeneratorConfig(cadence=0)


# ----- items: tastes, bundles and the taste shift -------------------------------------
SHIFTED = GeneratorConfig(customers=300, days=120, seed=5, taste_shift_at=0.5)


@pytest.fixture(scope="module")
def shifted() -> Stream:
    events = list(generate(SHIFTED))
    return Stream(events, [datetime.fromisoformat(e["ts"]) for e in events], ground_truth(SHIFTED))


def _skus(order: Event) -> set[str]:
    return {line["sku"] for line in order["items"]}


def test_bundle_partners_are_bought_in_the_same_order_when_it_has_room(stream: Stream) -> None:
    partners = {sku: set(b) - {sku} for b in bundles(DEFAULT) for sku in b}
    assert len(partners) == 8 * 9
    with_room = [e for e in stream.events if e["type"] == "purchase"
                 and any(line["sku"] in partners for line in e["items"][:-1])]
    together = sum(any(partners.get(s, set()) & _skus(e) for s in _skus(e)) for e in with_room)
    assert together > 0.7 * len(with_room)


def test_customers_of_one_taste_buy_the_skus_their_taste_favours(stream: Stream) -> None:
    favoured = {t: {sku for c in CATEGORIES for sku in taste_favourites(DEFAULT, t, c, 5)} for t in range(TASTES)}
    bought: Counter[tuple[int, bool]] = Counter()
    for e in stream.events:
        if e["type"] == "purchase":
            taste = stream.truth[e["customer_id"]].taste
            for sku in _skus(e):
                bought[taste, sku in favoured[taste]] += 1
                bought[-1, sku in favoured[(taste + 1) % TASTES]] += 1
    own = bought[0, True] + bought[1, True] + bought[2, True] + bought[3, True]
    assert own > 2.5 * bought[-1, True]


def test_no_taste_shifts_by_default(stream: Stream) -> None:
    assert all(t.shift is None for t in stream.truth.values())


def test_after_the_shift_the_persona_buys_from_its_new_category_instead_of_the_old(shifted: Stream) -> None:
    truth = shifted.truth
    movers = {cid for cid, t in truth.items() if t.shift is not None}
    assert movers == {cid for cid, t in truth.items() if t.persona == TASTE_SHIFT_PERSONA}
    share: Counter[tuple[bool, str]] = Counter()
    for t, e in zip(shifted.times, shifted.events):
        shift = truth[e["customer_id"]].shift
        if e["type"] == "purchase" and shift is not None:
            after = t >= shift.at
            for line in e["items"]:
                share[after, "old" if line["category"] == shift.old else
                      "new" if line["category"] == shift.new else "other"] += 1
    assert share[False, "old"] > 3 * share[False, "new"] and share[True, "new"] > 3 * share[True, "old"]
