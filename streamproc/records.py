"""Every value that crosses a topic: input events, and the records streamproc publishes.

In:  clickstream, purchase and feedback records become ``Click``, ``Purchase`` and
     ``Feedback`` the moment they pass their contract (``streamproc.ingest.decode``).
Out: ``SegmentChange`` (segments topic), ``Alert`` (alerts topic) and ``Example``
     (training-examples topic), each with a deterministic id: a hash of what caused it, so a
     redelivered input or a re-run sweep yields the same id and consumers can drop
     duplicates by id.

Amounts are in the base currency; timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


# ----- input events ------------------------------------------------------------------
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


# ----- published records ---------------------------------------------------------------
def output_id(*parts: str) -> str:
    """A stable 32-hex-digit id from the parts that determine an output."""
    return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class SegmentChange:
    """A customer moved from ``old`` to ``new`` in one segment dimension at event time ``ts``."""

    customer_id: str
    ts: datetime
    dimension: str
    old: str | None
    new: str
    reason: str
    cause_event_id: str | None

    @property
    def event_id(self) -> str:
        return output_id("segment", self.customer_id, self.dimension, self.new, self.ts.isoformat())

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id, "type": "segment_change", "customer_id": self.customer_id,
            "ts": self.ts.isoformat(), "dimension": self.dimension, "old": self.old, "new": self.new,
            "reason": self.reason, "cause_event_id": self.cause_event_id,
        }


@dataclass(frozen=True, slots=True)
class Fact:
    """One leaf of a rule's condition as it was evaluated: ``attr op value``, and the value it ``saw``."""

    attr: str
    op: str
    value: Any
    saw: Any


@dataclass(frozen=True, slots=True)
class Alert:
    """A trigger rule fired for a customer at event time ``ts`` (``topics/schemas/alerts.v2.json``).

    ``facts`` are the leaves of the condition that made it true, each with the value it saw;
    ``reasons`` and ``models`` name the model scores that took part (``(feature, contribution,
    direction)`` of the served churn score; model name -> version); ``held_out`` says the customer
    is in a control group (``control``: ``"global"`` or ``"rule"``), so the alert is recorded but
    not delivered; ``deliver_at`` is the end of the quiet hours it was held for, if any.
    """

    customer_id: str
    ts: datetime
    rule: str
    severity: str
    message: str
    cause_event_id: str | None
    rule_version: int = 1
    ruleset_version: int = 0
    ruleset_digest: str = ""
    trigger: str = ""
    action: str | None = None
    facts: tuple[Fact, ...] = ()
    reasons: tuple[tuple[str, float, str], ...] = ()
    models: dict[str, Any] = field(default_factory=dict)
    destinations: tuple[str, ...] = ()
    held_out: bool = False
    control: str | None = None
    deliver_at: datetime | None = None
    offers: tuple[dict[str, Any], ...] = ()
    """The customer's next-best offers when the rule fired (``item``, ``score``, ``reason``,
    ``source``): the recommended action."""

    @property
    def event_id(self) -> str:
        return output_id("alert", self.customer_id, self.rule, self.ts.isoformat())

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id, "type": "alert", "schema_version": 2, "customer_id": self.customer_id,
            "ts": self.ts.isoformat(), "rule": self.rule, "rule_version": self.rule_version,
            "ruleset_version": self.ruleset_version, "ruleset_digest": self.ruleset_digest,
            "severity": self.severity, "trigger": self.trigger, "message": self.message, "action": self.action,
            "facts": [{"attr": f.attr, "op": f.op, "value": f.value, "saw": f.saw} for f in self.facts],
            "reasons": [{"feature": f, "contribution": c, "direction": d} for f, c, d in self.reasons],
            "models": self.models, "destinations": list(self.destinations), "held_out": self.held_out,
            "control": self.control, "deliver_at": None if self.deliver_at is None else self.deliver_at.isoformat(),
            "offers": [dict(o) for o in self.offers],
            "cause_event_id": self.cause_event_id,
        }


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A rule's condition held for a customer at ``ts`` but no alert went out now: ``why`` is
    ``cooldown``, ``cap`` (the frequency cap across rules), ``quiet_hours`` (dropped in the quiet
    hours) or ``held`` (held until they end: the alert follows then). Counted, never published."""

    customer_id: str
    ts: datetime
    rule: str
    why: str


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled example: ``features`` as of ``snapshot_at``, its ``label``, and what was served."""

    event_id: str
    model: str
    customer_id: str
    ts: str
    snapshot_at: str
    features: dict[str, float]
    label: float
    score: float | None
    model_version: int | None
    baselines: dict[str, float] = field(default_factory=dict)
    served: str | None = None
    """The churn candidate whose score was served (``models.serving``); ``score`` is the model's own."""

    def to_dict(self) -> dict[str, Any]:
        """The training-examples record (``topics/schemas/training-examples.v1.json``); it shares
        ``features`` and ``baselines`` with the example (serialised at once, never changed)."""
        return {"type": "training_example", **{f: getattr(self, f) for f in self.__dataclass_fields__}}

    @classmethod
    def from_record(cls, doc: dict[str, Any]) -> Example:
        fields = {k: doc.get(k) for k in cls.__dataclass_fields__}
        fields["baselines"] = dict(doc.get("baselines") or {})
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class CustomerErased:
    """A customer was erased everywhere (``runtime.erasure``): published on the alerts topic, so the
    CRM endpoints that took its alerts get it as a webhook and erase the customer too. ``removed``
    counts what was removed; the id derives from the request, so a redelivered command republishes
    the same record."""

    customer_id: str
    request_id: str
    requested_at: str
    erased_at: str
    removed: dict[str, Any] = field(default_factory=dict)

    @property
    def event_id(self) -> str:
        return output_id("customer_erased", self.request_id)

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "type": "customer_erased", "schema_version": 2,
                "customer_id": self.customer_id, "request_id": self.request_id, "requested_at": self.requested_at,
                "erased_at": self.erased_at, "removed": self.removed}
