"""Typed input events: what a valid record becomes the moment it passes its contract.

Amounts are in the base currency; timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Click:
    """A clickstream interaction (page view, search, cart action)."""

    event_id: str
    customer_id: str
    ts: datetime
    session_id: str
    page: str
    action: str
    sku: str | None = None
    quantity: int | None = None
    price: float | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """One line of an order; price in base currency."""

    sku: str
    quantity: int
    price: float
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Purchase:
    """A completed order; ``total`` in base currency."""

    event_id: str
    customer_id: str
    ts: datetime
    order_id: str
    items: tuple[Item, ...]
    total: float
    currency: str


@dataclass(frozen=True, slots=True)
class Feedback:
    """A rating (1-5) and/or NPS answer (0-10), with optional free text."""

    event_id: str
    customer_id: str
    ts: datetime
    channel: str
    rating: int | None = None
    nps: int | None = None
    text: str | None = None


InputEvent = Click | Purchase | Feedback
