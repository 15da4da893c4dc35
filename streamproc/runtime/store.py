"""Redis: load what a batch needs in one round trip, write what it changed in one transaction.

In: customer ids, topic-partitions, a batch's changes. Out: profiles, applied offsets, event-time high marks,
the population's top-spend threshold. The write is one MULTI/EXEC, so a batch's profiles,
offsets, indexes and counters become visible together or not at all; it runs on a connection
that WATCHes the applied offsets of the batch's partitions, so two workers that both believe
they own a partition (around a rebalance) cannot overwrite each other's updates.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
import redis.asyncio as aioredis

from streamproc.decisions.records import Alert, SegmentChange
from streamproc.decisions.rules import Population, Rules
from streamproc.decisions.lifecycle import next_due
from streamproc.eventtime import partition_of
from streamproc.runtime.keys import Keys
from streamproc.state import codec
from streamproc.state.profile import Profile

RECENT_ALERTS = 50


@dataclass
class Loaded:
    """State read before a batch."""

    profiles: dict[str, Profile | None]
    offsets: dict[str, int]
    high_marks: dict[str, float]
    population: Population


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


class Store:
    """Batched reads and transactional writes of customer state."""

    def __init__(self, client: aioredis.Redis, keys: Keys, rules: Rules, top_fraction: float,
                 min_population: int, timeout_s: float) -> None:
        self.r, self.keys, self.rules = client, keys, rules
        self._min_population, self._top_fraction = min_population, top_fraction
        self._timeout = timeout_s
        self._spenders = 0  # population size seen by the previous load, to place the rank query

    def _top_rank(self) -> int:
        return max(math.ceil(self._spenders * self._top_fraction) - 1, 0)

    def _population(self, card: int, ranked: list[tuple[bytes, float]]) -> Population:
        """The top-spend threshold, from the rank the previous population size pointed at."""
        self._spenders = card
        if card < self._min_population or not ranked:
            return Population(None)
        return Population(float(ranked[0][1]))

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
                pipe.hgetall(self.keys.profile(cid))
            for p, fields in by_partition.items():
                pipe.hmget(self.keys.offsets(p), fields)
            pipe.hgetall(self.keys.watermarks)
            pipe.zcard(self.keys.spend)
            rank = self._top_rank()
            pipe.zrevrange(self.keys.spend, rank, rank, withscores=True)
            res = await pipe.execute()
        n, m = len(customers), len(by_partition)
        offsets = {tp: int(v) for (p, fields), got in zip(by_partition.items(), res[n:n + m])
                   for tp, v in zip(fields, got) if v is not None}
        return Loaded(
            profiles={cid: codec.decode(h) for cid, h in zip(customers, res[:n])},
            offsets=offsets,
            high_marks={k.decode(): float(v) for k, v in res[n + m].items()},
            population=self._population(res[n + m + 1], res[n + m + 2]),
        )

    async def due(self, watermarks: Mapping[int, float], limit: int = 5000) -> dict[str, int]:
        """Customers whose next inactivity time has passed: id -> partition."""
        parts = list(watermarks)
        async with asyncio.timeout(self._timeout):
            pipe = self.r.pipeline(transaction=False)
            for p in parts:
                pipe.zrangebyscore(self.keys.due(p), "-inf", watermarks[p], start=0, num=limit)
            res = await pipe.execute()
        return {cid.decode(): p for p, ids in zip(parts, res) for cid in ids}

    async def profiles(self, customers: list[str]) -> dict[str, Profile]:
        async with asyncio.timeout(self._timeout):
            pipe = self.r.pipeline(transaction=False)
            for cid in customers:
                pipe.hgetall(self.keys.profile(cid))
            res = await pipe.execute()
        return {cid: p for cid, h in zip(customers, res) if (p := codec.decode(h)) is not None}

    async def write(self, ch: Changes, pipe: aioredis.client.Pipeline) -> None:
        """Everything ``ch`` changed, in one MULTI/EXEC on the ``guard`` connection ``pipe``."""
        async with asyncio.timeout(self._timeout):
            pipe.multi()
            for cid, p in ch.profiles.items():
                self._write_profile(pipe, p, ch.partition_of[cid])
            self._write_outputs(pipe, ch.outputs)
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
        pipe.hset(self.keys.profile(p.customer_id), mapping=codec.encode(p))
        due = next_due(p, self.rules)
        if due is None:
            pipe.zrem(self.keys.due(partition), p.customer_id)
        else:
            pipe.zadd(self.keys.due(partition), {p.customer_id: due.timestamp()})
        if p.spend > 0:
            pipe.zadd(self.keys.spend, {p.customer_id: p.spend})

    def _write_outputs(self, pipe: aioredis.client.Pipeline, outputs: Iterable[SegmentChange | Alert]) -> None:
        alerts = []
        for o in outputs:
            if isinstance(o, SegmentChange):
                if o.old:
                    pipe.hincrby(self.keys.lifecycle_counts, o.old, -1)
                pipe.hincrby(self.keys.lifecycle_counts, o.new, 1)
            else:
                alerts.append(orjson.dumps(o.to_dict()))
        if alerts:
            pipe.lpush(self.keys.recent_alerts, *alerts)
            pipe.ltrim(self.keys.recent_alerts, 0, RECENT_ALERTS - 1)
