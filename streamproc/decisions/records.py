"""Output records: segment changes and alerts, with deterministic ids.

An output's id is a hash of what caused it, so a redelivered input or a re-run sweep yields
the same id and downstream consumers can drop duplicates by id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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
class Alert:
    """A rule fired for a customer at event time ``ts``."""

    customer_id: str
    ts: datetime
    rule: str
    severity: str
    message: str
    cause_event_id: str | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def event_id(self) -> str:
        return output_id("alert", self.customer_id, self.rule, self.ts.isoformat())

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id, "type": "alert", "customer_id": self.customer_id,
            "ts": self.ts.isoformat(), "rule": self.rule, "severity": self.severity,
            "message": self.message, "details": self.details, "cause_event_id": self.cause_event_id,
        }
