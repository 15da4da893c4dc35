"""Prequential evaluation of next-best offers: what would have been offered, and was it taken.

In:  input events in event-time order (``streamproc evaluate``'s generated year or history
     file) and the item model's ``ItemParams``.
Out: ``Recommendations`` - hit rate, precision and recall at each k, and catalogue coverage,
     of the item model (``models.items.offers``) and of the popularity baseline (the most
     popular items not bought), overall and per event-time window; as a dict (``to_dict``,
     the ``recommendations`` key of ``streamproc evaluate --json``) and as a table (``render``).

Every click with a SKU and every purchase goes through ``items.step`` and its increments
into an ``ItemTable``, one event at a time: offers are asked for before the event they are
scored against is learned from (predict, then learn). What is scored depends on the stream:

* ``purchases`` (the stream has purchases): each order is scored against the offers the
  customer would have got at the start of the visit it ends (the first click of its
  session; for an order without a session, just before it), so the cart being filled is not
  offered back. Offers leave out the customer's last ``bought`` SKUs; the order's items are
  the targets.
* ``interactions`` (no purchases, e.g. MovieLens ratings as page views): each click on an
  item the customer has not had before is scored against the offers just before it, which
  leave out every item the customer had (nobody rates a movie twice); the item is the target.

A hit is an order (or item) with at least one target among the k offers; precision is the
share of the k offers that were targets, recall the share of the targets offered, averaged
over the orders; coverage the share of the items seen in the stream that were offered at
least once. The popularity list is read once per event-time day (as a store would cache it);
both methods use the same. A rebase (``items.rebase``) is checked for once a day too, a day
ahead. Customers with no recent item get the popularity fallback, so they count for both alike.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from rich.console import Group
from rich.table import Table

from streamproc.models.items import ItemTable, ItemView, offers, popular
from streamproc.records import Click, InputEvent, Purchase
from streamproc.state.items import ItemParams, RecentItems, rebase, step

KS = (5, 10)
METHODS = ("recommender", "popularity")


@dataclass
class _Tally:
    """Sums over scored predictions of one method at one k."""

    hits: int = 0
    precision: float = 0.0
    recall: float = 0.0
    offered: set[str] = field(default_factory=set)

    def add(self, offered: Sequence[str], targets: set[str], k: int) -> None:
        got = len(targets.intersection(offered))
        self.hits += got > 0
        self.precision += got / k
        self.recall += got / len(targets)
        self.offered.update(offered)


@dataclass
class _Window:
    start: datetime
    predictions: int = 0
    tallies: dict[tuple[str, int], _Tally] = field(default_factory=dict)


@dataclass
class Recommendations:
    """The figures of one evaluation; ``windows`` are event-time windows, in order."""

    mode: str
    items: int
    predictions: int
    overall: dict[tuple[str, int], _Tally]
    windows: list[_Window]

    def figures(self, tallies: dict[tuple[str, int], _Tally], n: int) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {m: {} for m in METHODS}
        for (method, k), t in tallies.items():
            out[method][f"@{k}"] = {
                "hit_rate": _ratio(t.hits, n), "precision": _ratio(t.precision, n), "recall": _ratio(t.recall, n),
                "coverage": _ratio(len(t.offered), self.items)}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "predictions": self.predictions, "items": self.items,
            **self.figures(self.overall, self.predictions),
            "timeline": [{"from": w.start.isoformat(), "predictions": w.predictions,
                          **self.figures(w.tallies, w.predictions)} for w in self.windows],
        }


def _ratio(x: float, n: int) -> float | None:
    return round(x / n, 4) if n else None


def evaluate(events: Iterable[InputEvent], params: ItemParams = ItemParams(), ks: Sequence[int] = KS,
             windows: int = 12) -> Recommendations:
    """Replay ``events`` (in event-time order) through the item model; see the module docstring."""
    stream = [e for e in events if isinstance(e, (Click, Purchase))]
    run = _Run(params, max(ks), any(isinstance(e, Purchase) for e in stream))
    span = (stream[-1].ts - stream[0].ts) / windows if stream else timedelta(0)
    marks = [stream[0].ts + i * span for i in range(windows)] if stream else []
    out = Recommendations(run.mode, 0, 0, _tallies(ks), [_Window(m, 0, _tallies(ks)) for m in marks])
    for e in stream:
        scored = run.event(e)
        if scored is None:
            continue
        window = out.windows[min(int((e.ts - stream[0].ts) / span), windows - 1) if span else 0]
        out.predictions += 1
        window.predictions += 1
        for (method, k), tally in out.overall.items():
            tally.add(scored[method][:k], scored["targets"], k)
            window.tallies[method, k].add(scored[method][:k], scored["targets"], k)
    out.items = len(run.table.popularity)
    return out


def _tallies(ks: Sequence[int]) -> dict[tuple[str, int], _Tally]:
    return {(m, k): _Tally() for m in METHODS for k in ks}


class _Run:
    """The model, every customer's recent items and the offers waiting for a purchase."""

    def __init__(self, params: ItemParams, k: int, purchases: bool) -> None:
        self.table, self.k = ItemTable(params), k
        self.mode = "purchases" if purchases else "interactions"
        self.recent: dict[str, RecentItems] = {}
        self.had: dict[str, set[str]] = {}
        self.pending: dict[str, _Question] = {}
        self.top: list[tuple[str, float]] = []
        self.day: object = None

    def event(self, e: Click | Purchase) -> dict[str, Any] | None:
        """Learn from ``e``; what was offered before it and its targets, if it is scored."""
        if e.ts.date() != self.day:
            plan = rebase(self.table.params, e.ts + timedelta(days=1))
            if plan is not None:
                self.table.scale(plan)
            self.day, self.top = e.ts.date(), self.table.top_popular(len(self.table.popularity))
        r = self.recent.get(e.customer_id, RecentItems())
        scored = self.purchase_mode(e, r) if self.mode == "purchases" else self.interaction_mode(e, r)
        r, inc = step(r, e, self.table.params)
        self.table.apply(inc)
        self.recent[e.customer_id] = r
        return scored

    def purchase_mode(self, e: Click | Purchase, r: RecentItems) -> dict[str, Any] | None:
        if isinstance(e, Click):
            if e.session_id != r.session:
                self.pending[e.customer_id] = self.ask(r, set(r.bought))
            return None
        question = self.pending.pop(e.customer_id, None) or self.ask(r, set(r.bought))
        return self.answer(question) | {"targets": {line.sku for line in e.items}}

    def interaction_mode(self, e: Click | Purchase, r: RecentItems) -> dict[str, Any] | None:
        had = self.had.setdefault(e.customer_id, set())
        if not isinstance(e, Click) or e.sku is None or e.sku in had:
            return None
        offered = self.answer(self.ask(r, had))
        had.add(e.sku)
        return offered | {"targets": {e.sku}}

    def ask(self, r: RecentItems, excluded: set[str]) -> _Question:
        """What the offers depend on, as of now (the lists read are never changed later)."""
        view = self.table.view(r.skus, 0)
        return _Question(r.skus, excluded, replace(view, top=self.top[:self.k + len(excluded)]))

    def answer(self, q: _Question) -> dict[str, list[str]]:
        v = q.view
        reco = offers(q.recent, q.excluded, v.neighbours, v.popularity, self.k, params=v.params)
        baseline = popular(q.excluded, v.top, self.k)
        return {"recommender": [o.item for o in reco], "popularity": [o.item for o in baseline]}


@dataclass(frozen=True, slots=True)
class _Question:
    """The inputs of one customer's offers, kept from the start of a visit to its purchase."""

    recent: tuple[str, ...]
    excluded: Collection[str]
    view: ItemView


# ----- text ----------------------------------------------------------------------------------
def render(rec: Recommendations) -> Group:
    """The figures over event time (hit rate at the largest k) and overall, as two tables."""
    return Group(_timeline_table(rec), _overall_table(rec))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _timeline_table(rec: Recommendations) -> Table:
    k = max(k for _, k in rec.overall)
    table = Table(title=f"next-best offers over event time: hit rate @{k} of the orders in each window"
                  if rec.mode == "purchases" else f"next-best offers over event time: hit rate @{k} in each window")
    for col, justify in (("from", "left"), ("scored", "right"), ("recommender", "right"), ("popularity", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    for w in rec.windows:
        f = rec.figures(w.tallies, w.predictions)
        table.add_row(w.start.isoformat()[:10], f"{w.predictions:,}",
                      *(_pct(f[m][f"@{k}"]["hit_rate"]) for m in METHODS))
    return table


def _overall_table(rec: Recommendations) -> Table:
    scored = "orders" if rec.mode == "purchases" else "new items"
    table = Table(title=f"next-best offers: {rec.predictions:,} {scored} scored, {rec.items:,} items in the stream")
    for col in ("", "hit rate", "precision", "recall", "coverage"):
        table.add_column(col, justify="right")
    f = rec.figures(rec.overall, rec.predictions)
    for method, k in rec.overall:
        m = f[method][f"@{k}"]
        table.add_row(f"{method} @{k}", *(_pct(m[key]) for key in ("hit_rate", "precision", "recall", "coverage")))
    return table
