"""Prequential evaluation of next-best offers on hand-made streams whose answer is known."""

from __future__ import annotations

from streamproc.records import Click, Item, Purchase
from streamproc.tools.recoeval import evaluate
from tests.builders import at


def order(eid: str, customer: str, days: float, *skus: str) -> Purchase:
    return Purchase(eid, customer, at(days), f"o{eid}", tuple(Item(s, 1, 5.0) for s in skus), 5.0 * len(skus), "EUR")


def stream() -> list[Purchase]:
    """Three customers buy A with B; six others buy popular P items alone; Z buys A, then B."""
    bundles = [order(f"x{i}", f"X{i}", 1 + i / 10, "A", "B") for i in range(3)]
    popular = [order(f"p{i}{j}", f"P{i}{j}", 2 + i / 10 + j / 100, f"P{i}") for i in range(6) for j in range(3)]
    return [*bundles, *popular, order("z1", "Z", 3, "A"), order("z2", "Z", 4, "B")]


def test_a_co_bought_item_is_offered_where_popularity_misses_it() -> None:
    result = evaluate(stream(), ks=(5,), windows=2)
    got, rec, pop = result.to_dict(), result.overall["recommender", 5], result.overall["popularity", 5]
    assert (got["mode"], got["predictions"], got["items"]) == ("purchases", 23, 8)
    assert (rec.hits, pop.hits, rec.recall, pop.recall) == (1, 0, 1.0, 0.0)
    assert sum(w["predictions"] for w in got["timeline"]) == 23


def test_a_purchase_is_scored_against_the_offers_of_its_visits_start() -> None:
    """Z carts B in the visit that ends in the order: offering B back is not counted."""
    events = [*stream()[:-1], Click("c1", "Z", at(3.9), "z-s", "/p", "add_to_cart", "Q", 1, 5.0),
              Click("c2", "Z", at(3.95), "z-s", "/p", "add_to_cart", "B", 1, 5.0), order("z2", "Z", 4, "Q", "B")]
    result = evaluate(events, ks=(5,))
    assert (result.overall["recommender", 5].hits, result.overall["popularity", 5].hits) == (1, 0)
    assert result.overall["recommender", 5].recall == 0.5


def test_without_purchases_each_new_item_is_scored_against_the_offers_just_before() -> None:
    """U watches m1, m2, m3 on day 0 (nothing known yet, the day's popularity list is empty);
    V watches them again on day 1 and gets each offered first: three hits each."""
    clicks = [Click(f"{c}{i}", c, at(i / 10 + (c == "V")), f"{c}-day", "/m", "page_view", sku)
              for c in ("U", "V") for i, sku in enumerate(["m1", "m2", "m3"])]
    result = evaluate(clicks, ks=(5,))
    assert (result.mode, result.predictions) == ("interactions", 6)
    assert (result.overall["recommender", 5].hits, result.overall["popularity", 5].hits) == (3, 3)
