"""Decode, clean, validate and pseudonymise: Kafka record bytes in, a typed event or a
``Rejection`` out.

Nothing here raises on bad input: every failure becomes a ``Rejection`` with a reason code
and a message that says what is wrong (and never quotes personal data). Reason codes:

====================== ===================================================================
``malformed_json``     the bytes are not a JSON document
``schema_violation``   the document breaks the topic's JSON Schema (the message names the field
                       and what it must be, see ``explain``)
``out_of_range``       a number outside the contract's bounds (the message names the field
                       and its bounds)
``unknown_event_type`` ``type`` is missing or is not the type this topic carries
``bad_timestamp``      ``ts`` has no zone, or is not a real time (a leap second, say)
``future_timestamp``   ``ts`` is later than now plus ``STREAMPROC_MAX_CLOCK_SKEW_S``
``too_old``            ``ts`` is before ``STREAMPROC_MIN_EVENT_TIME`` (the message names it)
``unknown_currency``   the currency has no rate in ``STREAMPROC_FX_RATES``
====================== ===================================================================

Corrections made on the way (see ``clean``) are returned with the event, for counting.
Customer, event, session and order ids leave this module as keys (see ``pseudonym``);
e-mail, phone and IP are dropped; e-mail addresses, phone numbers and long digit strings
inside a feedback's text are masked (see ``mask``), and a blank text counts as none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import fastjsonschema
import orjson

from streamproc.ingest.clean import Reject, clean
from streamproc.ingest.explain import explain
from streamproc.ingest.mask import mask_text
from streamproc.ingest.pseudonym import Pseudonymiser
from streamproc.records import Click, Feedback, InputEvent, Item, Purchase

RANGE_RULES = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}


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


@dataclass(frozen=True, slots=True)
class Decoded:
    """A valid event and the corrections made to it."""

    event: InputEvent
    fixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """Event times accepted: not before ``earliest``, not after wall clock + ``skew_s``."""

    earliest: datetime
    skew_s: float


def parse_ts(value: str) -> datetime:
    """ISO-8601 / RFC 3339 (its zone checked by ``clean``) to an aware UTC datetime."""
    try:
        return datetime.fromisoformat(value.upper()).astimezone(timezone.utc)
    except ValueError as exc:
        raise Reject("bad_timestamp", f"ts {value!r} is not ISO-8601: {exc}") from exc


class Decoder:
    """Turns one topic's record bytes into typed, pseudonymised events."""

    def __init__(self, validators: Mapping[str, Callable[[Any], Any]], fx_rates: Mapping[str, float],
                 base_currency: str, pseudonyms: Pseudonymiser, bounds: TimeBounds) -> None:
        self._validators = dict(validators)
        self._fx, self._base, self._pseudonyms, self._bounds = dict(fx_rates), base_currency, pseudonyms, bounds
        self._build = {"clickstream": self._click, "purchase": self._purchase, "feedback": self._feedback}

    def decode(self, raw: bytes | None, source: Source, event_type: str, now: datetime) -> Decoded | Rejection:
        """Never raises: the event with its corrections, or a rejection naming the reason."""
        try:
            doc = self._parse(raw, event_type)
            fixes = clean(doc)
            self._validate(doc, event_type)
            event = self._build[event_type](doc)
            self._check_time(event.ts, now)
            return Decoded(event, tuple(fixes))
        except Reject as rej:
            return Rejection(source, rej.reason, rej.message, raw or b"")

    @staticmethod
    def _parse(raw: bytes | None, event_type: str) -> dict[str, Any]:
        try:
            doc = orjson.loads(raw or b"")
        except orjson.JSONDecodeError as exc:
            raise Reject("malformed_json", f"record is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise Reject("schema_violation", f"record must be a JSON object, got {type(doc).__name__}")
        kind = doc.get("type")
        if isinstance(kind, str) and kind.strip().lower() == event_type:
            doc["type"] = event_type
        elif kind is None:
            raise Reject("unknown_event_type", f"missing required field type: this topic carries {event_type!r} events")
        elif kind != event_type:
            shown = repr(kind) if isinstance(kind, str) and len(kind) <= 40 else f"of {type(kind).__name__}"
            raise Reject("unknown_event_type", f"unknown type {shown}: this topic carries {event_type!r} events")
        return doc

    def _validate(self, doc: dict[str, Any], event_type: str) -> None:
        try:
            self._validators[event_type](doc)
        except fastjsonschema.JsonSchemaValueException as exc:
            reason = "out_of_range" if exc.rule in RANGE_RULES else "schema_violation"
            raise Reject(reason, explain(exc, event_type)) from exc

    def _check_time(self, ts: datetime, now: datetime) -> None:
        if ts < self._bounds.earliest:
            raise Reject("too_old", f"ts {ts.isoformat()} is before {self._bounds.earliest.isoformat()}; "
                                    "lower STREAMPROC_MIN_EVENT_TIME to accept such events")
        if (ts - now).total_seconds() > self._bounds.skew_s:
            raise Reject("future_timestamp", f"ts {ts.isoformat()} is ahead of the clock ({now.isoformat()}); "
                                             "raise STREAMPROC_MAX_CLOCK_SKEW_S to accept such events")

    def _amount(self, value: float, currency: str) -> float:
        rate = self._fx.get(currency)
        if rate is None:
            raise Reject("unknown_currency", f"no exchange rate for {currency!r}; add it to STREAMPROC_FX_RATES")
        return round(value * rate, 2)

    def _common(self, d: dict[str, Any]) -> dict[str, Any]:
        return {"event_id": self._pseudonyms.key("event", d["event_id"]), "customer_id": self._pseudonyms.customer(d["customer_id"]),
                "ts": parse_ts(d["ts"])}

    def _click(self, d: dict[str, Any]) -> Click:
        price = d.get("price")
        if price is not None:
            price = self._amount(price, d.get("currency", self._base))
        return Click(**self._common(d), session_id=self._pseudonyms.key("session", d["session_id"]), page=d["page"],
                     action=d["action"], sku=d.get("sku"), quantity=d.get("quantity"), price=price)

    def _purchase(self, d: dict[str, Any]) -> Purchase:
        cur = d["currency"]
        items = tuple(
            Item(i["sku"], i["quantity"], self._amount(i["price"], cur), i.get("category")) for i in d["items"]
        )
        return Purchase(**self._common(d), order_id=self._pseudonyms.key("order", d["order_id"]), items=items,
                        total=self._amount(d["total"], cur), currency=cur)

    def _feedback(self, d: dict[str, Any]) -> Feedback:
        text = d.get("text")
        return Feedback(**self._common(d), channel=d["channel"], rating=d.get("rating"), nps=d.get("nps"),
                        text=mask_text(text) if text and not text.isspace() else None)
