"""Putting a batch of input records in event-time order, and what becomes of each.

In: ``Consumed`` records (an input record's bytes and position, decoded or not), the applied
offsets and high marks stored before the batch, and the watermarks of its partitions. Out:
the records to apply, those to hold until the watermark passes them (``Held``, with their
bytes), rejections (late events, bad records) with counters, the applied offset of each
topic-partition, and the dead-letter record of each rejection.

A record is followed by one value from the agent to its fate: ``Consumed`` carries the
original bytes and position, and once decoded its event; a held event keeps its bytes in
the buffer, so whatever happens to it later (a processing error) dead-letters the bytes the
producer sent, which ``streamproc dlq replay`` re-publishes as they were. Nothing here reads
the clock: the time of a dead letter is an argument.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import orjson

from streamproc.eventtime import is_late, observe, tp_key
from streamproc.ingest.decode import Decoded, Rejection, Source
from streamproc.ingest.pseudonym import Pseudonymiser
from streamproc.ingest.redact import redact
from streamproc.records import Click, Feedback, InputEvent, Purchase
from streamproc.state import codec

_EVENT_TYPES: dict[str, type] = {c.__name__: c for c in (Click, Purchase, Feedback)}


@dataclass(frozen=True, slots=True)
class Consumed:
    """An input record as consumed, and once decoded its event and the corrections made to it."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    event: InputEvent | None = None
    fixes: tuple[str, ...] = ()

    @property
    def source(self) -> Source:
        return Source(self.topic, self.partition, self.offset)

    @property
    def tp(self) -> str:
        return tp_key(self.topic, self.partition)

    def decoded(self, d: Decoded) -> Consumed:
        """This record with its event."""
        return replace(self, event=d.event, fixes=d.fixes)

    def reject(self, reason: str, message: str) -> Rejection:
        """The rejection of this record: its original bytes, its position, the reason."""
        return Rejection(self.source, reason, message, self.value or b"")

    @property
    def ev(self) -> InputEvent:
        """The decoded event (only for records that were decoded)."""
        if self.event is None:
            raise ValueError(f"record {self.tp}@{self.offset} was not decoded")
        return self.event


Verdict = Consumed | Rejection
"""A decoded record: ``Consumed`` with its event, or the rejection of a record that is not one."""


@dataclass(frozen=True, slots=True)
class Held:
    """An event waiting in its partition's buffer for the watermark, as its buffer member.

    The member is a JSON document: ``topic``, ``offset``, ``type``, ``event`` (the decoded
    event) and ``original`` (base64 of the record's bytes with identifiers keyed, the bytes
    its dead letter would carry). A member written before ``original`` existed parses with
    the member itself as its bytes.
    """

    record: Consumed
    member: bytes

    @property
    def event(self) -> InputEvent:
        return self.record.ev

    @property
    def partition(self) -> int:
        return self.record.partition

    @classmethod
    def of(cls, record: Consumed, pseudonyms: Pseudonymiser) -> Held:
        kept = redact(record.value or b"", pseudonyms)
        doc = {"topic": record.topic, "offset": record.offset, "type": type(record.ev).__name__,
               "event": record.ev, "original": base64.b64encode(kept).decode()}
        return cls(replace(record, value=kept), orjson.dumps(doc))

    @classmethod
    def parse(cls, member: bytes, partition: int) -> Held:
        doc = orjson.loads(member)
        event = codec.loads(_EVENT_TYPES[doc["type"]], doc["event"])
        value = base64.b64decode(doc["original"]) if "original" in doc else member
        return cls(Consumed(doc["topic"], partition, doc["offset"], value, event), member)


@dataclass
class Intake:
    """A batch's fresh records sorted into events to apply and rejections, with counters."""

    events: list[Consumed] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    partition_of: dict[str, int] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)


def fresh(verdicts: Iterable[Verdict], applied: Mapping[str, int]) -> list[Verdict]:
    """The records above the applied offset of their topic-partition (the others are redeliveries)."""
    return [v for v in verdicts if v.source.offset > applied.get(tp_key(v.source.topic, v.source.partition), -1)]


def applied_offsets(records: Iterable[Consumed], applied: Mapping[str, int]) -> dict[str, int]:
    """Highest offset per topic-partition once ``records`` are applied; never below ``applied``.

    >>> applied_offsets([Consumed("c", 0, 7, b""), Consumed("c", 1, 2, b"")], {"c:0": 9})
    {'c:0': 9, 'c:1': 2}
    """
    out = dict(applied)
    for r in records:
        out[r.tp] = max(out.get(r.tp, -1), r.offset)
    return out


def intake(verdicts: Iterable[Verdict], high: Mapping[str, float], lateness_s: float,
           erased: AbstractSet[str] = frozenset()) -> Intake:
    """Sort fresh records, in offset order per partition, into events, late events and rejections;
    events of ``erased`` customers are dropped first (counted as ``erased_dropped``), so none of
    them reaches a dead letter either."""
    out = Intake(high=dict(high))
    for v in verdicts:
        out.stats[f"in:{v.source.topic}"] += 1
        if erased and isinstance(v, Consumed) and v.ev.customer_id in erased:
            out.stats["erased_dropped"] += 1
            continue
        if isinstance(v, Rejection):
            out.rejected.append(v)
            continue
        ts = v.ev.ts.timestamp()
        if is_late(out.high, v.topic, v.partition, ts, lateness_s):
            out.stats[f"late:{v.topic}"] += 1
            out.rejected.append(v.reject("late_event", late_message(out.high, v, lateness_s)))
            continue
        observe(out.high, v.topic, v.partition, ts)
        out.events.append(v)
        out.partition_of[v.ev.customer_id] = v.partition
        out.stats.update(f"fix:{kind}" for kind in v.fixes)
    return out


def late_message(high: Mapping[str, float], r: Consumed, lateness_s: float) -> str:
    """Why ``r`` is late: its time, the allowed lateness and the newest time of its topic-partition."""
    mark = utc(high[r.tp]).isoformat()
    return (f"ts {r.ev.ts.isoformat()} is more than {lateness_s:.0f}s older than the newest event "
            f"on {r.topic}[{r.partition}] ({mark}); raise STREAMPROC_ALLOWED_LATENESS_S to accept such events")


def release(events: Iterable[Consumed], waiting: Iterable[Held], watermarks: Mapping[int, float],
            pseudonyms: Pseudonymiser) -> tuple[list[Consumed], list[Held]]:
    """Events to apply now (at or below their partition's watermark, released held ones included)
    and events to hold until it passes them."""
    ready: list[Consumed] = []
    hold: list[Held] = []
    for r in events:
        if r.ev.ts.timestamp() <= watermarks[r.partition]:
            ready.append(r)
        else:
            hold.append(Held.of(r, pseudonyms))
    return ready + [h.record for h in waiting], hold


def dead_letter(rej: Rejection, pseudonyms: Pseudonymiser, rejected_at: datetime) -> dict[str, Any]:
    """The dead-letter record of a rejection: original bytes with identifiers keyed."""
    raw = redact(rej.raw, pseudonyms)
    try:
        original, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        original, encoding = base64.b64encode(raw).decode(), "base64"
    return {
        "type": "dead_letter", "reason": rej.reason, "message": rej.message,
        "source_topic": rej.source.topic, "partition": rej.source.partition, "offset": rej.source.offset,
        "original": original, "original_encoding": encoding, "rejected_at": rejected_at.isoformat(),
    }


def utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(max(epoch_s, 0.0), timezone.utc)
