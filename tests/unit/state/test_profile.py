"""The profile update (``state.profile``): category spend adds up to spend, to the cent."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.records import Item, Purchase
from streamproc.state.profile import TOP_CATEGORIES, apply_event, new_profile, split_total
from tests.builders import at


def order(eid: str, days: float, total: float, lines: list[tuple[float, int, str | None]]) -> Purchase:
    items = tuple(Item(f"S{i}", qty, price, cat) for i, (price, qty, cat) in enumerate(lines))
    return Purchase(eid, "C", at(days), f"o{eid}", items, total, "EUR")


def cents(x: float) -> int:
    return round(x * 100)


def test_split_total_is_proportional_and_exact() -> None:
    assert split_total(10.0, {"a": 1.0, "b": 1.0, "c": 1.0}) == {"a": 3.34, "b": 3.33, "c": 3.33}
    assert split_total(9.0, {"a": 3.0, "b": 6.0}) == {"a": 3.0, "b": 6.0}
    assert split_total(5.0, {"a": 0.0, "b": 0.0}) == {"a": 2.5, "b": 2.5}
    assert split_total(0.0, {"a": 2.0}) == {"a": 0.0}


@settings(max_examples=200, deadline=None)
@given(total=st.floats(0, 1e6), weights=st.dictionaries(st.text(max_size=3), st.floats(0, 1e4), min_size=1, max_size=8))
def test_split_total_adds_up_to_the_cent(total: float, weights: dict[str, float]) -> None:
    shares = split_total(total, weights)
    assert set(shares) == set(weights) and sum(map(cents, shares.values())) == cents(total)


def test_category_spend_follows_the_order_total_not_the_rounded_item_prices() -> None:
    # three items at 3.333... each (a converted 10.00), rounded to 3.33 per item by the decoder
    o = order("a", 0, 10.0, [(3.33, 1, "books"), (3.33, 1, "games"), (3.33, 1, None)])
    p = apply_event(new_profile(o), o, 10)
    assert p.spend == 10.0 and sum(map(cents, p.categories.values())) == 1000
    assert set(p.categories) == {"books", "games", "other"}


def test_category_spend_adds_up_to_spend_over_many_orders_and_categories() -> None:
    rng = random.Random(5)
    first = order("0", 0, 1.0, [(1.0, 1, "c0")])
    p = apply_event(new_profile(first), first, 10)
    for i in range(1, 300):
        lines = [(round(rng.uniform(0.01, 80), 2), rng.randint(1, 3), rng.choice([None, *map("c{}".format, range(20))]))
                 for _ in range(rng.randint(1, 4))]
        total = round(sum(price * qty for price, qty, _ in lines) * rng.uniform(0.9, 1.1), 2)
        p = apply_event(p, order(str(i), i / 10, total, lines), 10)
        assert sum(map(cents, p.categories.values())) == cents(p.spend), i
    assert len(p.categories) == TOP_CATEGORIES and "other" in p.categories
