"""Decode and validate: Kafka record bytes in, a typed event or a ``Rejection`` out.

Nothing here raises on bad input: every failure becomes a ``Rejection`` with a reason code
and a message saying what is wrong. Reason codes:

==================== =====================================================================
``malformed_json``   the bytes are not a JSON document
``schema_violation`` the document breaks the topic's JSON Schema (the message has the path)
``unknown_event_type`` ``type`` is missing or is not the type this topic carries
``bad_timestamp``    ``ts`` passes the schema's date-time format but is not a real time
                     (a leap second, for one)
``unknown_currency`` the currency has no rate in ``STREAMPROC_FX_RATES``
==================== =====================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import fastjsonschema
import orjson

from streamproc.ingest.events import Click, Feedback, InputEvent, Item, Purchase


@dataclass(frozen=True, slots=True)
class Source:
    """Where a record came from."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that cannot be applied, and why."""

    source: Source
    reason: str
    message: str
    raw: bytes


class _Reject(Exception):
    def __init__(self, reason: str, message: str) -> None:
        self.reason, self.message = reason, message


def parse_ts(value: str) -> datetime:
    """ISO-8601 / RFC 3339 with a zone (``t`` and ``z`` in either case) to an aware UTC datetime."""
    try:
        ts = datetime.fromisoformat(value.upper())
    except ValueError as exc:
        raise _Reject("bad_timestamp", f"ts {value!r} is not ISO-8601: {exc}") from exc
    if ts.tzinfo is None:
        raise _Reject("bad_timestamp", f"ts {value!r} has no zone offset; add one, e.g. +00:00")
    return ts.astimezone(timezone.utc)


class Decoder:
    """Turns one topic's record bytes into typed events, given validators and FX rates."""

    def __init__(
        self, validators: Mapping[str, Callable[[Any], Any]], fx_rates: Mapping[str, float], base_currency: str
    ) -> None:
        self._validators = dict(validators)
        self._fx = dict(fx_rates)
        self._base = base_currency
        self._build = {"clickstream": self._click, "purchase": self._purchase, "feedback": self._feedback}

    def decode(self, raw: bytes | None, source: Source, event_type: str) -> InputEvent | Rejection:
        """Never raises: returns the event, or a rejection naming the reason."""
        try:
            return self._decode(raw, event_type)
        except _Reject as rej:
            return Rejection(source, rej.reason, rej.message, raw or b"")

    def _decode(self, raw: bytes | None, event_type: str) -> InputEvent:
        try:
            doc = orjson.loads(raw or b"")
        except orjson.JSONDecodeError as exc:
            raise _Reject("malformed_json", f"record is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise _Reject("schema_violation", f"record must be a JSON object, got {type(doc).__name__}")
        if doc.get("type") != event_type:
            raise _Reject("unknown_event_type", f"type {doc.get('type')!r} on a topic that carries {event_type!r}")
        try:
            self._validators[event_type](doc)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise _Reject("schema_violation", f"{exc.name}: {exc.message}") from exc
        return self._build[event_type](doc)

    def _amount(self, value: float, currency: str) -> float:
        rate = self._fx.get(currency)
        if rate is None:
            raise _Reject("unknown_currency", f"no exchange rate for {currency!r}; add it to STREAMPROC_FX_RATES")
        return round(value * rate, 2)

    def _click(self, d: dict[str, Any]) -> Click:
        price = d.get("price")
        if price is not None:
            price = self._amount(price, d.get("currency", self._base))
        return Click(
            event_id=d["event_id"], customer_id=d["customer_id"].strip(), ts=parse_ts(d["ts"]),
            session_id=d["session_id"], page=d["page"], action=d["action"],
            sku=d.get("sku"), quantity=d.get("quantity"), price=price,
        )

    def _purchase(self, d: dict[str, Any]) -> Purchase:
        cur = d["currency"]
        items = tuple(
            Item(i["sku"], i["quantity"], self._amount(i["price"], cur), i.get("category")) for i in d["items"]
        )
        return Purchase(
            event_id=d["event_id"], customer_id=d["customer_id"].strip(), ts=parse_ts(d["ts"]),
            order_id=d["order_id"], items=items, total=self._amount(d["total"], cur), currency=cur,
        )

    def _feedback(self, d: dict[str, Any]) -> Feedback:
        return Feedback(
            event_id=d["event_id"], customer_id=d["customer_id"].strip(), ts=parse_ts(d["ts"]),
            channel=d["channel"], rating=d.get("rating"), nps=d.get("nps"), text=d.get("text"),
        )
