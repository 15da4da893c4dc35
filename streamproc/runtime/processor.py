"""One batch of input records, end to end, in I/O order: decode, load, plan, write, send, published.

In: ``Consumed`` records from the input topics. Out: records on ``segments``, ``alerts`` and
``dead-letter``, and one write of the new state to the ``Store`` (a Redis transaction).
What the batch changes is decided by pure code (``streamproc.ordering`` sorts the records,
``streamproc.plan`` decides); this module orders the reads, writes and sends, and retries.

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
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from streamproc.contracts import Contracts
from streamproc.decisions.rules import Population, Rules
from streamproc.eventtime import Arrivals, tp_key, watermarks
from streamproc.features.population import FitGrid
from streamproc.frozen import replace
from streamproc.ingest.decode import Decoded, Decoder
from streamproc.ingest.pseudonym import Pseudonymiser
from streamproc.ordering import Consumed, Verdict, applied_offsets, fresh, intake
from streamproc.plan import Batch, Changes, Loaded, Outgoing, Outlets, missing, plan
from streamproc.records import Click, Purchase
from streamproc.runtime.learner import OnlineModels
from streamproc.runtime.refit import Refitter
from streamproc.runtime.rulebook import RuleBook
from streamproc.runtime.store import Conflict, Store, Waiting
from streamproc.state.profile import Profile

log = logging.getLogger(__name__)
BUG_RETRIES = 3

Send = Callable[[str, bytes, bytes], Awaitable[Awaitable[object]]]


@dataclass(frozen=True)
class Ordering:
    """How events are put in event-time order (see ``streamproc.eventtime``).

    ``pending(tp, applied_offset)`` says whether the consumer knows of records on ``tp``
    beyond ``applied_offset``; ``clock`` is the wall clock idleness is measured with.
    """

    delay_s: float
    idle_after_s: float
    release_limit: int
    clock: Callable[[], float] = time.monotonic
    pending: Callable[[str, int], bool] = lambda tp, offset: False


class Processor:
    """Applies batches of records; owns no Faust object, only a Store and a send function."""

    def __init__(self, store: Store, send: Send, contracts: Contracts, decoder: Decoder,
                 pseudonyms: Pseudonymiser, *, lateness_s: float, order: Ordering,
                 refit: Refitter | None = None, online: OnlineModels | None = None,
                 rulebook: RuleBook | None = None) -> None:
        self.store, self.send, self.decoder, self.lateness_s = store, send, decoder, lateness_s
        self.order, self.refit, self.online, self.rulebook = order, refit, online, rulebook
        self.types = {t.name: t.event_type for t in contracts.inputs}
        roles = ("segments", "alerts", "dead-letter", "training")
        self.outlets = Outlets({r: contracts.one(r).name for r in roles}, pseudonyms)
        self._arrivals = Arrivals(self.order.idle_after_s, self.order.clock())
        self._lock = asyncio.Lock()

    async def handle(self, records: list[Consumed], partitions: Iterable[int] = ()) -> None:
        """Apply ``records`` (and release what waits on ``partitions``); returns only once their
        effects are durable. Batches and ticks run one at a time.

        Broker or Redis outages are retried until they end. Any other error is retried
        ``BUG_RETRIES`` times, then every record of the batch is dead-lettered with reason
        ``processing_error`` and the error's text, so the stream moves on and nothing is lost.
        """
        async with self._lock:
            await self._retrying(records, tuple(partitions))

    async def tick(self, partitions: Iterable[int]) -> None:
        """Release held events and fire due timers of ``partitions`` when no records arrive."""
        parts = sorted(set(partitions))
        if parts:
            await self.handle([], parts)

    async def _retrying(self, records: list[Consumed], partitions: tuple[int, ...]) -> None:
        failure: str | None = None
        delay, bugs = 0.5, 0
        while True:
            try:
                return await self._handle(records, failure, partitions)
            except Conflict:
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

    async def _handle(self, records: list[Consumed], failure: str | None, partitions: Iterable[int]) -> None:
        parts = sorted({r.partition for r in records} | set(partitions))
        async with self.store.guard(parts) as guard:
            await self._apply(records, failure, parts, guard)

    def _decode(self, records: list[Consumed], failure: str | None) -> list[Verdict]:
        """Each record with its event, or its rejection (all of them, after ``failure``)."""
        if failure is not None:
            return [r.reject("processing_error", failure) for r in records]
        now = datetime.now(timezone.utc)
        return [self._verdict(r, now) for r in records]

    def _verdict(self, r: Consumed, now: datetime) -> Verdict:
        d = self.decoder.decode(r.value, r.source, self.types[r.topic], now)
        return r.decoded(d) if isinstance(d, Decoded) else d

    async def _apply(self, records: list[Consumed], failure: str | None, parts: list[int], guard: Any) -> None:
        started = time.time()
        verdicts = self._decode(records, failure)
        customers = sorted({v.ev.customer_id for v in verdicts if isinstance(v, Consumed)})
        loaded = await self.store.load(customers, [tp_key(t, p) for p in parts for t in self.types])
        await self._recover(loaded.outboxes)
        batch = self._admit(records, verdicts, loaded, parts, started)
        waiting = await self.store.waiting(self._watermarks(batch), self.order.release_limit)
        if not (records or waiting.held or waiting.due):
            self._poke(batch, waiting)
            return
        profiles = await self._profiles(loaded, waiting)
        rules = await self._rules()
        population = await self._with_items(await self._population(loaded), profiles, batch, waiting, rules)
        changes = plan(batch, waiting, profiles, population, rules, self.outlets, datetime.now(timezone.utc),
                       self._grid(loaded), loaded.erased)
        for rej in changes.rejected:
            if rej.reason == "processing_error" and failure is None:
                log.error("event at %s could not be processed: %s", rej.source, rej.message)
        await self.store.write(changes, guard)
        await self._publish(changes)
        self._poke(batch, waiting)

    def _admit(self, records: list[Consumed], verdicts: list[Verdict], loaded: Loaded, parts: list[int],
               started: float) -> Batch:
        """The batch's fresh records sorted, and its applied offsets."""
        new = fresh(verdicts, loaded.offsets)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("batch of %d records (%d fresh): %s; applied offsets %s", len(records), len(new),
                      applied_offsets(records, {}), loaded.offsets)
        self._arrived(v.source for v in new)
        return Batch(parts, intake(new, loaded.high_marks, self.lateness_s, loaded.erased),
                     applied_offsets(records, loaded.offsets), len(records) - len(new), started)

    def _watermarks(self, batch: Batch) -> dict[int, float]:
        return watermarks(batch.intake.high, self.types, batch.partitions,
                          lambda tp: self._idle(tp, batch.offsets), self.order.delay_s)

    async def _profiles(self, loaded: Loaded, waiting: Waiting) -> dict[str, Profile | None]:
        """Stored profiles of every customer the batch touches: its events', released ones' and due ones'."""
        wanted = missing(loaded, waiting)
        stored = await self.store.profiles(wanted) if wanted else {}
        return {**loaded.profiles, **{c: stored.get(c) for c in wanted}}

    async def _with_items(self, pop: Population, profiles: dict[str, Profile | None], batch: Batch,
                          waiting: Waiting, rules: Rules) -> Population:
        """``pop`` with the item counters of every SKU the batch's customers have among their recent
        items or touch in the batch (the offers of the alerts it fires read them)."""
        if rules.items is None:
            return pop
        skus = {sku for p in profiles.values() if p is not None for sku, _ in p.items.items}
        for ev in [r.ev for r in batch.intake.events] + [h.event for h in waiting.held]:
            if isinstance(ev, Click) and ev.sku:
                skus.add(ev.sku)
            elif isinstance(ev, Purchase):
                skus.update(line.sku for line in ev.items)
        view = await self.store.items(skus, rules.offers + rules.items.bought)
        return pop if view is None else replace(pop, items=view)

    async def _rules(self) -> Rules:
        """The thresholds, with the trigger rules in force at this batch boundary."""
        if self.rulebook is None:
            return self.store.rules
        rs = await self.rulebook.current()
        if rs is not self.store.rules.triggers:
            self.store.rules = replace(self.store.rules, triggers=rs)
        return self.store.rules

    async def _population(self, loaded: Loaded) -> Population:
        if self.online is None:
            return loaded.population
        await self.online.refresh()
        return self.online.population(loaded.population)

    async def _publish(self, changes: Changes) -> None:
        """Send the batch's records, then clear the outbox that held them."""
        if changes.outbox is not None:
            await self._send(changes.records)
            await self.store.published(list(changes.partitions), changes.outbox)

    def _grid(self, loaded: Loaded) -> FitGrid | None:
        """The population fit times not fitted yet, whose rows a batch leaves (None without fits)."""
        if self.refit is None:
            return None
        fitted = None if loaded.fitted_at is None else datetime.fromtimestamp(loaded.fitted_at, timezone.utc)
        return FitGrid(self.refit.every, fitted)

    def _poke(self, batch: Batch, waiting: Waiting) -> None:
        """Tell the refitter how far each partition is applied: its watermark after the
        release limit, or ``inf`` once it has nothing to read and every event it carried is applied."""
        if self.refit is None:
            return
        self.refit.poke({p: float("inf") if self._done(p, t, batch) else t for p, t in waiting.watermarks.items()})

    def _done(self, partition: int, applied: float, batch: Batch) -> bool:
        tps = [tp_key(t, partition) for t in self.types]
        newest = max((batch.intake.high[tp] for tp in tps if tp in batch.intake.high), default=float("-inf"))
        return applied >= newest and all(self._idle(tp, batch.offsets) for tp in tps)

    def _arrived(self, sources: Iterable[Any]) -> None:
        self._arrivals.arrived((tp_key(s.topic, s.partition) for s in sources), self.order.clock())

    def _idle(self, tp: str, offsets: dict[str, int]) -> bool:
        """Nothing left to read on ``tp``, which is quiet (``eventtime.Arrivals``)."""
        return self._arrivals.quiet(tp, self.order.clock()) and not self.order.pending(tp, offsets.get(tp, -1))

    async def _send(self, records: Iterable[Outgoing]) -> None:
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
