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

    @property
    def satisfaction(self) -> float | None:
        """Rating and NPS on one scale from 0 (worst) to 1 (best).

        A 1-5 rating r maps to (r - 1) / 4 and a 0-10 NPS n to n / 10; with both, their mean.

        >>> Feedback("e", "c", None, "web", rating=4, nps=6).satisfaction
        0.675
        """
        parts = [(self.rating - 1) / 4] if self.rating is not None else []
        parts += [self.nps / 10] if self.nps is not None else []
        return round(sum(parts) / len(parts), 4) if parts else None


InputEvent = Click | Purchase | Feedback
