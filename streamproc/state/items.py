"""What the item model counts, and each customer's recent items: the state half of next-best offers.

In:  per customer, ``Click`` (with a ``sku``) and ``Purchase`` events in event-time order (``step``);
     baskets (the distinct SKUs of one order, or those one customer viewed or carted within one
     session) with their event time.
Out: ``RecentItems``, a customer's last items, bought SKUs and open session basket (kept in the
     profile); ``Increments``, the counter changes a basket causes (``increments``, ``added``),
     summed over a batch by ``merge``. ``models.items`` reads the counters to make offers; the
     store keeps them (``runtime.items``).
Pure: no I/O, no clock; only the events' own times.

Counters
--------
Three kinds, each a Redis sorted set in the store (``ItemTable`` is the same in dicts):

* ``popularity``: item -> decayed number of baskets that contain the item. It is also the
  denominator of every share: ``co(a, b) / popularity(a)`` is the decayed share of the
  baskets holding ``a`` that also hold ``b`` (at most 1: a basket adds to the pairs of an item
  only if it adds to the item). An interaction that does not start a basket or join one (the
  same SKU viewed twice in a session) adds nothing.
* ``co:<a>``, one set per item: ``b`` -> decayed number of baskets holding both ``a`` and
  ``b`` (``a != b``; both directions are stored, so ``co:<a>`` answers "what goes with a" in
  one ``ZREVRANGE``).
* A checkout counts twice, as its session's basket (the carted SKUs) and as the order's:
  bought-together pairs weigh more than viewed-together ones.

Pairs come from the first ``basket_cap`` (20) distinct SKUs of a basket, so a pathological
basket costs at most ``cap * (cap - 1)`` pair increments; later SKUs count in popularity only
(a session remembers its first ``basket_cap`` SKUs, so a later one counts again each time
it is clicked).
A session basket grows click by click: ``added`` gives the increments of one SKU joining it,
and joining SKUs one at a time sums to ``increments`` of the whole basket. The session is the
producer's ``session_id``: a SKU clicked in another session starts a new basket, and the
previous one is closed for good (a late click of it starts a basket of its own).

Forward decay (Cormode, Shkapenyuk, Srivastava, Xu, ICDE 2009)
--------------------------------------------------------------
An interaction at time ``t`` adds ``g(t) = 2 ** ((t - landmark) / half_life)`` instead of 1.
Every counter is then ``2 ** ((now - landmark) / half_life)`` times its exponentially decayed
count as of any ``now``, the same factor for all, so comparing or dividing counters compares
decayed counts: no decay pass, and a counter is changed only when it is incremented. Weights
grow by 2 each half-life, and a double holds 2 ** -1022 to 2 ** 1023: from the landmark
(2020-01-01 UTC) weights are exact within about 1,000 half-lives either side, 84 years at the
default half-life (30 days) and 38 at the shortest the settings allow (14 days: 1981-2058).
``rebase(params, ts)`` plans a move of the landmark once the exponent passes
``rebase_exponent`` (500): a new landmark a whole number of half-lives later, and the factor (a
power of two, so exact) to multiply every counter by; ``streamproc evaluate`` applies it. The
worker's store does not rebase: at the default half-life the exponent reaches 500 in 2061.

Memory per customer: a ``RecentItems`` of at most ``recent`` (10) items with their times,
``bought`` (50) SKUs and the open session's basket (``basket_cap`` SKUs): 834 bytes of JSON at
the median and 955 at most on a generated year (``tests/integration/test_items_memory.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from streamproc.errors import ConfigError
from streamproc.frozen import replace
from streamproc.records import Click, Purchase

LANDMARK = datetime(2020, 1, 1, tzinfo=timezone.utc)
Pair = tuple[str, str]
Weighted = tuple[str, float]


@dataclass(frozen=True, slots=True)
class ItemParams:
    """The model's parameters; ``landmark`` changes only by a ``rebase``."""

    half_life: timedelta = timedelta(days=30)
    landmark: datetime = LANDMARK
    basket_cap: int = 20
    trim: int = 100
    neighbours: int = 20
    recency: float = 0.9
    recent: int = 10
    bought: int = 50
    rebase_exponent: float = 500.0

    def __post_init__(self) -> None:
        if self.half_life <= timedelta(0):
            raise ConfigError(f"half-life must be positive, got {self.half_life}")
        if min(self.basket_cap, self.trim, self.neighbours, self.recent, self.bought) < 1:
            raise ConfigError("basket_cap, trim, neighbours, recent and bought must be at least 1")
        if not 0 < self.recency <= 1:
            raise ConfigError(f"recency must be in (0, 1], got {self.recency}")
        if self.landmark.tzinfo is None:
            raise ConfigError("landmark must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Increments:
    """Counter increments: popularity ``item -> +w`` and co-occurrence ``(a, b) -> +w``."""

    popularity: dict[str, float] = field(default_factory=dict)
    co: dict[Pair, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rebase:
    """Multiply every stored counter by ``factor`` and use ``params`` (its new landmark) from then on."""

    params: ItemParams
    factor: float



# ----- counters ------------------------------------------------------------------------
def exponent(ts: datetime, params: ItemParams) -> float:
    """Half-lives from the landmark to ``ts``: ``g(ts)`` is 2 to this power.

    >>> exponent(LANDMARK + timedelta(days=60), ItemParams())
    2.0
    """
    return (ts - params.landmark) / params.half_life


def weight(ts: datetime, params: ItemParams) -> float:
    """``g(ts)``, what one interaction at ``ts`` adds to a counter."""
    return 2.0 ** exponent(ts, params)


def basket(items: Iterable[str], cap: int) -> list[str]:
    """The first ``cap`` distinct items, in order.

    >>> basket(["a", "b", "a", "c"], 2)
    ['a', 'b']
    """
    return list(dict.fromkeys(items))[:cap]


def increments(basket_items: Iterable[str], ts: datetime, params: ItemParams) -> Increments:
    """The increments of one whole basket at ``ts``: every distinct item's popularity, and the
    pairs of its first ``basket_cap`` items."""
    distinct, w = list(dict.fromkeys(basket_items)), weight(ts, params)
    paired = basket(distinct, params.basket_cap)
    return Increments(dict.fromkeys(distinct, w), {(a, b): w for a in paired for b in paired if a != b})


def added(before: Sequence[str], item: str, ts: datetime, params: ItemParams) -> Increments:
    """The increments of ``item`` joining a basket whose first items are ``before`` (distinct).

    Nothing when ``item`` is already among them; only its popularity when the basket is full
    (``basket_cap``).
    """
    if item in before:
        return Increments()
    w = weight(ts, params)
    if len(before) >= params.basket_cap:
        return Increments({item: w})
    co = {(item, b): w for b in before} | {(b, item): w for b in before}
    return Increments({item: w}, co)


def merge(batch: Iterable[Increments]) -> Increments:
    """The sum of a batch's increments: one increment per counter."""
    pop: dict[str, float] = {}
    co: dict[Pair, float] = {}
    for inc in batch:
        for item, w in inc.popularity.items():
            pop[item] = pop.get(item, 0.0) + w
        for pair, w in inc.co.items():
            co[pair] = co.get(pair, 0.0) + w
    return Increments(pop, co)


def rebase(params: ItemParams, ts: datetime) -> Rebase | None:
    """The plan to move the landmark when weights at ``ts`` pass ``2 ** rebase_exponent``, else None.

    The new landmark is the whole number of half-lives before ``ts`` nearest to it, so the
    factor is an exact power of two and new weights start again near 1.

    >>> p = ItemParams(half_life=timedelta(days=1), rebase_exponent=10)
    >>> plan = rebase(p, LANDMARK + timedelta(days=12.5))
    >>> plan.params.landmark.date(), plan.factor
    (datetime.date(2020, 1, 13), 0.000244140625)
    >>> rebase(p, LANDMARK + timedelta(days=9)) is None
    True
    """
    e = exponent(ts, params)
    if e <= params.rebase_exponent:
        return None
    shift = math.floor(e)
    return Rebase(replace(params, landmark=params.landmark + shift * params.half_life), 2.0 ** -shift)


# ----- one customer's recent items ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RecentItems:
    """A customer's last distinct items with their last time (epoch seconds, most recent first),
    the SKUs they bought (most recent first), and the open session and its basket."""

    items: tuple[tuple[str, float], ...] = ()
    bought: tuple[str, ...] = ()
    session: str = ""
    basket: tuple[str, ...] = ()

    @property
    def skus(self) -> tuple[str, ...]:
        """The recent items, most recent first."""
        return tuple(sku for sku, _ in self.items)


NOTHING = Increments()


def step(recent: RecentItems, event: Click | Purchase,
         params: ItemParams) -> tuple[RecentItems, Increments]:
    """The customer's new ``RecentItems`` and the increments the event causes.

    A purchase is a basket of its own and its SKUs become bought; a click with a ``sku``
    (not a removal from the cart) joins its session's basket, a new one if the open basket is
    another session's. Other clicks change nothing (returned as they are: most clicks cost
    nothing here).
    """
    if isinstance(event, Purchase):
        skus = list(dict.fromkeys(line.sku for line in event.items))
        recent = RecentItems(_touch(recent.items, skus, event.ts.timestamp(), params.recent),
                             _front(recent.bought, skus, params.bought), recent.session, recent.basket)
        return recent, increments(skus, event.ts, params)
    if event.sku is None or event.action == "remove_from_cart":
        return recent, NOTHING
    before = recent.basket if event.session_id == recent.session else ()
    inc = added(before, event.sku, event.ts, params)
    full = event.sku in before or len(before) >= params.basket_cap
    joined = before if full else before + (event.sku,)
    items = _touch(recent.items, [event.sku], event.ts.timestamp(), params.recent)
    return RecentItems(items, recent.bought, event.session_id, joined), inc


def observe(recent: RecentItems, event: Click | Purchase, params: ItemParams = ItemParams()) -> RecentItems:
    """The customer's ``RecentItems`` after ``event``.

    >>> t = datetime(2026, 3, 1, tzinfo=timezone.utc)
    >>> r = observe(RecentItems(), Click("e1", "c", t, "s1", "/p", "add_to_cart", "A"))
    >>> r = observe(r, Click("e2", "c", t + timedelta(seconds=5), "s1", "/p", "page_view", "B"))
    >>> r.skus, r.basket
    (('B', 'A'), ('A', 'B'))
    """
    return step(recent, event, params)[0]


def _touch(items: tuple[tuple[str, float], ...], skus: Sequence[str], at: float,
           limit: int) -> tuple[tuple[str, float], ...]:
    """``items`` with ``skus`` seen at ``at``, most recent first, the first ``limit``."""
    before = dict(items)
    latest = {sku: max(at, before.get(sku, at)) for sku in skus}
    kept = [(sku, t) for sku, t in items if sku not in latest] + list(latest.items())
    kept.sort(key=lambda pair: -pair[1])
    return tuple(kept[:limit])


def _front(seq: tuple[str, ...], skus: Sequence[str], limit: int) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*skus, *seq]))[:limit]
