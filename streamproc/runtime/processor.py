"""One batch of input records, end to end: decode, dedupe, apply, sweep, publish, commit.

In: ``RawRecord``s from the input topics. Out: records on ``segments``, ``alerts`` and
``dead-letter``, and one Redis transaction with the new state.

Effects are exactly-once over at-least-once delivery:

* records at or below the applied offset of their partition (stored in the same
  transaction as the state) are redeliveries and are skipped;
* an event id already in the customer's dedupe window is a resent event and is skipped;
* outputs are published and acknowledged *before* the state is written, with ids derived
  from their cause, so a crash in between republishes identical records and never loses one.

Infrastructure failures (Redis or Kafka unreachable) retry the whole batch with backoff and
never dead-letter an event; bad events are dead-lettered and never stop the stream.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from streamproc.contracts import Contracts
from streamproc.ingest.decode import Decoder, Rejection, Source
from streamproc.ingest.events import InputEvent
from streamproc.decisions.records import SegmentChange
from streamproc.pipeline import BatchResult, Output, apply_batch, sweep
from streamproc.eventtime import advance, tp_key, watermarks
from streamproc.runtime.store import Changes, Loaded, Store

log = logging.getLogger(__name__)
BUG_RETRIES = 3

Send = Callable[[str, bytes, bytes], Awaitable[Awaitable[object]]]


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A Kafka record as consumed."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


def dead_letter(rej: Rejection) -> dict[str, object]:
    """The dead-letter record of a rejection, keeping the original bytes."""
    try:
        original, encoding = rej.raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        original, encoding = base64.b64encode(rej.raw).decode(), "base64"
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

    def __init__(self, store: Store, send: Send, contracts: Contracts, decoder: Decoder, lateness_s: float) -> None:
        self.store, self.send, self.decoder, self.lateness_s = store, send, decoder, lateness_s
        self.types = {t.name: t.event_type for t in contracts.inputs}
        self.topic = {r: contracts.one(r).name for r in ("segments", "alerts", "dead-letter")}

    async def handle(self, records: list[RawRecord]) -> None:
        """Apply ``records``; returns only once their effects are durable.

        Broker or Redis outages are retried until they end. Any other error is retried
        ``BUG_RETRIES`` times, then every record of the batch is dead-lettered with reason
        ``processing_error`` and the error's text, so the stream moves on and nothing is lost.
        """
        failure: str | None = None
        delay, bugs = 0.5, 0
        while True:
            try:
                return await self._handle(records, failure)
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

    def _decode(self, records: list[RawRecord], failure: str | None) -> list[tuple[RawRecord, InputEvent | Rejection]]:
        if failure is not None:
            return [(r, Rejection(Source(r.topic, r.partition, r.offset), "processing_error", failure, r.value or b""))
                    for r in records]
        return [(r, self.decoder.decode(r.value, Source(r.topic, r.partition, r.offset), self.types[r.topic]))
                for r in records]

    async def _handle(self, records: list[RawRecord], failure: str | None) -> None:
        started = time.time()
        decoded = self._decode(records, failure)
        customers = sorted({d.customer_id for _, d in decoded if not isinstance(d, Rejection)})
        loaded = await self.store.load(customers, sorted({tp_key(r.topic, r.partition) for r in records}))
        fresh = [(r, d) for r, d in decoded if r.offset > loaded.offsets.get(tp_key(r.topic, r.partition), -1)]
        rejected = [d for _, d in fresh if isinstance(d, Rejection)]
        events = [d for _, d in fresh if not isinstance(d, Rejection)]
        result = apply_batch(events, loaded.profiles, loaded.population, self.store.rules)
        rejected += self._failed(result, fresh)
        partition_of = {d.customer_id: r.partition for r, d in fresh if not isinstance(d, Rejection)}
        high = advance(loaded.high_marks, ((r.topic, r.partition, d.ts.timestamp())
                                           for r, d in fresh if not isinstance(d, Rejection)))
        swept = await self._sweep(result, loaded, watermarks(high, self.types, self.lateness_s), partition_of)
        outputs = result.outputs + swept.outputs
        await self._publish(outputs, rejected)
        await self.store.write(Changes(
            profiles={**result.profiles, **swept.profiles}, partition_of=partition_of, outputs=outputs,
            offsets=self._offsets(records), high_marks=high, started_at=started,
            stats=self._stats(records, fresh, result, outputs, rejected),
        ))

    def _failed(self, result: BatchResult, fresh: list[tuple[RawRecord, InputEvent | Rejection]]) -> list[Rejection]:
        raw_of = {id(d): r for r, d in fresh}
        out = []
        for event, why in result.failed:
            r = raw_of[id(event)]
            log.error("event %s could not be processed: %s", event.event_id, why)
            out.append(Rejection(Source(r.topic, r.partition, r.offset), "processing_error", why, r.value or b""))
        return out

    async def _sweep(self, result: BatchResult, loaded: Loaded, wm: dict[int, float],
                     partition_of: dict[str, int]) -> BatchResult:
        due = await self.store.due(wm) if wm else {}
        missing = [cid for cid in due if cid not in result.profiles and loaded.profiles.get(cid) is None]
        stored = await self.store.profiles(missing) if missing else {}
        for cid, p in due.items():
            partition_of.setdefault(cid, p)
        candidates = {**stored, **{c: p for c, p in loaded.profiles.items() if c in due and p is not None},
                      **result.profiles}
        now = {cid: _utc(wm.get(partition_of[cid], 0.0)) for cid in candidates}
        return sweep(candidates, now, loaded.population, self.store.rules)

    async def _publish(self, outputs: list[Output], rejected: list[Rejection]) -> None:
        futs = []
        for o in outputs:
            topic = self.topic["segments"] if isinstance(o, SegmentChange) else self.topic["alerts"]
            futs.append(await self.send(topic, o.customer_id.encode(), orjson.dumps(o.to_dict())))
        for rej in rejected:
            futs.append(await self.send(self.topic["dead-letter"], rej.source.topic.encode(),
                                        orjson.dumps(dead_letter(rej))))
        if futs:
            await asyncio.gather(*futs)

    @staticmethod
    def _offsets(records: list[RawRecord]) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in records:
            key = tp_key(r.topic, r.partition)
            out[key] = max(out.get(key, -1), r.offset)
        return out

    @staticmethod
    def _stats(records: list[RawRecord], fresh: list[tuple[RawRecord, InputEvent | Rejection]],
               result: BatchResult, outputs: list[Output], rejected: list[Rejection]) -> Counter[str]:
        c: Counter[str] = Counter(f"in:{r.topic}" for r, _ in fresh)
        c["redelivered"] = len(records) - len(fresh)
        c["applied"] = sum(result.applied.values())
        c["duplicates"] = result.duplicates
        c["dead_lettered"] = len(rejected)
        c.update(f"dlq:{rej.reason}" for rej in rejected)
        c["segment_changes"] = sum(isinstance(o, SegmentChange) for o in outputs)
        c["alerts"] = len(outputs) - c["segment_changes"]
        return c
