"""One batch of input records, end to end: decode, dedupe, apply, sweep, publish, commit.

In: ``RawRecord``s from the input topics. Out: records on ``segments``, ``alerts`` and
``dead-letter``, and one Redis transaction with the new state.

Effects are exactly-once over at-least-once delivery:

* records at or below the applied offset of their partition (stored in the same
  transaction as the state) are redeliveries and are skipped;
* an event id already in the customer's dedupe window is a resent event and is skipped;
* outputs are written to the partitions' outbox in the same transaction as the state, then
  published; the next batch of those partitions (on this worker or another) publishes an
  outbox left by a crash before anything else, so every output is published at least once,
  always with the content decided when its state was committed, under an id derived from
  its cause. A batch that crashes before its commit published nothing: applied again, it
  may decide otherwise (against a population that moved meanwhile), and no one saw the
  first decision.

Infrastructure failures (Redis or Kafka unreachable) retry the whole batch with backoff and
never dead-letter an event; bad events are dead-lettered and never stop the stream.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError, WatchError

from streamproc.contracts import Contracts
from streamproc.decisions.rules import Population
from streamproc.eventtime import Arrivals, is_late, observe, partition_of, tp_key, watermarks
from streamproc.ingest.decode import Decoded, Decoder, Rejection, Source
from streamproc.ingest.pseudonym import Pseudonymiser
from streamproc.ingest.redact import redact
from streamproc.pipeline import BatchResult, Output, apply_batch, sweep
from streamproc.records import Alert, Example, InputEvent, SegmentChange
from streamproc.runtime.learner import OnlineModels
from streamproc.runtime.refit import Refitter
from streamproc.runtime.store import Changes, Held, Loaded, Store, Waiting
from streamproc.state.profile import Profile

log = logging.getLogger(__name__)
BUG_RETRIES = 3
_ROLE = {SegmentChange: "segments", Alert: "alerts", Example: "training"}

Send = Callable[[str, bytes, bytes], Awaitable[Awaitable[object]]]


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A Kafka record as consumed."""

    topic: str
    partition: int
    offset: int
    value: bytes | None

    @property
    def source(self) -> Source:
        return Source(self.topic, self.partition, self.offset)


@dataclass
class Intake:
    """A batch's fresh records sorted into events to apply and rejections, with counters."""

    events: list[InputEvent] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    record_of: dict[int, RawRecord] = field(default_factory=dict)
    partition_of: dict[str, int] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Ordering:
    """How events are put in event-time order (see ``streamproc.eventtime``).

    ``pending(tp, applied_offset)`` says whether the consumer knows of records on ``tp``
    beyond ``applied_offset``; ``clock`` is the wall clock idleness is measured with.
    """

    delay_s: float = 0.0
    idle_after_s: float = 0.5
    release_limit: int = 5000
    clock: Callable[[], float] = time.monotonic
    pending: Callable[[str, int], bool] = lambda tp, offset: False


def dead_letter(rej: Rejection, keys: Pseudonymiser) -> dict[str, object]:
    """The dead-letter record of a rejection: original bytes with identifiers keyed."""
    raw = redact(rej.raw, keys)
    try:
        original, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        original, encoding = base64.b64encode(raw).decode(), "base64"
    return {
        "type": "dead_letter", "reason": rej.reason, "message": rej.message,
        "source_topic": rej.source.topic, "partition": rej.source.partition, "offset": rej.source.offset,
        "original": original, "original_encoding": encoding,
        "rejected_at": datetime.now(timezone.utc).isoformat(),
    }


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(max(epoch_s, 0.0), timezone.utc)


class Processor:
    """Applies batches of records; owns no Faust object, only a Store and a send function."""

    def __init__(self, store: Store, send: Send, contracts: Contracts, decoder: Decoder,
                 keys: Pseudonymiser, lateness_s: float, order: Ordering | None = None,
                 refit: Refitter | None = None, online: OnlineModels | None = None) -> None:
        self.store, self.send, self.decoder, self.keys, self.lateness_s = store, send, decoder, keys, lateness_s
        self.order, self.refit, self.online = order or Ordering(), refit, online
        self.types = {t.name: t.event_type for t in contracts.inputs}
        self.topic = {r: contracts.one(r).name for r in ("segments", "alerts", "dead-letter", "training")}
        self._arrivals = Arrivals(self.order.idle_after_s, self.order.clock())
        self._lock = asyncio.Lock()

    async def handle(self, records: list[RawRecord], partitions: Iterable[int] = ()) -> None:
        """Apply ``records`` (and release what waits on ``partitions``); returns only once their
        effects are durable. Batches and ticks run one at a time.

        Broker or Redis outages are retried until they end. Any other error is retried
        ``BUG_RETRIES`` times, then every record of the batch is dead-lettered with reason
        ``processing_error`` and the error's text, so the stream moves on and nothing is lost.
        """
        async with self._lock:
            await self._retrying(records, tuple(partitions))

    async def _retrying(self, records: list[RawRecord], partitions: tuple[int, ...]) -> None:
        failure: str | None = None
        delay, bugs = 0.5, 0
        while True:
            try:
                return await self._handle(records, failure, partitions)
            except WatchError:
                log.info("another worker applied records of these partitions meanwhile; re-reading the batch")
                continue
            except (RedisError, KafkaError, OSError, asyncio.TimeoutError) as exc:
                log.warning("batch of %d records not applied (%s: %s); retrying in %.1fs",
                            len(records), type(exc).__name__, exc, delay)
            except Exception as exc:
                bugs += 1
                log.exception("batch of %d records failed (attempt %d of %d)", len(records), bugs, BUG_RETRIES)
                if bugs >= BUG_RETRIES:
                    failure = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _decode(self, records: list[RawRecord], failure: str | None) -> list[tuple[RawRecord, Decoded | Rejection]]:
        if failure is not None:
            return [(r, Rejection(r.source, "processing_error", failure, r.value or b"")) for r in records]
        now = datetime.now(timezone.utc)
        return [(r, self.decoder.decode(r.value, r.source, self.types[r.topic], now)) for r in records]

    async def _handle(self, records: list[RawRecord], failure: str | None, partitions: Iterable[int] = ()) -> None:
        parts = sorted({r.partition for r in records} | set(partitions))
        async with self.store.guard(parts) as guard:
            await self._apply(records, failure, parts, guard)

    async def tick(self, partitions: Iterable[int]) -> None:
        """Release held events and fire due timers of ``partitions`` when no records arrive."""
        parts = sorted(set(partitions))
        if parts:
            await self.handle([], parts)

    async def _apply(self, records: list[RawRecord], failure: str | None, parts: list[int], guard: Any) -> None:
        started = time.time()
        decoded = self._decode(records, failure)
        customers = sorted({d.event.customer_id for _, d in decoded if isinstance(d, Decoded)})
        loaded = await self.store.load(customers, [tp_key(t, p) for p in parts for t in self.types])
        await self._recover(loaded.outboxes)
        fresh = [(r, d) for r, d in decoded if r.offset > loaded.offsets.get(tp_key(r.topic, r.partition), -1)]
        if log.isEnabledFor(logging.DEBUG):
            log.debug("batch of %d records (%d fresh): %s; applied offsets %s", len(records), len(fresh),
                      self._offsets(records), loaded.offsets)
        intake = self._intake(fresh, loaded.high_marks)
        offsets = self._offsets(records, loaded.offsets)
        self._arrived(r for r, _ in fresh)
        wm = watermarks(intake.high, self.types, parts, lambda tp: self._idle(tp, offsets), self.order.delay_s)
        waiting = await self.store.waiting(wm, self.order.release_limit)
        ready, held = self._release(intake, waiting, wm)
        if not (records or ready or waiting.due):
            return
        profiles = await self._profiles(loaded, ready, waiting)
        if self.online is not None:
            await self.online.refresh()
        population = self.online.population(loaded.population) if self.online else loaded.population
        result = apply_batch(ready, profiles, population, self.store.rules)
        self._account(result, intake)
        swept = self._sweep(result, profiles, waiting, wm, intake.partition_of, population)
        outputs = result.outputs + swept.outputs
        outgoing = self._records(outputs, intake.rejected)
        outbox = orjson.dumps({"partitions": parts, "records": outgoing}) if outgoing else None
        intake.stats.update(self._output_stats(outputs, len(records) - len(fresh)))
        intake.stats["held"] += len(held) - len(waiting.held)
        await self.store.write(Changes(
            profiles={**result.profiles, **swept.profiles}, partition_of=intake.partition_of, outputs=outputs,
            offsets=offsets, started_at=started, stats=intake.stats, partitions=parts,
            high_marks={tp: ts for tp, ts in intake.high.items() if partition_of(tp) in parts},
            hold=held, release=waiting.held, stored=profiles, outbox=outbox,
        ), guard)
        if outbox is not None:
            await self._send(outgoing)
            await self.store.published(parts, outbox)
        marks = [t for t in wm.values() if t != float("-inf")]
        if self.refit is not None and marks:
            self.refit.poke(max(marks))

    def _arrived(self, records: Iterable[RawRecord]) -> None:
        self._arrivals.arrived((tp_key(r.topic, r.partition) for r in records), self.order.clock())

    def _idle(self, tp: str, offsets: dict[str, int]) -> bool:
        """Nothing left to read on ``tp``, which is quiet (``eventtime.Arrivals``)."""
        return self._arrivals.quiet(tp, self.order.clock()) and not self.order.pending(tp, offsets.get(tp, -1))

    def _release(self, intake: Intake, waiting: Waiting, wm: dict[int, float]) -> tuple[list[InputEvent], list[Held]]:
        """Events to apply now (at or below their partition's watermark, held ones included) and
        events to hold until it passes them."""
        ready, held = [], []
        for event in intake.events:
            r = intake.record_of[id(event)]
            if event.ts.timestamp() <= wm[r.partition]:
                ready.append(event)
            else:
                held.append(Held.of(event, r.topic, r.partition, r.offset))
        for h in waiting.held:
            ready.append(h.event)
            intake.record_of[id(h.event)] = RawRecord(h.topic, h.partition, h.offset, h.member)
            intake.partition_of[h.event.customer_id] = h.partition
        return ready, held

    async def _profiles(self, loaded: Loaded, ready: list[InputEvent], waiting: Waiting) -> dict[str, Profile | None]:
        """Stored profiles of every customer the batch touches: its events', released ones' and due ones'."""
        wanted = {e.customer_id for e in ready} | set(waiting.due)
        missing = sorted(c for c in wanted if c not in loaded.profiles)
        stored = await self.store.profiles(missing) if missing else {}
        return {**loaded.profiles, **{c: stored.get(c) for c in missing}}

    def _intake(self, fresh: list[tuple[RawRecord, Decoded | Rejection]], high: dict[str, float]) -> Intake:
        """Sort fresh records, in offset order per partition, into events, late events and rejections."""
        out = Intake(high=dict(high))
        for r, d in fresh:
            out.stats[f"in:{r.topic}"] += 1
            if isinstance(d, Rejection):
                out.rejected.append(d)
                continue
            ts = d.event.ts.timestamp()
            if is_late(out.high, r.topic, r.partition, ts, self.lateness_s):
                out.stats[f"late:{r.topic}"] += 1
                out.rejected.append(Rejection(r.source, "late_event", self._late_message(out.high, r, d), r.value or b""))
                continue
            observe(out.high, r.topic, r.partition, ts)
            out.events.append(d.event)
            out.record_of[id(d.event)] = r
            out.partition_of[d.event.customer_id] = r.partition
            if d.fixes:
                out.stats.update(f"fix:{kind}" for kind in d.fixes)
        return out

    def _late_message(self, high: dict[str, float], r: RawRecord, d: Decoded) -> str:
        mark = _utc(high[tp_key(r.topic, r.partition)]).isoformat()
        return (f"ts {d.event.ts.isoformat()} is more than {self.lateness_s:.0f}s older than the newest event "
                f"on {r.topic}[{r.partition}] ({mark}); raise STREAMPROC_ALLOWED_LATENESS_S to accept such events")

    def _account(self, result: BatchResult, intake: Intake) -> None:
        """Counters of the applied batch; events whose processing raised become rejections."""
        intake.stats["applied"] += result.applied
        for event in result.duplicates:
            intake.stats[f"dup:{intake.record_of[id(event)].topic}"] += 1
        intake.stats["duplicates"] += len(result.duplicates)
        for event, why in result.failed:
            log.error("event %s could not be processed: %s", event.event_id, why)
            r = intake.record_of[id(event)]
            intake.rejected.append(Rejection(r.source, "processing_error", why, r.value or b""))
        intake.stats["dead_lettered"] += len(intake.rejected)
        intake.stats.update(f"dlq:{rej.source.topic}:{rej.reason}" for rej in intake.rejected)

    def _sweep(self, result: BatchResult, profiles: dict[str, Profile | None], waiting: Waiting,
               wm: dict[int, float], partition_of: dict[str, int], pop: Population) -> BatchResult:
        for cid, p in waiting.due.items():
            partition_of.setdefault(cid, p)
        candidates = {c: p for c, p in profiles.items() if c in waiting.due and p is not None} | result.profiles
        now = {cid: _utc(wm[partition_of[cid]]) for cid in candidates}
        return sweep(candidates, now, pop, self.store.rules)

    def _records(self, outputs: list[Output], rejected: list[Rejection]) -> list[tuple[str, str, str]]:
        """``(topic, key, value)`` of every record the batch publishes, as its outbox holds them."""
        out = [(self.topic[_ROLE[type(o)]], o.customer_id, orjson.dumps(o.to_dict()).decode()) for o in outputs]
        out += [(self.topic["dead-letter"], rej.source.topic, orjson.dumps(dead_letter(rej, self.keys)).decode())
                for rej in rejected]
        return out

    async def _send(self, records: Iterable[tuple[str, str, str]]) -> None:
        """Publish ``records`` and wait until the broker has acknowledged every one."""
        futs = [await self.send(topic, key.encode(), value.encode()) for topic, key, value in records]
        if futs:
            await asyncio.gather(*futs)

    async def _recover(self, outboxes: list[bytes]) -> None:
        """Publish the outboxes a crashed batch left on these partitions, before anything else."""
        for outbox in outboxes:
            doc = orjson.loads(outbox)
            log.info("publishing the %d records of a batch of partitions %s committed before a crash",
                     len(doc["records"]), doc["partitions"])
            await self._send(doc["records"])
            await self.store.published(doc["partitions"], outbox)

    @staticmethod
    def _offsets(records: list[RawRecord], applied: dict[str, int] | None = None) -> dict[str, int]:
        """Highest offset per topic-partition; never below the one already ``applied``."""
        out: dict[str, int] = dict(applied or {})
        for r in records:
            key = tp_key(r.topic, r.partition)
            out[key] = max(out.get(key, -1), r.offset)
        return out

    @staticmethod
    def _output_stats(outputs: list[Output], redelivered: int) -> Counter[str]:
        kinds = Counter(_ROLE[type(o)] for o in outputs)
        return Counter(redelivered=redelivered, segment_changes=kinds["segments"], alerts=kinds["alerts"],
                       examples=kinds["training"])
