"""Redis: load what a batch needs in one round trip, write what it changed in one transaction.

In: customer ids, topic-partitions, a batch's changes. Out: profiles, applied offsets, event-time high marks,
the population's top-spend threshold. The write is one MULTI/EXEC, so a batch's profiles,
offsets, indexes and counters become visible together or not at all; it runs on a connection
that WATCHes the applied offsets of the batch's partitions, so two workers that both believe
they own a partition (around a rebalance) cannot overwrite each other's updates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
import redis.asyncio as aioredis

from streamproc.decisions.records import Alert, SegmentChange
from streamproc.decisions.rules import Population, Rules
from streamproc.eventtime import partition_of
from streamproc.ingest.events import Click, Feedback, InputEvent, Purchase
from streamproc.pipeline import next_due
from streamproc.runtime.keys import Keys
from streamproc.runtime.population import PopulationView
from streamproc.state import codec
from streamproc.state.profile import Profile

RECENT_ALERTS = 50


def _profile(doc: bytes | None) -> Profile | None:
    return codec.loads(Profile, doc) if doc else None


@dataclass
class Loaded:
    """State read before a batch."""

    profiles: dict[str, Profile | None]
    offsets: dict[str, int]
    high_marks: dict[str, float]
    population: Population


_EVENT_TYPES: dict[str, type] = {c.__name__: c for c in (Click, Purchase, Feedback)}


@dataclass(frozen=True, slots=True)
class Held:
    """An event waiting in its partition's buffer for the watermark, with its source record."""

    event: InputEvent
    topic: str
    partition: int
    offset: int
    member: bytes

    @classmethod
    def of(cls, event: InputEvent, topic: str, partition: int, offset: int) -> Held:
        doc = {"topic": topic, "offset": offset, "type": type(event).__name__, "event": event}
        return cls(event, topic, partition, offset, orjson.dumps(doc))

    @classmethod
    def parse(cls, member: bytes, partition: int) -> Held:
        doc = orjson.loads(member)
        event = codec.loads(_EVENT_TYPES[doc["type"]], doc["event"])
        return cls(event, doc["topic"], partition, doc["offset"], member)


@dataclass
class Waiting:
    """What the watermark has released: held events (oldest first) and customers with a due timer."""

    held: list[Held]
    due: dict[str, int]


@dataclass
class Changes:
    """Everything one batch writes."""

    profiles: Mapping[str, Profile]
    partition_of: Mapping[str, int]
    outputs: Iterable[SegmentChange | Alert]
    offsets: Mapping[str, int]
    high_marks: Mapping[str, float]
    stats: Mapping[str, int]
    started_at: float
    partitions: Iterable[int] = ()
    hold: Iterable[Held] = ()
    release: Iterable[Held] = ()


class Store:
    """Batched reads and transactional writes of customer state."""

    def __init__(self, client: aioredis.Redis, keys: Keys, rules: Rules, top_fraction: float,
                 min_population: int, timeout_s: float, margin: float = 0.02) -> None:
        self.r, self.keys, self.rules = client, keys, rules
        self._timeout = timeout_s
        self.population = PopulationView(keys, top_fraction, min_population, margin)

    @asynccontextmanager
    async def guard(self, partitions: Iterable[int]) -> AsyncIterator[aioredis.client.Pipeline]:
        """A connection WATCHing the applied offsets of ``partitions``: a ``write`` through it
        fails with ``WatchError`` if another worker applied records of those partitions since."""
        async with self.r.pipeline(transaction=True) as pipe:
            async with asyncio.timeout(self._timeout):
                await pipe.watch(*[self.keys.offsets(p) for p in sorted(set(partitions))])
            yield pipe

    async def load(self, customers: list[str], tps: list[str]) -> Loaded:
        by_partition: dict[int, list[str]] = {}
        for tp in tps:
            by_partition.setdefault(partition_of(tp), []).append(tp)
        async with asyncio.timeout(self._timeout):
            pipe = self.r.pipeline(transaction=False)
            for cid in customers:
                pipe.get(self.keys.profile(cid))
            for p, fields in by_partition.items():
                pipe.hmget(self.keys.offsets(p), fields)
            pipe.hgetall(self.keys.watermarks)
            self.population.queue(pipe)
            res = await pipe.execute()
        n, m = len(customers), len(by_partition)
        offsets = {tp: int(v) for (p, fields), got in zip(by_partition.items(), res[n:n + m])
                   for tp, v in zip(fields, got) if v is not None}
        population, version = self.population.parse(res[n + m + 1:])
        if version != self.population.version:
            async with asyncio.timeout(self._timeout):
                await self.population.reload(self.r)
            population, _ = self.population.parse(res[n + m + 1:])
        return Loaded(
            profiles={cid: _profile(doc) for cid, doc in zip(customers, res[:n])},
            offsets=offsets,
            high_marks={k.decode(): float(v) for k, v in res[n + m].items()},
            population=population,
        )

    async def waiting(self, watermarks: Mapping[int, float], limit: int) -> Waiting:
        """Held events at or below each partition's watermark (at most ``limit`` per partition,
        oldest first) and customers whose next timer is due by it. A partition whose release hit
        the limit has its watermark lowered (in place) to the newest event released."""
        parts = [p for p, wm in watermarks.items() if wm != float("-inf")]
        if not parts:
            return Waiting([], {})
        async with asyncio.timeout(self._timeout):
            pipe = self.r.pipeline(transaction=False)
            for p in parts:
                pipe.zrangebyscore(self.keys.buffer(p), "-inf", watermarks[p], start=0, num=limit, withscores=True)
                pipe.zrangebyscore(self.keys.due(p), "-inf", watermarks[p], start=0, num=limit)
            res = await pipe.execute()
        held: list[Held] = []
        due: dict[str, int] = {}
        for i, p in enumerate(parts):
            members, ids = res[2 * i], res[2 * i + 1]
            if len(members) == limit:
                watermarks[p] = members[-1][1]  # type: ignore[index]
            held += [Held.parse(m, p) for m, _ in members]
            due.update((cid.decode(), p) for cid in ids)
        return Waiting(held, due)

    async def profiles(self, customers: list[str]) -> dict[str, Profile]:
        async with asyncio.timeout(self._timeout):
            pipe = self.r.pipeline(transaction=False)
            for cid in customers:
                pipe.get(self.keys.profile(cid))
            res = await pipe.execute()
        return {cid: p for cid, doc in zip(customers, res) if (p := _profile(doc)) is not None}

    async def write(self, ch: Changes, pipe: aioredis.client.Pipeline) -> None:
        """Everything ``ch`` changed, in one MULTI/EXEC on the ``guard`` connection ``pipe``."""
        async with asyncio.timeout(self._timeout):
            pipe.multi()
            for cid, p in ch.profiles.items():
                self._write_profile(pipe, p, ch.partition_of[cid])
            self._write_outputs(pipe, ch.outputs)
            self._write_buffer(pipe, ch.hold, ch.release)
            for p in ch.partitions:
                pipe.hincrby(self.keys.offsets(p), "writes", 1)  # any write of p fails other writers' WATCH
            for tp, offset in ch.offsets.items():
                pipe.hset(self.keys.offsets(partition_of(tp)), tp, offset)
            if ch.high_marks:
                pipe.hset(self.keys.watermarks, mapping=dict(ch.high_marks))
            for name, n in ch.stats.items():
                if n:
                    pipe.hincrby(self.keys.stats, name, n)
            pipe.hsetnx(self.keys.stats, "first_at", ch.started_at)
            pipe.hset(self.keys.stats, "last_at", datetime.now(timezone.utc).timestamp())
            await pipe.execute()

    def _write_profile(self, pipe: aioredis.client.Pipeline, p: Profile, partition: int) -> None:
        pipe.set(self.keys.profile(p.customer_id), codec.dumps(p))
        due = next_due(p, self.rules)
        if due is None:
            pipe.zrem(self.keys.due(partition), p.customer_id)
        else:
            pipe.zadd(self.keys.due(partition), {p.customer_id: due.timestamp()})
        if p.spend > 0:
            pipe.zadd(self.keys.spend, {p.customer_id: p.spend})
        if p.last_purchase is not None:
            pipe.zadd(self.keys.pop("recency"), {p.customer_id: p.last_purchase.timestamp()})
            pipe.zadd(self.keys.pop("frequency"), {p.customer_id: p.purchases})
        if p.value is not None:
            pipe.zadd(self.keys.pop("clv"), {p.customer_id: p.value.clv})

    def _write_buffer(self, pipe: aioredis.client.Pipeline, hold: Iterable[Held], release: Iterable[Held]) -> None:
        added: dict[int, dict[bytes, float]] = {}
        for h in hold:
            added.setdefault(h.partition, {})[h.member] = h.event.ts.timestamp()
        for p, members in added.items():
            pipe.zadd(self.keys.buffer(p), members)
        removed: dict[int, list[bytes]] = {}
        for h in release:
            removed.setdefault(h.partition, []).append(h.member)
        for p, gone in removed.items():
            pipe.zrem(self.keys.buffer(p), *gone)

    def _write_outputs(self, pipe: aioredis.client.Pipeline, outputs: Iterable[SegmentChange | Alert]) -> None:
        alerts = []
        for o in outputs:
            if isinstance(o, SegmentChange):
                if o.old:
                    pipe.hincrby(self.keys.segments(o.dimension), o.old, -1)
                pipe.hincrby(self.keys.segments(o.dimension), o.new, 1)
            else:
                alerts.append(orjson.dumps(o.to_dict()))
        if alerts:
            pipe.lpush(self.keys.recent_alerts, *alerts)
            pipe.ltrim(self.keys.recent_alerts, 0, RECENT_ALERTS - 1)
