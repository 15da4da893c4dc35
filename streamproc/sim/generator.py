"""Deterministic synthetic customer events for streamproc.

In:  a ``GeneratorConfig`` (number of customers, number of days, seed, start time).
Out: ``generate(config)`` yields clickstream, purchase and feedback events as
     JSON-ready dicts in event-time order (``ts`` ascending) that validate against
     ``topics/schemas/clickstream.v1.json``, ``purchases.v1.json`` and
     ``feedback.v1.json``; ``ground_truth(config)`` returns the hidden structure
     behind the same stream, one ``CustomerTruth`` per customer id, ``bundles(config)``
     the SKUs bought together and ``taste_favourites`` the SKUs a taste favours.

Only the standard library is used.  All randomness comes from ``random.Random``
instances seeded from ``config.seed`` (three per customer, one each for the
catalogue, the tastes, the bundles and the persona assignment), so the same config always yields the same
byte-identical stream and a different seed yields a different one.

Hidden structure (the numbers are the constants below)
------------------------------------------------------
Personas, assigned with exact shares (largest remainder, then shuffled by seed):
loyal 25 %, bargain_hunter 25 %, browser 30 %, drifting 20 %.

==================  ========  =====  ======  =====  ========  =======  =============
profile             sessions  steps  search  cart   checkout  bargain  rating weights
                    /day                     /sess  /cart     picks    for 1..5
==================  ========  =====  ======  =====  ========  =======  =============
loyal               0.45      2-6    0.15    0.50   0.80      0.15     2/3/10/35/50
bargain_hunter      0.40      3-8    0.50    0.45   0.50      0.85     6/14/40/30/10
browser             0.10      1-4    0.10    0.12   0.30      0.40     5/10/30/35/20
declining           0.45      1-4    0.20    0.25   0.35      0.30     40/35/17/6/2
==================  ========  =====  ======  =====  ========  =======  =============

"sessions/day" is the Monday rate; "steps" the browsing steps per session;
"search" the share of steps that are searches; "bargain picks" the share of
product picks taken from the bargain list.  Carts hold up to 4 (loyal),
3 (bargain_hunter) or 2 (browser, declining) distinct products; quantity
weights for 1, 2, 3, 4 units: loyal 70/22/8, bargain_hunter 50/30/15/5,
browser 100, declining 85/15.  Feedback after a purchase: loyal 0.35,
bargain_hunter 0.30, browser 0.25, declining 0.60.  Unsolicited feedback after
a session: 0.02 (loyal, bargain_hunter), 0.03 (browser), 0.30 (declining).
In-store purchases (no session) per day: loyal 0.04, bargain_hunter 0.01,
browser 0.005, declining 0.

* Signup (first activity): 30 % of customers on day 0, the others on a
  uniformly drawn day among the first 40 % of the window; the first session
  starts at the signup time (at the latest 4 h before the window ends).
* Drifting customers follow the loyal profile until their drift start.
  90 % of them stop at a point drawn uniformly in 45-75 % of the window, 10 %
  only in 92-100 % of it (at least one day after signup).  The drift starts
  40-65 % of the way from signup to the stop point; from then on the session
  rate is multiplied by exp(-(t - drift) / tau) with tau = (stop - drift) / 3
  and the declining profile applies (fewer purchases, ratings and text turn
  negative); no event is generated at or after the stop point.
* ``churned`` is True for a drifting customer whose last event lies at least
  min(14 days, window / 4) before the end of the window.  With the 45-75 % /
  92-100 % split this separates the two groups of drifting customers.
* Weekly seasonality, session rate multipliers Mon..Sun:
  1.00, 0.95, 1.00, 1.05, 1.15, 1.50, 1.40.  Within a day, session starts
  follow hourly weights with a night low and an evening peak at 19-21 h.
* A session is 2-26 clickstream events, 2 s to 3 min apart (2 s plus an
  exponential with mean 25 s, capped at 180 s).  A cart session adds products
  (12 % remove one again when holding two or more), then either checks out
  (``/cart`` view, ``checkout`` event, purchase 30-90 s later with exactly the
  cart's items) or is abandoned (half of those view ``/cart`` first).
  Sessions of a customer are at least 10 minutes apart and never cut short: a
  visit that would not finish before the customer's horizon (end of window or
  drift stop) ends the customer's timeline.
* Feedback follows a purchase by 2 h plus an exponential with mean 30 h
  (capped at 10 days); unsolicited feedback comes 5-65 minutes after a session.
  The rating is drawn from the profile in force when the feedback is given;
  NPS and the sentiment of the text follow the rating.  40 % of feedback carries
  rating and NPS, 45 % only a rating, 15 % only an NPS; 75 % of post-purchase
  feedback and all unsolicited feedback has text.
* Customer attributes: currency EUR 80 %, USD 10 %, GBP 10 % (catalogue prices
  in EUR converted at 1.08 / 0.86); a primary device (mobile 55 %, desktop 35 %,
  tablet 10 %) used in 80 % of sessions; two favourite categories that get 70 %
  of category picks.  IPs come from the documentation ranges 203.0.113.0/24,
  198.51.100.0/24 and 192.0.2.0/24; e-mail ``c00042@example.com``, phone
  ``+44 7700 900042``.
* Catalogue: 8 categories x 50 SKUs (``SKU-1000`` to ``SKU-1399``) with
  log-uniform ``.99`` prices per category; 25 % are discounted by 15-50 %.
  Discounted products and the cheapest 30 % of a category are bargains.
  Popularity within a list is Zipf-like (weight 1 / rank^0.8).
* Tastes: each customer has one of ``TASTES`` (4) hidden tastes, drawn uniformly.  A taste
  is a permutation of every shelf (bargains among bargains, the others among the others)
  applied to each drawn product, so customers of one taste favour the same SKUs and those
  of another taste other ones, with the same Zipf-like concentration.
* Bundles: per category, three pairs and a triple of SKUs (``bundles(config)``).  When a
  bundle's SKU joins a cart or a store order, with probability ``BUNDLE_P`` (0.8) its
  partners take the places of the next new products of that order (so only orders with
  room get them); carted products are viewed just before, so partners are viewed in the
  same session too.  Tastes and bundles draw from their own random streams and only
  change which SKU a drawn product shows (``_Basket``): the number and times of events,
  cart sizes and every other choice are those of the catalogue without them.
* Taste shift (``GeneratorConfig.taste_shift_at``, off by default): from that fraction of
  the window on, every ``TASTE_SHIFT_PERSONA`` (loyal) customer replaces their second
  favourite category with another one, drawn per customer; a visit that starts after the
  shift uses the new favourites.  ``CustomerTruth.shift`` holds the time, old and new
  category.

Streaming: every customer is a lazy timeline yielding one sorted batch per visit
(its events plus the feedback it triggers); the timelines are merged on
(ts, customer, sequence number).  Memory is O(customers + events of the next
hour + feedback not yet due), not O(events).
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect, bisect_left
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from itertools import accumulate
from typing import Any, Iterator

Event = dict[str, Any]
Item = tuple[int, int, int, Event]  # (ms since start, customer index, sequence number, event)

SECOND_MS = 1_000
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MERGE_FLUSH_MS = HOUR_MS
SESSION_GAP_MS = 10 * MINUTE_MS
CHURN_GAP_MS = 14 * DAY_MS

PERSONA_SHARES: tuple[tuple[str, float], ...] = (
    ("loyal", 0.25), ("bargain_hunter", 0.25), ("browser", 0.30), ("drifting", 0.20),
)
WEEKDAY_WEIGHTS: tuple[float, ...] = (1.00, 0.95, 1.00, 1.05, 1.15, 1.50, 1.40)
HOUR_WEIGHTS: tuple[float, ...] = (
    1.0, 0.5, 0.3, 0.2, 0.2, 0.4, 1.0, 2.0, 3.0, 3.5, 4.0, 4.0,
    5.0, 4.5, 4.0, 4.0, 4.5, 5.0, 6.5, 8.0, 9.0, 8.0, 5.0, 2.5,
)
CURRENCIES: tuple[tuple[str, int, float], ...] = (("EUR", 80, 1.0), ("USD", 10, 1.08), ("GBP", 10, 0.86))
DEVICES: tuple[tuple[str, int], ...] = (("mobile", 55), ("desktop", 35), ("tablet", 10))
APP_SHARE: dict[str, float] = {"mobile": 0.7, "tablet": 0.4, "desktop": 0.0}
IP_PREFIXES: tuple[str, ...] = ("203.0.113", "198.51.100", "192.0.2")
REFERRERS: tuple[str, ...] = (
    "https://www.google.com/", "https://www.bing.com/", "https://newsletter.example.com/",
    "https://social.example.net/", "https://ads.example.org/",
)
SEARCH_MODIFIERS: tuple[str, ...] = ("cheap", "sale", "discount", "deal", "best price")

CATEGORIES: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "shoes": (30.0, 180.0, ("running shoes", "sneakers", "leather boots", "sandals", "hiking boots")),
    "apparel": (8.0, 120.0, ("t-shirt", "winter jacket", "jeans", "hoodie", "rain coat")),
    "electronics": (15.0, 900.0, ("headphones", "usb-c charger", "smartwatch", "bluetooth speaker",
                                  "laptop stand")),
    "home": (5.0, 250.0, ("coffee mug", "bed sheets", "desk lamp", "frying pan", "storage box")),
    "beauty": (4.0, 80.0, ("face cream", "shampoo", "lipstick", "sunscreen", "perfume")),
    "books": (6.0, 45.0, ("cookbook", "crime novel", "travel guide", "picture book", "biography")),
    "sports": (8.0, 300.0, ("yoga mat", "dumbbells", "tennis racket", "water bottle", "bike helmet")),
    "toys": (5.0, 120.0, ("lego set", "board game", "puzzle", "plush toy", "remote control car")),
}
CATEGORY_NAMES: tuple[str, ...] = tuple(CATEGORIES)
SKUS_PER_CATEGORY = 50
TASTES = 4
BUNDLES_PER_CATEGORY = (2, 2, 2, 3)
BUNDLE_P = 0.8
TASTE_SHIFT_PERSONA = "loyal"

TEXT_BANKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "positive": (
        ("Love it!", "Great experience.", "Very happy.", "Excellent service.", "Really pleased."),
        ("fast delivery", "great quality", "exactly as described", "friendly support",
         "will order again", "good value for money", "easy checkout"),
    ),
    "neutral": (
        ("It's okay.", "Decent.", "Average experience.", "Fine overall."),
        ("delivery took a while", "quality is as expected", "packaging could be better",
         "nothing special", "prices are average"),
    ),
    "negative": (
        ("Very disappointed.", "Not happy.", "Terrible experience.", "Frustrating."),
        ("delivery was late", "item arrived damaged", "support never answered", "poor quality",
         "refund still pending", "website keeps crashing", "will not order again"),
    ),
}
NPS_RANGES: dict[int, tuple[int, int]] = {1: (0, 3), 2: (2, 5), 3: (5, 7), 4: (7, 9), 5: (9, 10)}
PURCHASE_FEEDBACK_CHANNELS: tuple[tuple[str, int], ...] = (
    ("survey", 35), ("email", 30), ("app", 20), ("web", 15),
)
COMPLAINT_CHANNELS: tuple[tuple[str, int], ...] = (("chat", 40), ("email", 30), ("phone", 20), ("web", 10))

_HOUR_CUM: tuple[float, ...] = tuple(accumulate(HOUR_WEIGHTS))
_TWO_DIGITS: tuple[str, ...] = tuple(f"{i:02d}" for i in range(100))
_FRACTIONS: tuple[str, ...] = tuple(f"{i:03d}000" for i in range(1000))


# ----- public types ------------------------------------------------------------------
@dataclass(frozen=True)
class GeneratorConfig:
    """Size, seed and start of a generated data set."""

    customers: int = 500
    days: int = 90
    seed: int = 7
    start: datetime = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday
    cadence: float = 1.0
    """How often customers visit (and so buy), as a multiple of each persona's rate: 1 is the
    personas' own (regulars visit several times a week), 0.25 about a quarter as often (the
    loyal buy about monthly). Drift, churn and the catalogue are unchanged."""
    taste_shift_at: float | None = None
    """When (a fraction of the window) customers of ``TASTE_SHIFT_PERSONA`` swap their second
    favourite category for another one (``CustomerTruth.shift``); None: tastes never change."""

    def __post_init__(self) -> None:
        if not 0 < self.cadence <= 10:
            raise ValueError("cadence must be in (0, 10]")
        if self.customers < 0:
            raise ValueError("customers must be >= 0")
        if self.days < 1:
            raise ValueError("days must be >= 1")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if self.taste_shift_at is not None and not 0 < self.taste_shift_at < 1:
            raise ValueError("taste_shift_at must be in (0, 1)")


@dataclass(frozen=True)
class TasteShift:
    """From ``at`` on, the customer picks ``new`` where they picked their favourite ``old``."""

    at: datetime
    old: str
    new: str


@dataclass(frozen=True)
class CustomerTruth:
    """The hidden facts about one generated customer."""

    customer_id: str
    persona: str  # "loyal" | "bargain_hunter" | "browser" | "drifting"
    signup: datetime  # first activity
    last_active: datetime  # time of the customer's last generated event
    churned: bool  # True for drifting customers who stopped before the end
    taste: int = 0  # which of the TASTES orders the customer's shelves
    shift: TasteShift | None = None


# ----- behaviour profiles ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Profile:
    """Behaviour parameters of a persona, or of a drifting customer in decline."""

    sessions_per_day: float
    steps: tuple[int, int]
    search_p: float
    cart_p: float
    checkout_p: float
    max_items: int
    bargain_p: float
    quantity_cum: tuple[int, ...]
    feedback_p: float
    rating_cum: tuple[int, ...]
    complaint_p: float
    store_per_day: float


def _profile(rate: float, steps: tuple[int, int], search: float, cart: float, checkout: float,
             items: int, bargain: float, quantities: tuple[int, ...], feedback: float,
             ratings: tuple[int, ...], complaint: float, store: float) -> _Profile:
    """A profile from plain weights (turned into running sums for sampling)."""
    return _Profile(rate, steps, search, cart, checkout, items, bargain, tuple(accumulate(quantities)),
                    feedback, tuple(accumulate(ratings)), complaint, store)


PROFILES: dict[str, _Profile] = {
    "loyal": _profile(0.45, (2, 6), 0.15, 0.50, 0.80, 4, 0.15, (70, 22, 8), 0.35,
                      (2, 3, 10, 35, 50), 0.02, 0.04),
    "bargain_hunter": _profile(0.40, (3, 8), 0.50, 0.45, 0.50, 3, 0.85, (50, 30, 15, 5), 0.30,
                               (6, 14, 40, 30, 10), 0.02, 0.01),
    "browser": _profile(0.10, (1, 4), 0.10, 0.12, 0.30, 2, 0.40, (100,), 0.25,
                        (5, 10, 30, 35, 20), 0.03, 0.005),
    "declining": _profile(0.45, (1, 4), 0.20, 0.25, 0.35, 2, 0.30, (85, 15), 0.60,
                          (40, 35, 17, 6, 2), 0.30, 0.0),
}


# ----- sampling helpers --------------------------------------------------------------
def _cum_pick(rng: random.Random, cum: tuple[float, ...] | tuple[int, ...]) -> int:
    """Index drawn with the weights whose running sums are ``cum``."""
    return bisect(cum, rng.random() * cum[-1])


def _pick(rng: random.Random, options: tuple[str, ...]) -> str:
    return options[int(rng.random() * len(options))]


def _weighted(rng: random.Random, options: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([name for name, _ in options], weights=[w for _, w in options])[0]


def _between(rng: random.Random, low: int, high: int) -> int:
    """Uniform integer in [low, high]."""
    return low + int(rng.random() * (high - low + 1))


def _poisson(rng: random.Random, limit: float) -> int:
    """Poisson-distributed count with mean lambda, given ``limit`` = exp(-lambda) (Knuth)."""
    count, p = 0, rng.random()
    while p > limit:
        count += 1
        p *= rng.random()
    return count


def _time_of_day(rng: random.Random) -> int:
    """Milliseconds after the start of a day, following HOUR_WEIGHTS."""
    return _cum_pick(rng, _HOUR_CUM) * HOUR_MS + int(rng.random() * HOUR_MS)


# ----- catalogue ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Product:
    sku: str
    category: str
    prices: dict[str, float]  # currency -> unit price
    page: str  # "/p/<sku>"


@dataclass(frozen=True, slots=True)
class _Shelf:
    """The products of one category, all and bargains only, with Zipf-like weights."""

    products: tuple[_Product, ...]
    cum: tuple[float, ...]
    bargains: tuple[_Product, ...]
    bargain_cum: tuple[float, ...]
    page: str  # "/c/<category>"


def _zipf_cum(n: int) -> tuple[float, ...]:
    return tuple(accumulate(1.0 / (rank + 1) ** 0.8 for rank in range(n)))


def _eur_prices(rng: random.Random, low: float, high: float) -> list[tuple[float, bool]]:
    """(price, discounted) for each product of a category; list prices end in .99."""
    out: list[tuple[float, bool]] = []
    for _ in range(SKUS_PER_CATEGORY):
        price = max(1, round(low * (high / low) ** rng.random())) - 0.01
        discounted = rng.random() < 0.25
        if discounted:
            price = round(price * (1 - rng.uniform(0.15, 0.50)), 2)
        out.append((price, discounted))
    return out


def _shelf(rng: random.Random, category: str, first_sku: int) -> _Shelf:
    low, high, _ = CATEGORIES[category]
    priced = _eur_prices(rng, low, high)
    cheap_limit = sorted(price for price, _ in priced)[int(0.3 * len(priced))]
    products, bargains = [], []
    for offset, (eur, discounted) in enumerate(priced):
        sku = f"SKU-{first_sku + offset}"
        prices = {code: round(eur * rate, 2) for code, _, rate in CURRENCIES}
        products.append(_Product(sku, category, prices, f"/p/{sku}"))
        if discounted or eur < cheap_limit:
            bargains.append(products[-1])
    return _Shelf(tuple(products), _zipf_cum(len(products)), tuple(bargains),
                  _zipf_cum(len(bargains)), f"/c/{category}")


def _catalogue(seed: int) -> dict[str, _Shelf]:
    rng = random.Random(f"{seed}:catalogue")
    return {name: _shelf(rng, name, 1000 + i * SKUS_PER_CATEGORY) for i, name in enumerate(CATEGORY_NAMES)}


def _tastes(seed: int, catalogue: dict[str, _Shelf]) -> tuple[dict[str, _Product], ...]:
    """Per taste, the product each drawn product stands for: a permutation of every shelf that
    keeps bargains among bargains, so a taste reorders popularity and leaves prices' spread."""
    rng = random.Random(f"{seed}:tastes")
    tastes: list[dict[str, _Product]] = []
    for _ in range(TASTES):
        mapping: dict[str, _Product] = {}
        for shelf in catalogue.values():
            bargains = {p.sku for p in shelf.bargains}
            for group in (list(shelf.bargains), [p for p in shelf.products if p.sku not in bargains]):
                mapping.update(zip((p.sku for p in group), rng.sample(group, len(group))))
        tastes.append(mapping)
    return tuple(tastes)


def _bundles(seed: int, catalogue: dict[str, _Shelf]) -> dict[str, tuple[_Product, ...]]:
    """Each bundle SKU -> the other SKUs of its bundle (pairs and a triple per category)."""
    rng = random.Random(f"{seed}:bundles")
    partners: dict[str, tuple[_Product, ...]] = {}
    for shelf in catalogue.values():
        chosen = rng.sample(shelf.products, sum(BUNDLES_PER_CATEGORY))
        for size in BUNDLES_PER_CATEGORY:
            bundle, chosen = chosen[:size], chosen[size:]
            partners.update((p.sku, tuple(q for q in bundle if q is not p)) for p in bundle)
    return partners


# ----- customers ---------------------------------------------------------------------
def _persona_list(config: GeneratorConfig) -> list[str]:
    """Personas with exact shares (largest remainder), shuffled by the seed."""
    n = config.customers
    quotas = [(name, share * n) for name, share in PERSONA_SHARES]
    counts = {name: int(quota) for name, quota in quotas}
    by_remainder = sorted(quotas, key=lambda item: item[1] - int(item[1]), reverse=True)
    for name, _ in by_remainder[: n - sum(counts.values())]:
        counts[name] += 1
    personas = [name for name, _ in PERSONA_SHARES for _ in range(counts[name])]
    random.Random(f"{config.seed}:personas").shuffle(personas)
    return personas


@dataclass(frozen=True, slots=True)
class _Customer:
    """Fixed attributes and life cycle of one customer; times are ms since the start."""

    index: int
    customer_id: str
    persona: str
    seed: str
    currency: str
    device: str
    ip: str
    email: str
    phone: str
    favourites: tuple[str, str]
    signup: int
    horizon: int  # no event at or after this time
    drift: float  # decline starts here (infinite for non-drifting customers)
    tau: float  # decay time constant of the decline
    taste: int
    shift: tuple[int, str] | None  # (time, new second favourite) of a taste shift

    def favourites_at(self, t: int) -> tuple[str, str]:
        if self.shift is None or t < self.shift[0]:
            return self.favourites
        return self.favourites[0], self.shift[1]


def _signup(rng: random.Random, days: int) -> int:
    day = 0 if rng.random() < 0.3 else rng.randrange(max(1, math.ceil(0.4 * days)))
    return min(day * DAY_MS + _time_of_day(rng), days * DAY_MS - 4 * HOUR_MS)


def _drift_plan(rng: random.Random, signup: int, window: int) -> tuple[int, float, float]:
    """(stop, drift start, decay time constant) of a drifting customer."""
    low, high = (0.45, 0.75) if rng.random() < 0.9 else (0.92, 1.0)
    stop = max(int(rng.uniform(low, high) * window), signup + DAY_MS)
    drift = signup + rng.uniform(0.40, 0.65) * (stop - signup)
    return stop, drift, (stop - drift) / 3


def _customer(config: GeneratorConfig, index: int, persona: str) -> _Customer:
    seed = f"{config.seed}:customer:{index}"
    rng = random.Random(f"{seed}:traits")
    number = index + 1
    customer_id = f"C{number:05d}"
    window = config.days * DAY_MS
    signup = _signup(rng, config.days)
    stop, drift, tau = window, math.inf, 1.0
    if persona == "drifting":
        stop, drift, tau = _drift_plan(rng, signup, window)
    first, second = rng.sample(CATEGORY_NAMES, 2)
    currency = _weighted(rng, tuple((code, weight) for code, weight, _ in CURRENCIES))
    device = _weighted(rng, DEVICES)
    taste = rng.randrange(TASTES)
    shift = None
    if config.taste_shift_at is not None and persona == TASTE_SHIFT_PERSONA:
        others = [c for c in CATEGORY_NAMES if c not in (first, second)]
        shift = (int(config.taste_shift_at * window), rng.choice(others))
    return _Customer(
        index, customer_id, persona, seed,
        currency=currency, device=device,
        ip=f"{IP_PREFIXES[(index // 254) % 3]}.{index % 254 + 1}",
        email=f"{customer_id.lower()}@example.com",
        phone=f"+44 7700 900{number % 1000:03d}",
        favourites=(first, second),
        signup=signup, horizon=min(stop, window), drift=drift, tau=tau, taste=taste, shift=shift,
    )


class _World:
    """Everything the timelines of one config share: start, catalogue, customers."""

    def __init__(self, config: GeneratorConfig) -> None:
        start = config.start.astimezone(timezone.utc)
        self.start = start.replace(microsecond=start.microsecond // 1000 * 1000)
        self.midnight = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        self.offset = (self.start - self.midnight) // timedelta(milliseconds=1)
        self.window = config.days * DAY_MS
        self.cadence = config.cadence
        self.catalogue = _catalogue(config.seed)
        self.tastes = _tastes(config.seed, self.catalogue)
        self.bundles = _bundles(config.seed, self.catalogue)
        self.customers = [_customer(config, i, p) for i, p in enumerate(_persona_list(config))]
        self.dates: dict[int, str] = {}

    def timestamp(self, t: int) -> datetime:
        return self.start + timedelta(milliseconds=t)

    def hour_prefix(self, hour: int) -> str:
        """'YYYY-MM-DDTHH:' of the ``hour``-th hour after the UTC midnight before start."""
        day, hour_of_day = divmod(hour, 24)
        date = self.dates.get(day)
        if date is None:
            date = self.dates[day] = (self.midnight + timedelta(days=day)).date().isoformat()
        return f"{date}T{_TWO_DIGITS[hour_of_day]}:"


class _Session:
    """A session being built: id, device, its clock ``t`` and cart (sku -> [product, quantity])."""

    __slots__ = ("session_id", "device", "t", "cart")

    def __init__(self, session_id: str, device: str, t: int) -> None:
        self.session_id = session_id
        self.device = device
        self.t = t
        self.cart: dict[str, list[Any]] = {}


# ----- one customer's timeline -------------------------------------------------------
class _Sim:
    """Produces the events of one customer as sorted batches, one batch per visit."""

    __slots__ = ("c", "cid", "index", "ip", "world", "catalogue", "rng", "random", "weekday0", "base",
                 "declining", "limits", "signup_day", "batch", "n", "sessions", "orders", "hour", "prefix",
                 "taste", "picks", "favourites")

    def __init__(self, customer: _Customer, world: _World) -> None:
        self.c = customer
        self.cid, self.index, self.ip = customer.customer_id, customer.index, customer.ip
        self.world, self.catalogue = world, world.catalogue
        self.taste, self.favourites = world.tastes[customer.taste], customer.favourites
        self.rng = random.Random(customer.seed)
        self.picks = random.Random(f"{customer.seed}:items")
        self.random = self.rng.random
        self.weekday0 = world.start.weekday()
        self.hour, self.prefix = -1, ""  # the last formatted hour and its "YYYY-MM-DDTHH:"
        self.base = PROFILES["loyal" if customer.persona == "drifting" else customer.persona]
        self.declining = PROFILES["declining"]
        self.limits = tuple(math.exp(-self.base.sessions_per_day * world.cadence * w) for w in WEEKDAY_WEIGHTS)
        self.signup_day = customer.signup // DAY_MS
        self.batch: list[Item] = []
        self.n = self.sessions = self.orders = 0

    def profile(self, t: float) -> _Profile:
        return self.declining if t >= self.c.drift else self.base

    def activity(self, t: float) -> float:
        """Session-rate multiplier: 1 until the drift start, then exponential decay."""
        return 1.0 if t < self.c.drift else math.exp(-(t - self.c.drift) / self.c.tau)

    def day_rate(self, day: int) -> tuple[_Profile, float]:
        """The day's profile and exp(-expected sessions), the latter precomputed per weekday."""
        mid = day * DAY_MS + DAY_MS // 2
        weekday = (self.weekday0 + day) % 7
        if mid < self.c.drift:
            return self.base, self.limits[weekday]
        lam = self.declining.sessions_per_day * self.world.cadence * WEEKDAY_WEIGHTS[weekday] * self.activity(mid)
        return self.declining, math.exp(-lam)

    def visits(self, day: int) -> list[tuple[int, bool]]:
        """(start, is_store) of the day's planned visits, the signup session included."""
        base, rng = day * DAY_MS, self.rng
        prof, limit = self.day_rate(day)
        sessions = _poisson(rng, limit)
        store = rng.random() < prof.store_per_day * self.world.cadence
        if not (sessions or store or day == self.signup_day):
            return []
        planned = [(base + _time_of_day(rng), False) for _ in range(sessions)]
        if store:
            planned.append((base + 9 * HOUR_MS + int(rng.random() * 11 * HOUR_MS), True))
        if day == self.signup_day:
            planned = [v for v in planned if v[0] > self.c.signup] + [(self.c.signup, False)]
        planned.sort()
        return planned

    def batches(self) -> Iterator[list[Item]]:
        """One sorted batch per visit: its events plus the feedback it triggers.

        Batches come in order of their first event.  The timeline ends before the
        first visit that would not finish before the customer's horizon.
        """
        free_at = 0
        for day in range(self.signup_day, (self.c.horizon - 1) // DAY_MS + 1):
            for start, is_store in self.visits(day):
                self.batch = []
                start = max(start, free_at)
                end = self.store_visit(start) if is_store else self.session(start)
                if end >= self.c.horizon:
                    return
                self.batch.sort()
                yield self.batch
                free_at = end + SESSION_GAP_MS

    def emit(self, t: int, event: Event) -> None:
        """Give ``event`` its id (``<customer_id>-<n>``) and ts, and add it to the batch."""
        self.n += 1
        event["event_id"] = f"{self.cid}-{self.n}"
        event["ts"] = self.iso(t)
        self.batch.append((t, self.index, self.n, event))

    def iso(self, t: int) -> str:
        """ISO-8601 UTC string of ``t``; consecutive events mostly share the hour prefix."""
        hour, ms = divmod(self.world.offset + t, HOUR_MS)
        if hour != self.hour:
            self.hour, self.prefix = hour, self.world.hour_prefix(hour)
        minutes, ms = divmod(ms, MINUTE_MS)
        seconds, ms = divmod(ms, SECOND_MS)
        return f"{self.prefix}{_TWO_DIGITS[minutes]}:{_TWO_DIGITS[seconds]}.{_FRACTIONS[ms]}+00:00"

    # ----- sessions -------------------------------------------------------------------
    def session(self, t: int) -> int:
        """Generate one session starting at ``t``; returns the time of its last event."""
        rng, prof = self.rng, self.profile(t)
        self.favourites = self.c.favourites_at(t)
        self.sessions += 1
        device = self.c.device if rng.random() < 0.8 else _weighted(rng, DEVICES)
        s = _Session(f"{self.cid}-s{self.sessions}", device, t)
        self.entry(s)
        self.browse(s, prof, _between(rng, *prof.steps))
        if rng.random() < prof.cart_p:
            self.shop(s, prof)
        if rng.random() < prof.complaint_p:
            self.feedback(s.t + 5 * MINUTE_MS + int(rng.random() * HOUR_MS), None, unsolicited=True)
        return s.t

    def click(self, s: _Session, action: str, page: str, first: bool = False) -> Event:
        """A clickstream event 2 s to 3 min after the previous one (at the session start if ``first``).

        ``emit`` and ``iso`` are inlined: this is the hot path.
        """
        if not first:
            gap = 2 * SECOND_MS - int(25 * SECOND_MS * math.log(1.0 - self.random()))
            s.t += gap if gap < 180 * SECOND_MS else 180 * SECOND_MS
        self.n = n = self.n + 1
        hour, ms = divmod(self.world.offset + s.t, HOUR_MS)
        if hour != self.hour:
            self.hour, self.prefix = hour, self.world.hour_prefix(hour)
        minutes, ms = divmod(ms, MINUTE_MS)
        seconds, ms = divmod(ms, SECOND_MS)
        event: Event = {
            "event_id": f"{self.cid}-{n}", "type": "clickstream", "customer_id": self.cid,
            "ts": f"{self.prefix}{_TWO_DIGITS[minutes]}:{_TWO_DIGITS[seconds]}.{_FRACTIONS[ms]}+00:00",
            "session_id": s.session_id, "page": page, "action": action,
            "device": s.device, "ip": self.ip,
        }
        self.batch.append((s.t, self.index, n, event))
        return event

    def entry(self, s: _Session) -> None:
        """The landing page view: home 50 %, a category 25 %, a product 25 %; 40 % referred."""
        rng = self.rng
        r = rng.random()
        if r < 0.5:
            page = "/"
        elif r < 0.75:
            page = self.catalogue[self.category()].page
        else:
            page = self.product(self.category(), 0.0).page
        event = self.click(s, "page_view", page, first=True)
        if rng.random() < 0.4:
            event["referrer"] = _pick(rng, REFERRERS)

    def browse(self, s: _Session, prof: _Profile, steps: int) -> None:
        """``steps`` times: a search (60 % followed by a product view), a category view or a product view."""
        rand, search_p, bargain_p = self.random, prof.search_p, prof.bargain_p
        category_p = search_p + 0.35 * (1 - search_p)
        for _ in range(steps):
            r = rand()
            category = self.category()
            if r < search_p:
                self.click(s, "search", "/search")["query"] = self.query(category, prof)
                if rand() < 0.6:
                    self.click(s, "page_view", self.product(category, bargain_p).page)
            elif r < category_p:
                self.click(s, "page_view", self.catalogue[category].page)
            else:
                self.click(s, "page_view", self.product(category, bargain_p).page)

    def query(self, category: str, prof: _Profile) -> str:
        rng = self.rng
        term = _pick(rng, CATEGORIES[category][2])
        if rng.random() < 0.7 * prof.bargain_p:
            return f"{_pick(rng, SEARCH_MODIFIERS)} {term}"
        return term

    def category(self) -> str:
        """One of the two favourite categories (70 %) or any category."""
        r = self.random()
        if r < 0.7:
            return self.favourites[0 if r < 0.35 else 1]
        return CATEGORY_NAMES[int(self.random() * len(CATEGORY_NAMES))]

    def product(self, category: str, bargain_p: float) -> _Product:
        """A product of ``category`` as the customer's taste orders the shelf (``draw``)."""
        return self.taste[self.draw(category, bargain_p).sku]

    def draw(self, category: str, bargain_p: float) -> _Product:
        """A product of ``category`` by popularity; a bargain with probability ``bargain_p``."""
        shelf, rand = self.catalogue[category], self.random
        if rand() < bargain_p:
            return shelf.bargains[bisect(shelf.bargain_cum, rand() * shelf.bargain_cum[-1])]
        return shelf.products[bisect(shelf.cum, rand() * shelf.cum[-1])]

    # ----- carts and orders -----------------------------------------------------------
    def cart_event(self, s: _Session, action: str, page: str, product: _Product, quantity: int) -> None:
        """A cart action (add or remove) on ``quantity`` units of ``product``."""
        event = self.click(s, action, page)
        event["sku"] = product.sku
        event["category"] = product.category
        event["price"] = product.prices[self.c.currency]
        event["quantity"] = quantity
        event["currency"] = self.c.currency

    def shop(self, s: _Session, prof: _Profile) -> None:
        """Fill the cart, maybe remove one product, then check out or abandon."""
        rng, basket = self.rng, _Basket(self)
        for _ in range(_between(rng, 1, prof.max_items)):
            drawn = self.draw(self.category(), prof.bargain_p)
            product = s.cart[drawn.sku][0] if drawn.sku in s.cart else basket.take(drawn)
            quantity = _cum_pick(rng, prof.quantity_cum) + 1
            self.click(s, "page_view", product.page)
            self.cart_event(s, "add_to_cart", product.page, product, quantity)
            s.cart.setdefault(drawn.sku, [product, 0])[1] += quantity
        if len(s.cart) >= 2 and rng.random() < 0.12:
            product, quantity = s.cart.pop(rng.choice(sorted(s.cart)))
            self.cart_event(s, "remove_from_cart", "/cart", product, quantity)
        if rng.random() < prof.checkout_p:
            self.checkout(s)
        elif rng.random() < 0.5:
            self.click(s, "page_view", "/cart")

    def checkout(self, s: _Session) -> None:
        self.click(s, "page_view", "/cart")
        self.click(s, "checkout", "/checkout")["currency"] = self.c.currency
        s.t += 30 * SECOND_MS + int(self.rng.random() * 60 * SECOND_MS)
        channel = "app" if self.rng.random() < APP_SHARE[s.device] else "web"
        self.purchase(s.t, [(product, quantity) for product, quantity in s.cart.values()], channel)

    def store_visit(self, t: int) -> int:
        """An in-store purchase at ``t`` (no session); returns ``t``."""
        rng, prof, basket = self.rng, self.profile(t), _Basket(self)
        self.favourites = self.c.favourites_at(t)
        items: dict[str, tuple[_Product, int]] = {}
        for _ in range(_between(rng, 1, 3)):
            drawn = self.draw(self.category(), prof.bargain_p)
            product = items[drawn.sku][0] if drawn.sku in items else basket.take(drawn)
            items[drawn.sku] = (product, _cum_pick(rng, prof.quantity_cum) + 1)
        self.purchase(t, list(items.values()), "store")
        return t

    def purchase(self, t: int, items: list[tuple[_Product, int]], channel: str) -> None:
        """A purchase event, sometimes followed by feedback hours to days later."""
        self.orders += 1
        currency = self.c.currency
        lines = [{"sku": p.sku, "quantity": q, "price": p.prices[currency], "category": p.category}
                 for p, q in items]
        order_id = f"{self.cid}-o{self.orders}"
        self.emit(t, {
            "event_id": "", "type": "purchase", "customer_id": self.cid, "ts": "",
            "order_id": order_id, "items": lines,
            "total": round(sum(line["quantity"] * line["price"] for line in lines), 2),
            "currency": currency, "email": self.c.email, "phone": self.c.phone, "channel": channel,
        })
        if self.rng.random() < self.profile(t).feedback_p:
            lag = 2 * HOUR_MS + int(self.rng.expovariate(1 / (30 * HOUR_MS)))
            self.feedback(t + min(lag, 10 * DAY_MS), order_id, unsolicited=False)

    # ----- feedback -------------------------------------------------------------------
    def feedback(self, t: int, order_id: str | None, unsolicited: bool) -> None:
        """A feedback event at ``t`` (dropped at or after the horizon), mood from the profile at ``t``."""
        rng = self.rng
        rating = _cum_pick(rng, self.profile(t).rating_cum) + 1
        event: Event = {"event_id": "", "type": "feedback", "customer_id": self.cid, "ts": ""}
        form = rng.random()
        if form < 0.85:
            event["rating"] = rating
        if form < 0.40 or form >= 0.85:
            event["nps"] = _between(rng, *NPS_RANGES[rating])
        if unsolicited or rng.random() < 0.75:
            event["text"] = _feedback_text(rng, rating)
        event["channel"] = _weighted(rng, COMPLAINT_CHANNELS if unsolicited else PURCHASE_FEEDBACK_CHANNELS)
        event["email"] = self.c.email
        if order_id is not None:
            event["order_id"] = order_id
        if t < self.c.horizon:
            self.emit(t, event)


class _Basket:
    """The products of one cart or store order: each drawn product as the customer's taste
    maps it, except that a bundle's partners (``BUNDLE_P``) take the places of the next new
    draws. Places are swapped (a transposition of fresh products), never shared, so distinct
    draws stay distinct products and the customer's draws, and events, are those of a
    catalogue without tastes or bundles; only which SKUs they show changes."""

    __slots__ = ("sim", "swaps", "used", "pending")

    def __init__(self, sim: _Sim) -> None:
        self.sim = sim
        self.swaps: dict[str, _Product] = {}
        self.used: set[str] = set()
        self.pending: list[_Product] = []

    def take(self, drawn: _Product) -> _Product:
        """The product a draw not yet in the basket becomes."""
        product = self.sim.taste[drawn.sku]
        product = self.swaps.get(product.sku, product)
        if self.pending and product.sku not in self.swaps:
            partner = self.pending.pop(0)
            if partner.sku not in self.used and partner.sku not in self.swaps:
                self.swaps[product.sku], self.swaps[partner.sku] = partner, product
                product = partner
        self.used.add(product.sku)
        partners = self.sim.world.bundles.get(product.sku)
        if partners and self.sim.picks.random() < BUNDLE_P:
            waiting = {p.sku for p in self.pending}
            self.pending += [p for p in partners if p.sku not in self.used and p.sku not in waiting]
        return product


def _feedback_text(rng: random.Random, rating: int) -> str:
    """'<opener> <Detail>[ and <detail>].' from the word bank of the rating's mood."""
    mood = "positive" if rating >= 4 else "neutral" if rating == 3 else "negative"
    openers, details = TEXT_BANKS[mood]
    body = " and ".join(rng.sample(details, _between(rng, 1, 2)))
    return f"{rng.choice(openers)} {body[0].upper()}{body[1:]}."


# ----- merging and public entry points -----------------------------------------------
def _timelines(world: _World) -> list[Iterator[list[Item]]]:
    return [_Sim(customer, world).batches() for customer in world.customers]


def _merge(timelines: list[Iterator[list[Item]]]) -> Iterator[Event]:
    """Merge per-customer batch streams into one event stream ordered by (t, customer index, n).

    ``heads`` holds the next batch of every timeline, earliest first.  Once a batch
    is the earliest of all, every collected item ordered before its first item is
    final; collected items are sorted and released at most once per MERGE_FLUSH_MS
    of event time.
    """
    heads = [(*batch[0][:3], batch, timeline) for timeline in timelines
             if (batch := next(timeline, None))]
    heapq.heapify(heads)
    collected: list[Item] = []
    flush_at = -1
    while heads:
        head = heads[0]
        if head[0] >= flush_at:
            yield from _release(collected, head[:3])
            flush_at = head[0] + MERGE_FLUSH_MS
        collected.extend(head[3])
        batch = next(head[4], None)
        if batch:
            heapq.heapreplace(heads, (*batch[0][:3], batch, head[4]))
        else:
            heapq.heappop(heads)
    yield from _release(collected, (math.inf,))


def _release(collected: list[Item], bound: tuple[float, ...]) -> list[Event]:
    """Remove the collected items ordered before ``bound``; return their events in order."""
    collected.sort()
    cut = bisect_left(collected, bound)
    released = [item[3] for item in collected[:cut]]
    del collected[:cut]
    return released


def generate(config: GeneratorConfig) -> Iterator[Event]:
    """Events in event-time order (ts ascending); each a JSON-ready dict."""
    yield from _merge(_timelines(_World(config)))


def ground_truth(config: GeneratorConfig) -> dict[str, CustomerTruth]:
    """The hidden structure, from running every customer's timeline (so it agrees with generate())."""
    world = _World(config)
    churn_gap = min(CHURN_GAP_MS, world.window // 4)
    truth: dict[str, CustomerTruth] = {}
    for customer, timeline in zip(world.customers, _timelines(world)):
        first, last = -1, -1
        for batch in timeline:
            first = batch[0][0] if first < 0 else first
            last = max(last, batch[-1][0])
        churned = customer.persona == "drifting" and world.window - last >= churn_gap
        shift = None if customer.shift is None else TasteShift(
            world.timestamp(customer.shift[0]), customer.favourites[1], customer.shift[1])
        truth[customer.customer_id] = CustomerTruth(
            customer.customer_id, customer.persona, world.timestamp(first), world.timestamp(last), churned,
            customer.taste, shift,
        )
    return truth


def bundles(config: GeneratorConfig) -> list[tuple[str, ...]]:
    """The catalogue's bundles (SKUs bought together), each sorted, in SKU order."""
    partners = _bundles(config.seed, _catalogue(config.seed))
    return sorted({tuple(sorted((sku, *(p.sku for p in others)))) for sku, others in partners.items()})


def taste_favourites(config: GeneratorConfig, taste: int, category: str, n: int) -> list[str]:
    """The ``n`` SKUs of ``category`` that customers of ``taste`` pick most (bargains aside)."""
    world = _World(replace(config, customers=0))
    return [world.tastes[taste][p.sku].sku for p in world.catalogue[category].products[:n]]
