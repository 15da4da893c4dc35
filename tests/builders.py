"""Builders shared by the tests: typed events at day offsets, and input records as producers send them.

Typed events (``click``, ``buy``, ``rate``) belong to one customer ``"C"`` unless told otherwise
and are placed ``days`` after ``T0``; ``*_record`` builders give the JSON documents of the input
contracts (``topics/schemas``), for tests that publish to a broker.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from streamproc.contracts import Contracts
from streamproc.features.vector import FEATURES
from streamproc.records import Click, Example, Feedback, Item, Purchase
from streamproc.settings import Settings
from streamproc.sim.generator import GeneratorConfig
from streamproc.tools.replay import Display, ReplayOptions, Summary, detect_format, read_events

REPO = Path(__file__).resolve().parents[1]
"""The repository's root: README.md, topics/ and streamproc/ are under it."""
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SETTINGS = Settings()
"""The configuration of a worker started with no STREAMPROC_* variables."""
RULES = SETTINGS.rules()
"""The default thresholds; a test that needs others uses ``dataclasses.replace(RULES, ...)``."""


def at(days: float, start: datetime = T0) -> datetime:
    """``days`` of event time after ``start``."""
    return start + timedelta(days=days)


def click(eid: str, days: float, action: str = "page_view", *, session: str = "s1", price: float | None = None,
          customer: str = "C", start: datetime = T0) -> Click:
    """A click; with a ``price``, one unit of ``SKU-1`` (a cart action)."""
    sku, qty = ("SKU-1", 1) if price else (None, None)
    return Click(eid, customer, at(days, start), session, "/", action, sku, qty, price)


def buy(eid: str, days: float, total: float = 10.0, *, lines: int = 1, category: str | None = "books",
        customer: str = "C", start: datetime = T0) -> Purchase:
    """An order of ``total`` (EUR) in ``lines`` units of item ``A``."""
    return Purchase(eid, customer, at(days, start), f"o{eid}", (Item("A", lines, total / lines, category),),
                    total, "EUR")


def rate(eid: str, days: float, rating: int | None = None, nps: int | None = None, text: str | None = None, *,
         customer: str = "C", start: datetime = T0) -> Feedback:
    """A feedback with a 1-5 ``rating`` and/or a 0-10 ``nps``."""
    return Feedback(eid, customer, at(days, start), "web", rating, nps, text)


def click_record(eid: str, cid: str, ts: str, action: str = "page_view", session: str = "s1") -> dict[str, Any]:
    """A clickstream record as a producer sends it."""
    return {"event_id": eid, "type": "clickstream", "customer_id": cid, "ts": ts, "session_id": session,
            "page": "/", "action": action}


def purchase_record(eid: str, cid: str, ts: str, price: float, qty: int = 1, currency: str = "EUR",
                    sku: str = "SKU-1") -> dict[str, Any]:
    """A purchase record of one line as a producer sends it."""
    return {"event_id": eid, "type": "purchase", "customer_id": cid, "ts": ts, "order_id": f"o-{eid}",
            "items": [{"sku": sku, "quantity": qty, "price": price}], "total": price * qty, "currency": currency}


def feedback_record(eid: str, cid: str, ts: str, rating: int) -> dict[str, Any]:
    """A feedback record with a rating as a producer sends it."""
    return {"event_id": eid, "type": "feedback", "customer_id": cid, "ts": ts, "channel": "web", "rating": rating}


def churn_example(i: int, rng: random.Random, flipped: bool = False) -> bytes:
    """A training-examples record: churn follows ``days_since_last`` (or its opposite, ``flipped``)."""
    x = dict.fromkeys(FEATURES, 0.0) | {"days_since_last": rng.uniform(0, 40), "visits_per_week": rng.uniform(0, 5)}
    p_churn = min(x["days_since_last"] / 40, 1.0)
    y = int(rng.random() < (1 - p_churn if flipped else p_churn))
    at = (T0 + timedelta(hours=i)).isoformat()
    ex = Example(f"ex{i}", "churn", f"c{i % 50}", at, at, x, float(y), None, None,
                 {"recency": p_churn, "palive": 0.5})
    return orjson.dumps(ex.to_dict())


def minute_click(i: int) -> bytes:
    """The clickstream record of customer ``Z1`` at minute ``i`` of 2026-01-01 10:00, as bytes."""
    return orjson.dumps({"event_id": f"e{i}", "type": "clickstream", "customer_id": "Z1",
                         "ts": f"2026-01-01T10:{i:02d}:00+00:00", "session_id": "s", "page": "/",
                         "action": "page_view"})



def keyed_click(eid: str) -> bytes:
    """A clickstream record of customer ``Z1`` whose ids are already keys, as a dead-letter replay
    re-publishes them: the worker keys nothing more, so what it stores is exactly these bytes."""
    keys = SETTINGS.pseudonymiser()
    return orjson.dumps({"event_id": keys.key("event", eid), "type": "clickstream", "customer_id": keys.customer("Z1"),
                         "ts": "2026-01-01T10:05:00+00:00", "session_id": keys.key("session", "s"), "page": "/",
                         "action": "page_view"})


# ----- history files for streamproc replay ----------------------------------------------
SMALL = GeneratorConfig(customers=30, days=10, seed=5)

RETAIL_CSV = """\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850.0,United Kingdom
C536379,D,Discount,-1,12/1/2010 9:41,27.50,14527.0,United Kingdom
536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,12/1/2010 8:34,1.69,13047.0,United Kingdom
536414,22139,RETROSPOT TEA SET,56,12/1/2010 11:52,0.00,,United Kingdom
536368,22960,JAM MAKING SET WITH JARS,6,13/45/2010 8:34,4.25,13047.0,United Kingdom
536369,21756,BATH BUILDING BLOCK WORD,x,12/1/2010 8:35,5.95,13047.0,United Kingdom
581587,22613,PACK OF 20 SPACEBOY NAPKINS,12,6/9/2011 12:50,0.85,12680.0,France
536370,22728,ALARM CLOCK BAKELIKE PINK,24,12/1/2010 8:20,3.75,12583.0,France
"""

RETAIL_TOML = r"""
event = "purchase"
encoding = "latin-1"

[time]
column = "InvoiceDate"
format = "%m/%d/%Y %H:%M"
timezone = "Europe/London"

[fields]
customer_id = { column = "CustomerID", extract = '^(\d+)' }
order_id = "InvoiceNo"
currency = { value = "GBP" }
channel = { value = "web" }

[items]
sku = "StockCode"
quantity = "Quantity"
price = "UnitPrice"

[[skip]]
column = "InvoiceNo"
starts_with = "C"
reason = "cancelled invoice"
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def read(contracts: Contracts, path: Path, mapping: Path | None = None) -> tuple[Summary, list[tuple]]:
    summary = Summary(str(path), detect_format(path, None), None, True)
    records = read_events(ReplayOptions(path, mapping=mapping), summary.format, contracts, summary, Display())
    return summary, records


def jsonl(path: Path, docs: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    return path


def history_click(eid: str, ts: object, customer: str = "C1") -> dict:
    return {"event_id": eid, "type": "clickstream", "customer_id": customer, "ts": ts, "session_id": "s",
            "page": "/", "action": "page_view"}
