"""A batch decided: what the store loaded and the batch's records in, everything to write out.

A batch is read, decided, written. This module is the middle step, pure: ``plan`` takes the
batch's intake (see ``streamproc.ordering``), what waits in the store for the watermarks
(``Waiting``), the stored profiles and the population, and returns the ``Changes``: new
profiles, outputs, applied offsets, events to hold and to release, the records to publish
(dead letters included) as the outbox holds them, and counters. The store (a ``Store`` of
``streamproc.runtime.store``) reads the inputs and writes the changes; nothing here touches
Kafka, Redis or the clock (the wall-clock times are arguments).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from streamproc.decisions.rules import Population, Rules
from streamproc.eventtime import partition_of
from streamproc.features.population import FitGrid, FitRow
from streamproc.ingest.decode import Rejection
from streamproc.ingest.pseudonym import Pseudonymiser
from streamproc.ordering import Consumed, Held, Intake, dead_letter, release, utc
from streamproc.pipeline import BatchResult, Output, apply_batch, sweep
from streamproc.records import Alert, Example, SegmentChange, Suppressed
from streamproc.state.items import Increments, merge
from streamproc.state.profile import Profile

ROLE = {SegmentChange: "segments", Alert: "alerts", Example: "training"}
"""The output topic role of each output type."""
Outgoing = tuple[str, str, str]
"""``(topic, key, value)`` of a record to publish, as the outbox holds it."""


@dataclass
class Loaded:
    """State read before a batch."""

    profiles: dict[str, Profile | None]
    offsets: dict[str, int]
    high_marks: dict[str, float]
    population: Population
    outboxes: list[bytes] = field(default_factory=list)
    """Distinct outboxes still waiting on the batch's partitions: a batch committed them and
    did not clear them (it died before publishing all its records, as far as the store knows)."""
    fitted_at: float | None = None
    """Event time (epoch s) of the last population fit; None before the first, or without fits."""
    erased: set[str] = field(default_factory=set)
    """Customers of the batch that were erased with their later events suppressed (``runtime.erasure``)."""


@dataclass
class Waiting:
    """What the watermarks released: held events (oldest first), customers with a due timer,
    and the watermarks themselves, lowered for a partition whose release hit the limit (to
    the newest event released), so what stays held is applied after what was released."""

    held: list[Held]
    due: dict[str, int]
    watermarks: dict[int, float] = field(default_factory=dict)


@dataclass
class Changes:
    """Everything one batch writes; ``stored`` holds the profiles as the batch read them;
    ``records`` are the records the batch publishes, ``outbox`` the same as the store keeps them."""

    profiles: Mapping[str, Profile]
    partition_of: Mapping[str, int]
    outputs: Iterable[Output]
    offsets: Mapping[str, int]
    high_marks: Mapping[str, float]
    stats: Mapping[str, int]
    started_at: float
    partitions: Iterable[int] = ()
    hold: Iterable[Held] = ()
    release: Iterable[Held] = ()
    stored: Mapping[str, Profile | None] = field(default_factory=dict)
    outbox: bytes | None = None
    records: list[Outgoing] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    fit_rows: list[tuple[datetime, FitRow]] = field(default_factory=list)
    """Rows of the customers the batch moved past a fit time not fitted yet (``features.population``)."""
    items: Increments = field(default_factory=Increments)
    """The batch's increments of the item model's counters, summed (``state.items.merge``)."""
    hourly: Mapping[int, Mapping[str, int]] = field(default_factory=dict)
    """Counts per event-time hour (epoch seconds of its start): ``flow:<old>><new>`` lifecycle
    changes and ``alert:<rule>`` alerts (``hourly``); the dashboard's history over event time."""


@dataclass(frozen=True)
class Outlets:
    """Where a batch's records go: output topic names by role, and the pseudonymiser that keys dead letters."""

    topics: Mapping[str, str]
    pseudonyms: Pseudonymiser


@dataclass
class Batch:
    """A batch after intake: its partitions, sorted records, applied offsets and counts."""

    partitions: list[int]
    intake: Intake
    offsets: dict[str, int]
    redelivered: int
    started_at: float


def missing(loaded: Loaded, waiting: Waiting) -> list[str]:
    """Customers the batch touches whose profiles were not loaded: released and due ones."""
    wanted = {h.event.customer_id for h in waiting.held} | set(waiting.due)
    return sorted(c for c in wanted if c not in loaded.profiles)


def plan(batch: Batch, waiting: Waiting, profiles: Mapping[str, Profile | None], population: Population,
         rules: Rules, outlets: Outlets, now: datetime, grid: FitGrid | None = None,
         erased: AbstractSet[str] = frozenset()) -> Changes:
    """The changes of ``batch``: its ready events applied, its due timers fired, its rejections
    dead-lettered (at wall-clock time ``now``), its late events held; with population fits at
    the times of ``grid``, the rows of the customers it moved past one. Events of ``erased``
    customers are dropped and counted (``erased_dropped``), neither applied nor held."""
    intake, wm = batch.intake, waiting.watermarks
    ready, hold = release(intake.events, waiting.held, wm, outlets.pseudonyms)
    dropped = 0
    if erased:
        kept = [r for r in ready if r.ev.customer_id not in erased]
        kept_hold = [h for h in hold if h.event.customer_id not in erased]
        dropped = len(ready) - len(kept) + len(hold) - len(kept_hold)
        ready, hold = kept, kept_hold
    where = {**intake.partition_of, **{h.event.customer_id: h.record.partition for h in waiting.held}}
    result = apply_batch(ready, profiles, population, rules, lambda r: r.ev, grid)
    rejected, stats = _account(result, intake)
    swept = _sweep(result, profiles, waiting, where, population, rules, grid)
    outputs = result.outputs + swept.outputs
    records = outgoing(outputs, rejected, outlets, now)
    outbox = orjson.dumps({"partitions": batch.partitions, "records": records}) if records else None
    stats.update(_output_stats(outputs, batch.redelivered))
    stats["held"] += len(hold) - len(waiting.held)
    stats["erased_dropped"] += dropped
    return Changes(
        profiles={**result.profiles, **swept.profiles}, partition_of=where, outputs=outputs, offsets=batch.offsets,
        started_at=batch.started_at, stats=stats, partitions=batch.partitions,
        high_marks={tp: ts for tp, ts in intake.high.items() if partition_of(tp) in batch.partitions},
        hold=hold, release=waiting.held, stored=profiles, outbox=outbox, records=records, rejected=rejected,
        fit_rows=result.rows + swept.rows, hourly=hourly(outputs), items=merge(result.items),
    )


def hourly(outputs: Iterable[Output]) -> dict[int, Counter[str]]:
    """Lifecycle changes (``flow:<old>><new>``, ``old`` empty for a new customer) and alerts
    (``alert:<rule>``, held-out ones included) per event-time hour.

    >>> from datetime import timezone
    >>> at = datetime(2026, 1, 5, 10, 30, tzinfo=timezone.utc)
    >>> hourly([SegmentChange("c", at, "lifecycle", "active", "at_risk", "quiet", None),
    ...         SegmentChange("c", at, "rfm", "a", "b", "", None)])
    {1767607200: Counter({'flow:active>at_risk': 1})}
    """
    out: dict[int, Counter[str]] = {}
    for o in outputs:
        if isinstance(o, SegmentChange) and o.dimension == "lifecycle":
            name = f"flow:{o.old or ''}>{o.new}"
        elif isinstance(o, Alert):
            name = f"alert:{o.rule}"
        else:
            continue
        out.setdefault(int(o.ts.timestamp()) // 3600 * 3600, Counter())[name] += 1
    return out


def _account(result: BatchResult[Consumed], intake: Intake) -> tuple[list[Rejection], Counter[str]]:
    """Rejections and counters of the applied batch; events whose processing raised are rejected
    with the bytes of their record (a held event's too)."""
    stats = Counter(intake.stats)
    stats["applied"] += result.applied
    stats.update(f"dup:{r.topic}" for r in result.duplicates)
    stats["duplicates"] += len(result.duplicates)
    rejected = intake.rejected + [r.reject("processing_error", why) for r, why in result.failed]
    stats["dead_lettered"] += len(rejected)
    stats.update(f"dlq:{rej.source.topic}:{rej.reason}" for rej in rejected)
    return rejected, stats


def _sweep(result: BatchResult[Consumed], profiles: Mapping[str, Profile | None], waiting: Waiting,
           where: dict[str, int], pop: Population, rules: Rules, grid: FitGrid | None) -> BatchResult[Consumed]:
    """Timers of the batch's customers and of the due ones, up to their partition's watermark
    (``where`` gains the partition of each due customer)."""
    for cid, p in waiting.due.items():
        where.setdefault(cid, p)
    candidates = {c: p for c, p in profiles.items() if c in waiting.due and p is not None} | result.profiles
    now = {cid: utc(waiting.watermarks[where[cid]]) for cid in candidates}
    return sweep(candidates, now, pop, rules, grid)


def outgoing(outputs: Iterable[Output], rejected: Iterable[Rejection], outlets: Outlets, now: datetime) -> list[Outgoing]:
    """``(topic, key, value)`` of every record the batch publishes, as its outbox holds them."""
    out = [(outlets.topics[ROLE[type(o)]], o.customer_id, orjson.dumps(o.to_dict()).decode())
           for o in outputs if not isinstance(o, Suppressed)]
    out += [(outlets.topics["dead-letter"], rej.source.topic, orjson.dumps(dead_letter(rej, outlets.pseudonyms, now)).decode())
            for rej in rejected]
    return out


def _output_stats(outputs: list[Output], redelivered: int) -> Counter[str]:
    """Counts of the outputs by kind; suppressed alerts by rule and why (``suppressed:<rule>:<why>``)."""
    kinds = Counter(ROLE.get(type(o), "suppressed") for o in outputs)
    stats = Counter(redelivered=redelivered, segment_changes=kinds["segments"], alerts=kinds["alerts"],
                    examples=kinds["training"])
    stats.update(f"suppressed:{o.rule}:{o.why}" for o in outputs if isinstance(o, Suppressed))
    return stats
