"""Next-best offers from the item model's counters (``state.items``), and the counters in memory.

In:  a customer's recent items and bought SKUs (``state.items.RecentItems``), and an ``ItemView``:
     what the store read of the counters for those items.
Out: ``offers``, the top ``k`` items to offer, each with a score, a reason in words and its
     source; ``popular``, the baseline; ``ItemTable``, the counters in memory, applied and read
     the way the Redis store (``runtime.items``) applies and reads them.
Pure: no I/O, no clock.

Ties and trimming
-----------------
Readers order members as ``ZREVRANGE`` does: by weight, descending, then by member,
lexicographically descending. After a batch, the store trims every touched ``co:<a>`` to its
``trim`` (100) heaviest members (``ZREMRANGEBYRANK co:<a> 0 -(trim + 1)``); popularity is not
trimmed. A batch applied at once and the same baskets applied one by one differ only when a
set overflows ``trim`` in between.

Memory
------
Per item: one popularity member (about 110 bytes in Redis beyond 128 items), and one neighbour
set of at most ``trim`` members: a full one is 3,483 bytes by ``MEMORY USAGE``, so 10,000 items
with full sets take about 36 MB (``tests/integration/test_items_memory.py`` prints the sizes). Per customer: a
``RecentItems`` of at most ``recent`` (10) items with their times, ``bought`` (50) SKUs and
the open session's basket (``basket_cap`` SKUs): 834 bytes of JSON at the median, 955 at most, on a generated year.

Offers
------
The score of a candidate ``b`` is ``sum(recency ** i * co(a_i, b) / popularity(a_i))`` over the
customer's recent items ``a_0, a_1, ...`` (most recent first, ``recency`` 0.9: the tenth item
counts 0.39 of the first), over the ``neighbours`` (20) heaviest neighbours of each. In
``streamproc evaluate`` (hit rate at 10), 0.9 rather than 0.8 gave 9.5 % instead of 9.1 % on
the generated year, 10.6 % instead of 9.8 % at cadence 0.25, and 6.0 % instead of 6.1 % on
MovieLens; 50 neighbours instead of 20 added at most half a point and cost about 15-40 % more. Items the
customer bought are left out unless buying again is normal for them (``repurchase``); items
the customer only viewed or carted stay in (a viewed item not bought is a good offer). When
co-occurrence finds fewer than ``k``, the most popular items not left out fill the list, with
score 0. Equal scores are ordered by item. The reason names the recent item that contributed
most, and its share.

>>> from datetime import datetime, timezone
>>> from streamproc.state.items import increments, merge
>>> p = ItemParams()
>>> t = ItemTable(p)
>>> ts = datetime(2026, 3, 1, tzinfo=timezone.utc)
>>> t.apply(merge([increments(["cam", "lens"], ts, p), increments(["cam"], ts, p)]))
>>> v = t.view(["cam"], 5)
>>> got = offers(["cam"], (), v.neighbours, v.popularity, 2, params=v.params)
>>> [(o.item, o.source, o.reason) for o in got]
[('lens', 'co_occurrence', 'bought or viewed with cam in 50% of the baskets that held it'), \
('cam', 'popularity', 'popular now')]
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from streamproc.state.items import Increments, ItemParams, Rebase, RecentItems, Weighted


@dataclass(frozen=True, slots=True)
class Popularity:
    """What ``offers`` needs of the popularity set: ``weights`` of the recent items (the
    denominators) and ``top``, the most popular items, heaviest first (the fallback)."""

    weights: Mapping[str, float]
    top: Sequence[Weighted]


@dataclass(frozen=True, slots=True)
class ItemView:
    """What offers read of the counters for some items: each item's heaviest ``neighbours``
    (``ZREVRANGE co:<item>``), their popularity ``weights`` (``ZMSCORE``), the ``top`` most
    popular items, and the ``params`` they were counted with."""

    neighbours: Mapping[str, Sequence[Weighted]]
    weights: Mapping[str, float]
    top: Sequence[Weighted]
    params: ItemParams

    @property
    def popularity(self) -> Popularity:
        return Popularity(self.weights, self.top)


@dataclass(frozen=True, slots=True)
class Offer:
    """One item to offer; ``source`` is ``"co_occurrence"`` or ``"popularity"``."""

    item: str
    score: float
    reason: str
    source: str


# ----- offers ----------------------------------------------------------------------------
def offers(recent: Sequence[str], bought: Collection[str], neighbours: Mapping[str, Sequence[Weighted]],
           popularity: Popularity, k: int, repurchase: Callable[[str], bool] | Collection[str] = frozenset(),
           *, params: ItemParams = ItemParams()) -> list[Offer]:
    """The top ``k`` offers for a customer whose ``recent`` items (most recent first) have these
    ``neighbours`` (each item's heaviest co-occurring items), scored as the module docstring says."""
    again = repurchase if callable(repurchase) else repurchase.__contains__
    scores: dict[str, float] = {}
    best: dict[str, tuple[float, str, float]] = {}
    none = (0.0, "", 0.0)
    for rank, a in enumerate(recent):
        pop = popularity.weights.get(a, 0.0)
        if pop <= 0:
            continue
        scale = params.recency ** rank / pop
        for b, co in neighbours.get(a, ())[:params.neighbours]:
            if b in bought and not again(b):
                continue
            contribution = co * scale
            scores[b] = scores.get(b, 0.0) + contribution
            if contribution > best.get(b, none)[0]:
                best[b] = (contribution, a, co / pop)
    ranked = sorted((kv for kv in scores.items() if kv[1] > 0), key=lambda kv: (-kv[1], kv[0]))[:k]
    out = [Offer(b, score, f"bought or viewed with {best[b][1]} in {min(best[b][2], 1.0):.0%} of the baskets "
                 "that held it", "co_occurrence") for b, score in ranked]
    chosen = {o.item for o in out}
    return _fill(out, popularity.top, k, lambda item: item not in chosen and (item not in bought or again(item)))


def offers_for(recent: RecentItems, view: ItemView, k: int, repurchase: Sequence[str] = ()) -> list[Offer]:
    """A customer's top ``k`` offers from what ``view`` read of the counters; SKUs matching a
    ``repurchase`` glob pattern are offered though bought.

    >>> from datetime import datetime, timezone
    >>> from streamproc.state.items import increments
    >>> t, at = ItemTable(ItemParams()), datetime(2026, 3, 1, tzinfo=timezone.utc)
    >>> t.apply(increments(["tea", "cups", "FOOD-1"], at, t.params))
    >>> mine = RecentItems(items=(("tea", at.timestamp()),), bought=("FOOD-1", "tea"))
    >>> [o.item for o in offers_for(mine, t.view(mine.skus, 5), 3)]
    ['cups']
    >>> [o.item for o in offers_for(mine, t.view(mine.skus, 5), 3, ["FOOD-*"])]
    ['FOOD-1', 'cups']
    """
    def again(sku: str) -> bool:
        return any(fnmatchcase(sku, pattern) for pattern in repurchase)
    return offers(recent.skus, set(recent.bought), view.neighbours, view.popularity, k, again, params=view.params)


def popular(bought: Collection[str], top: Sequence[Weighted], k: int,
            repurchase: Callable[[str], bool] | Collection[str] = frozenset()) -> list[Offer]:
    """The baseline: the ``k`` most popular items the customer has not bought (unless repurchase)."""
    again = repurchase if callable(repurchase) else repurchase.__contains__
    return _fill([], top, k, lambda item: item not in bought or again(item))


def _fill(out: list[Offer], top: Sequence[Weighted], k: int, allowed: Callable[[str], bool]) -> list[Offer]:
    """``out`` and then the most popular ``allowed`` items, up to ``k`` offers."""
    for item, _ in top:
        if len(out) >= k:
            break
        if allowed(item):
            out.append(Offer(item, 0.0, "popular now", "popularity"))
    return out


# ----- the counters in memory --------------------------------------------------------------
def _order(pair: Weighted) -> tuple[float, str]:
    return pair[1], pair[0]


class ItemTable:
    """The popularity set and the neighbour sets in dicts, applied and read as the Redis store
    does (``ZINCRBY`` per counter, trim of touched neighbour sets, ``ZREVRANGE`` order)."""

    def __init__(self, params: ItemParams) -> None:
        self.params = params
        self.popularity: dict[str, float] = {}
        self.co: dict[str, dict[str, float]] = {}
        self._ranked: dict[str, list[Weighted]] = {}

    def apply(self, inc: Increments) -> None:
        """Add a batch's increments, then trim every touched neighbour set to ``params.trim``."""
        for item, w in inc.popularity.items():
            self.popularity[item] = self.popularity.get(item, 0.0) + w
        touched = set()
        for (a, b), w in inc.co.items():
            row = self.co.setdefault(a, {})
            row[b] = row.get(b, 0.0) + w
            touched.add(a)
        for a in touched:
            self._ranked.pop(a, None)
            row = self.co[a]
            while len(row) > self.params.trim:
                del row[min(row.items(), key=_order)[0]]

    def scale(self, plan: Rebase) -> None:
        """Carry out a rebase: every counter times ``plan.factor``, and the new landmark."""
        f = plan.factor
        self.popularity = {item: w * f for item, w in self.popularity.items()}
        self.co = {a: {b: w * f for b, w in row.items()} for a, row in self.co.items()}
        self._ranked = {}
        self.params = plan.params

    def weight(self, item: str) -> float:
        """``ZSCORE popularity item`` (0 for an unknown item)."""
        return self.popularity.get(item, 0.0)

    def neighbours(self, item: str, n: int) -> list[Weighted]:
        """``ZREVRANGE co:<item> 0 n-1 WITHSCORES``."""
        ranked = self._ranked.get(item)
        if ranked is None:
            ranked = self._ranked[item] = sorted(self.co.get(item, {}).items(), key=_order, reverse=True)
        return ranked[:n]

    def top_popular(self, n: int) -> list[Weighted]:
        """``ZREVRANGE popularity 0 n-1 WITHSCORES``."""
        return heapq.nlargest(n, self.popularity.items(), key=_order)

    def view(self, items: Iterable[str], top: int) -> ItemView:
        """The ``params.neighbours`` heaviest neighbours and the weight of each of ``items``, and
        the ``top`` most popular items (lists that later increments never change)."""
        items = list(items)
        return ItemView({a: self.neighbours(a, self.params.neighbours) for a in items},
                        {a: self.weight(a) for a in items}, self.top_popular(top), self.params)
