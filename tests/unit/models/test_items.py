"""The item model: forward-decayed counters, their batch sums, the Redis-shaped table and the offers."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamproc.errors import ConfigError
from streamproc.models.items import ItemTable, Popularity, offers, popular
from streamproc.records import Click, Item, Purchase
from streamproc.sim.generator import GeneratorConfig, ground_truth
from streamproc.state.items import Increments, ItemParams, RecentItems, added, increments, merge, observe, rebase, step
from streamproc.tools.earlywarning import decoded_events
from tests.builders import SETTINGS

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAILY = ItemParams(half_life=timedelta(days=1), landmark=T0)
"""Weights are powers of two at whole days, so sums are exact."""
SKUS = st.sampled_from([f"S{i}" for i in range(8)])
BASKETS = st.lists(st.tuples(st.lists(SKUS, max_size=6), st.integers(0, 30)), max_size=12)


def day(d: float) -> datetime:
    return T0 + timedelta(days=d)


def table(*incs: Increments, params: ItemParams = DAILY) -> ItemTable:
    t = ItemTable(params)
    for inc in incs:
        t.apply(inc)
    return t


def test_an_interaction_weighs_double_one_half_life_later() -> None:
    a, b = increments(["A"], day(0), DAILY), increments(["A"], day(1), DAILY)
    assert (a.popularity, b.popularity) == ({"A": 1.0}, {"A": 2.0})


def test_a_basket_counts_each_item_once_and_each_pair_both_ways() -> None:
    inc = increments(["A", "B", "A"], day(0), DAILY)
    assert inc == Increments({"A": 1.0, "B": 1.0}, {("A", "B"): 1.0, ("B", "A"): 1.0})


def test_pairs_come_from_the_first_cap_items_and_popularity_from_all() -> None:
    inc = increments([f"S{i}" for i in range(50)], day(0), ItemParams(basket_cap=3))
    assert len(inc.popularity) == 50 and len(inc.co) == 3 * 2


@given(BASKETS)
def test_applying_a_batch_merged_equals_applying_it_one_by_one(baskets: list[tuple[list[str], int]]) -> None:
    incs = [increments(items, day(d), DAILY) for items, d in baskets]
    one_by_one, merged = table(*incs), table(merge(incs))
    assert (one_by_one.popularity, one_by_one.co) == (merged.popularity, merged.co)


@given(st.lists(SKUS, max_size=8), st.integers(1, 5))
def test_joining_one_item_at_a_time_sums_to_the_whole_basket(items: list[str], cap: int) -> None:
    params = ItemParams(half_life=DAILY.half_life, landmark=T0, basket_cap=cap)
    before: list[str] = []
    parts = []
    for item in dict.fromkeys(items):
        parts.append(added(before, item, day(0), params))
        before = before if len(before) >= cap else [*before, item]
    assert merge(parts) == merge([increments(items, day(0), params)])


def test_the_table_reads_as_zrevrange_ties_by_member_descending() -> None:
    t = table(increments(["A", "B"], day(0), DAILY), increments(["A", "C"], day(0), DAILY),
              increments(["A", "D"], day(1), DAILY))
    assert t.neighbours("A", 3) == [("D", 2.0), ("C", 1.0), ("B", 1.0)]
    assert t.top_popular(2) == [("A", 4.0), ("D", 2.0)] and t.weight("Z") == 0.0


def test_neighbour_sets_are_trimmed_to_their_heaviest_members() -> None:
    params = ItemParams(half_life=DAILY.half_life, landmark=T0, trim=2)
    t = table(*(increments(["A", b], day(d), params) for d, b in enumerate("BCD")), params=params)
    assert t.neighbours("A", 10) == [("D", 4.0), ("C", 2.0)]


def test_a_rebase_scales_every_counter_and_keeps_their_ratios() -> None:
    params = ItemParams(half_life=DAILY.half_life, landmark=T0, rebase_exponent=10)
    t = table(increments(["A", "B"], day(3), params), increments(["A"], day(12), params), params=params)
    plan = rebase(t.params, day(12.5))
    assert plan is not None and plan.factor == 2.0 ** -12 and plan.params.landmark == day(12)
    before = t.neighbours("A", 1)[0][1] / t.weight("A")
    t.scale(plan)
    t.apply(increments(["A"], day(12.5), t.params))
    assert t.neighbours("A", 1)[0][1] / (t.weight("A") - 2 ** 0.5) == pytest.approx(before)
    assert rebase(t.params, day(13)) is None


def test_params_are_checked() -> None:
    with pytest.raises(ConfigError):
        ItemParams(half_life=timedelta(0))
    with pytest.raises(ConfigError):
        ItemParams(recency=0)


def test_recent_items_follow_clicks_with_a_sku_and_purchases() -> None:
    r = RecentItems()
    for event in (Click("1", "C", day(0), "s1", "/p", "page_view", "A"),
                  Click("2", "C", day(0.01), "s1", "/", "search"),
                  Click("3", "C", day(0.02), "s1", "/p", "add_to_cart", "B", 1, 5.0),
                  Click("4", "C", day(0.03), "s1", "/cart", "remove_from_cart", "B", 1, 5.0),
                  Purchase("5", "C", day(0.04), "o1", (Item("A", 1, 5.0),), 5.0, "EUR"),
                  Click("6", "C", day(1), "s2", "/p", "page_view", "C")):
        r = observe(r, event, DAILY)
    assert r.skus == ("C", "A", "B") and r.bought == ("A",) and (r.session, r.basket) == ("s2", ("C",))
    assert json.loads(json.dumps(asdict(r)))["items"][0] == ["C", day(1).timestamp()]


def test_a_session_is_one_basket_joined_click_by_click() -> None:
    r, first = step(RecentItems(), Click("1", "C", day(0), "s1", "/p", "page_view", "A"), DAILY)
    r, second = step(r, Click("2", "C", day(0), "s1", "/p", "page_view", "B"), DAILY)
    _, again = step(r, Click("3", "C", day(0), "s1", "/p", "page_view", "A"), DAILY)
    assert merge([first, second, again]) == increments(["A", "B"], day(0), DAILY)


def test_recent_items_keep_the_last_ten_distinct_most_recent_first() -> None:
    r = RecentItems()
    for i in range(15):
        r = observe(r, Click(str(i), "C", day(i), "s", "/p", "page_view", f"S{i % 12}"), DAILY)
    assert r.skus == tuple(f"S{i % 12}" for i in range(14, 4, -1))


def _catalogue() -> ItemTable:
    return table(*(increments(b, day(0), DAILY) for b in (["cam", "lens"], ["cam", "lens"], ["cam", "bag"],
                                                           ["cam"], ["pop"], ["pop"], ["pop"], ["pop"], ["pop"])))


def test_offers_rank_by_share_of_the_recent_items_baskets_and_explain_it() -> None:
    t = _catalogue()
    v = t.view(["cam"], 5)
    got = offers(["cam"], (), v.neighbours, v.popularity, 3)
    assert [(o.item, o.source) for o in got] == [("lens", "co_occurrence"), ("bag", "co_occurrence"),
                                                 ("pop", "popularity")]
    assert got[0].reason == "bought or viewed with cam in 50% of the baskets that held it"
    assert got[0].score == 0.5 and got[2].reason == "popular now"


def test_offers_leave_out_bought_items_unless_buying_again_is_normal() -> None:
    t = _catalogue()
    v = t.view(["cam"], 5)
    ask = (["cam"], {"lens", "pop"}, v.neighbours, v.popularity, 3)
    assert [o.item for o in offers(*ask)] == ["bag", "cam"]
    assert [o.item for o in offers(*ask, {"lens"})] == ["lens", "bag", "cam"]
    assert [o.item for o in offers(*ask, lambda item: item == "pop")] == ["bag", "pop", "cam"]


def test_more_recent_items_weigh_more() -> None:
    t = table(increments(["A", "X"], day(0), DAILY), increments(["B", "Y"], day(0), DAILY))
    got = offers(["B", "A"], (), t.view("AB", 0).neighbours, Popularity({"A": 1.0, "B": 1.0}, []), 2)
    assert [(o.item, o.score) for o in got] == [("Y", 1.0), ("X", 0.9)]


def test_the_baseline_is_the_most_popular_not_bought() -> None:
    assert [o.item for o in popular({"A"}, [("A", 3.0), ("B", 2.0), ("C", 1.0)], 2)] == ["B", "C"]


def test_offers_follow_a_taste_shift_within_a_few_of_the_customers_events() -> None:
    """Every shifted customer's first offer is of their new category within 40 of their item events
    after the shift (clicks with a SKU and orders), half of them within 10."""
    config = GeneratorConfig(customers=300, days=120, seed=5, taste_shift_at=0.5)
    keys = SETTINGS.pseudonymiser()
    shifts = {keys.customer(cid): t.shift for cid, t in ground_truth(config).items() if t.shift is not None}
    events = [e for e in decoded_events(config, SETTINGS) if isinstance(e, (Click, Purchase))]
    category = {line.sku: line.category for e in events if isinstance(e, Purchase) for line in e.items}
    t, recent, seen, moved = ItemTable(ItemParams()), {}, Counter[str](), {}
    for e in events:
        r, inc = step(recent.get(e.customer_id, RecentItems()), e, t.params)
        t.apply(inc)
        recent[e.customer_id] = r
        shift = shifts.get(e.customer_id)
        if shift is None or e.ts < shift.at or e.customer_id in moved or (isinstance(e, Click) and e.sku is None):
            continue
        seen[e.customer_id] += 1
        v = t.view(r.skus, 50)
        got = offers(r.skus, set(r.bought), v.neighbours, v.popularity, 5)
        if got and category.get(got[0].item) == shift.new:
            moved[e.customer_id] = seen[e.customer_id]
    assert len(shifts) == 75 and set(moved) == set(shifts)
    assert max(moved.values()) <= 40 and sorted(moved.values())[len(moved) // 2] <= 10


def test_an_order_beyond_the_cap_counts_every_item_in_popularity() -> None:
    order = Purchase("1", "C", day(0), "o1", tuple(Item(f"S{i}", 1, 1.0) for i in range(30)), 30.0, "EUR")
    r, inc = step(RecentItems(), order, DAILY)
    assert len(inc.popularity) == 30 and len(inc.co) == 20 * 19 and len(r.items) == 10 and len(r.bought) == 30
