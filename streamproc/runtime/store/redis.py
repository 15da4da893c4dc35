"""Redis: load what a batch needs in one round trip, write what it changed in one transaction.

In: customer ids, topic-partitions, a batch's changes. Out: profiles, applied offsets, event-time high marks,
the population, held events and due timers (``Loaded``, ``Waiting``; see ``base.Store`` for the contract).
A held event is a member of its partition's buffer (the JSON document of ``ordering.Held``). The write is one MULTI/EXEC, so a batch's profiles,
offsets, indexes and counters become visible together or not at all; it runs on a connection
that WATCHes the applied offsets of the batch's partitions, so two workers that both believe
they own a partition (around a rebalance) cannot overwrite each other's updates.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import orjson
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from streamproc.decisions.rules import Rules
from streamproc.eventtime import partition_of
from streamproc.models.items import ItemView
from streamproc.ordering import Held
from streamproc.pipeline import next_due
from streamproc.plan import Changes, Loaded, Waiting
from streamproc.records import Alert, SegmentChange
from streamproc.runtime.erasure import erased_key, tombstone
from streamproc.runtime.items import RedisItems
from streamproc.runtime.population import PopulationView, rankings
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.runtime.store.base import Conflict
from streamproc.state import codec
from streamproc.state.profile import Profile

RECENT_ALERTS = 50
WRITTEN_KEPT = 2048
"""Profiles a store keeps, with the documents it wrote for them, to skip decoding them again."""
CLEAR_OUTBOX = """
for _, key in ipairs(KEYS) do
    if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""
"""Delete each outbox key (KEYS) that still holds the published outbox (ARGV[1]), not a newer one."""


class RedisStore:
    """Batched reads and transactional writes of customer state in Redis (a ``Store``).

    The store keeps the profiles it wrote last (up to ``WRITTEN_KEPT``) with their documents:
    a document read back unchanged is the profile kept for it (``codec`` round-trips profiles
    exactly), and any other document, written by another worker say, is decoded.
    """

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, rules: Rules, *, top_fraction: float,
                 min_population: int, timeout_s: float, margin: float) -> None:
        self.r, self.keys, self.rules = client, keys, rules
        self._timeout = timeout_s
        self.population = PopulationView(keys, top_fraction, min_population, margin)
        self._written: dict[str, tuple[bytes, Profile]] = {}
        self._sized = False
        self._clear = client.register_script(CLEAR_OUTBOX)
        self.item_counts = RedisItems(client, keys, rules.items) if rules.items is not None else None
        self.trips = 0
        """Round trips to Redis since the last write (counted into ``redis_round_trips`` with it)."""

    @asynccontextmanager
    async def guard(self, partitions: Iterable[int]) -> AsyncIterator[aioredis.client.Pipeline]:
        """A connection WATCHing the applied offsets of ``partitions``: a ``write`` through it
        fails with ``WatchError`` if another worker applied records of those partitions since."""
        async with self.r.pipeline(transaction=True) as pipe:
            async with asyncio.timeout(self._timeout):
                await pipe.watch(*[self.keys.offsets(p) for p in sorted(set(partitions))])
            self.trips += 1
            yield pipe

    async def load(self, customers: list[str], tps: list[str]) -> Loaded:
        by_partition: dict[int, list[str]] = {}
        for tp in tps:
            by_partition.setdefault(partition_of(tp), []).append(tp)
        async with asyncio.timeout(self._timeout):
            pipe = self.r.pipeline(transaction=False)
            if customers:
                pipe.mget([self.keys.profile(cid) for cid in customers])
                pipe.hmget(erased_key(self.keys), [tombstone(cid) for cid in customers])
            for p, fields in by_partition.items():
                pipe.hmget(self.keys.offsets(p), fields)
            pipe.hgetall(self.keys.watermarks)
            self.population.queue(pipe)
            if by_partition:
                pipe.mget([self.keys.outbox(p) for p in by_partition])
            res = await pipe.execute()
        self.trips += 1
        docs: list[bytes | None] = res.pop(0) if customers else []
        gone: list[bytes | None] = res.pop(0) if customers else []
        outboxes = list(dict.fromkeys(b for b in res.pop() if b)) if by_partition else []
        m = len(by_partition)
        offsets = {tp: int(v) for (p, fields), got in zip(by_partition.items(), res[:m])
                   for tp, v in zip(fields, got) if v is not None}
        reply = res[m + 1] if self._sized else await self._first_population(res[m + 1])
        population, version, fitted_at = self.population.parse(reply)
        if version != self.population.version:
            async with asyncio.timeout(self._timeout):
                await self.population.reload(self.r)
            population, _, _ = self.population.parse(reply)
        return Loaded(
            profiles={cid: self._profile(cid, doc) for cid, doc in zip(customers, docs)},
            offsets=offsets,
            high_marks={k.decode(): float(v) for k, v in res[m].items()},
            population=population,
            outboxes=outboxes,
            erased={cid for cid, t in zip(customers, gone) if t is not None},
            fitted_at=fitted_at,
        )

    async def _first_population(self, reply: list[object]) -> list[object]:
        """The population read once more after the store's first read. A read places its
        quantile ranks with the sizes the previous read returned; the first has none, so its
        bounds would be the minimum values. Read again with the sizes, a store just started
        (a restart, or a worker that takes partitions over) decides its first batch with the
        same bounds as the store before it."""
        self.population.parse(reply)
        async with asyncio.timeout(self._timeout):
            pipe = self.r.pipeline(transaction=False)
            self.population.queue(pipe)
            (again,) = await pipe.execute()
        self.trips += 1
        self._sized = True
        return again

    async def waiting(self, watermarks: Mapping[int, float], limit: int) -> Waiting:
        """Held events at or below each partition's watermark (at most ``limit`` per partition,
        oldest first) and customers whose next timer is due by it. A partition whose release hit
        the limit has its watermark lowered to the newest event released (in ``Waiting.watermarks``)."""
        marks = dict(watermarks)
        parts = [p for p, wm in marks.items() if wm != float("-inf")]
        if not parts:
            return Waiting([], {}, marks)
        async with asyncio.timeout(self._timeout):
            pipe = self.r.pipeline(transaction=False)
            for p in parts:
                pipe.zrangebyscore(self.keys.buffer(p), "-inf", watermarks[p], start=0, num=limit, withscores=True)
                pipe.zrangebyscore(self.keys.due(p), "-inf", watermarks[p], start=0, num=limit)
            res = await pipe.execute()
        self.trips += 1
        held: list[Held] = []
        due: dict[str, int] = {}
        for i, p in enumerate(parts):
            members, ids = res[2 * i], res[2 * i + 1]
            if len(members) == limit:
                marks[p] = members[-1][1]  # type: ignore[index]
            held += [Held.parse(m, p) for m, _ in members]
            due.update((cid.decode(), p) for cid in ids)
        return Waiting(held, due, marks)

    async def profiles(self, customers: list[str]) -> dict[str, Profile]:
        async with asyncio.timeout(self._timeout):
            res = await self.r.mget([self.keys.profile(cid) for cid in customers])
        self.trips += 1
        return {cid: p for cid, doc in zip(customers, res) if (p := self._profile(cid, doc)) is not None}

    def _profile(self, cid: str, doc: bytes | None) -> Profile | None:
        if not doc:
            return None
        kept = self._written.get(cid)
        return kept[1] if kept is not None and kept[0] == doc else codec.loads(Profile, doc)

    def _keep(self, docs: Mapping[str, bytes], profiles: Mapping[str, Profile]) -> None:
        """Remember what a committed write stored, forgetting the oldest beyond ``WRITTEN_KEPT``."""
        for cid, doc in docs.items():
            self._written.pop(cid, None)
            self._written[cid] = (doc, profiles[cid])
        for cid in list(itertools.islice(self._written, max(len(self._written) - WRITTEN_KEPT, 0))):
            del self._written[cid]

    async def write(self, ch: Changes, pipe: aioredis.client.Pipeline) -> None:
        """Everything ``ch`` changed, in one MULTI/EXEC on the ``guard`` connection ``pipe``;
        ``Conflict`` if another writer changed a guarded partition since the guard was opened."""
        try:
            await self._transaction(ch, pipe)
        except WatchError as exc:
            raise Conflict(str(exc)) from exc

    async def _transaction(self, ch: Changes, pipe: aioredis.client.Pipeline) -> None:
        async with asyncio.timeout(self._timeout):
            pipe.multi()
            docs = self._write_profiles(pipe, ch)
            self._write_outputs(pipe, ch.outputs)
            self._write_hourly(pipe, ch.hourly)
            if self.item_counts is not None:
                self.item_counts.write(pipe, ch.items)
            self._write_buffer(pipe, ch.hold, ch.release)
            self._write_fit_rows(pipe, ch)
            for p in ch.partitions:
                pipe.hincrby(self.keys.offsets(p), "writes", 1)  # any write of p fails other writers' WATCH
                if ch.outbox is not None:
                    pipe.set(self.keys.outbox(p), ch.outbox)
                else:
                    pipe.delete(self.keys.outbox(p))
            offsets: dict[int, dict[str, int]] = {}
            for tp, offset in ch.offsets.items():
                offsets.setdefault(partition_of(tp), {})[tp] = offset
            for p, applied in offsets.items():
                pipe.hset(self.keys.offsets(p), mapping=applied)
            if ch.high_marks:
                pipe.hset(self.keys.watermarks, mapping=dict(ch.high_marks))
            for name, n in ch.stats.items():
                if n:
                    pipe.hincrby(self.keys.stats, name, n)
            pipe.hincrby(self.keys.stats, "batches", 1)  # this write, and the outbox's clearing after it:
            pipe.hincrby(self.keys.stats, "redis_round_trips", self.trips + 1 + (ch.outbox is not None))
            self.trips = 0
            pipe.hsetnx(self.keys.stats, "first_at", ch.started_at)
            pipe.hset(self.keys.stats, "last_at", datetime.now(timezone.utc).timestamp())
            await pipe.execute()
        self._keep(docs, ch.profiles)

    async def items(self, skus: Iterable[str], top: int) -> ItemView | None:
        """The item counters of ``skus`` as of at most ``RedisItems.ttl_s`` ago (``runtime.items``)."""
        if self.item_counts is None:
            return None
        before = self.item_counts.reads
        view = await self.item_counts.view(skus, top)
        self.trips += self.item_counts.reads - before
        return view

    async def published(self, partitions: Iterable[int], outbox: bytes) -> None:
        """``outbox`` is published: remove it from ``partitions`` (not a newer one written since)."""
        keys = [self.keys.outbox(p) for p in partitions]
        if keys:
            async with asyncio.timeout(self._timeout):
                await self._clear(keys=keys, args=[outbox])

    def _write_profiles(self, pipe: aioredis.client.Pipeline, ch: Changes) -> dict[str, bytes]:
        """The profiles, with one command per index: their timers, and the population rankings
        of the members whose ranked value changed since ``ch.stored`` (the others hold it already,
        written in the same transaction as the stored profile). Returns the documents by customer."""
        docs: dict[str, bytes] = {}
        if not ch.profiles:
            return docs
        due: dict[int, dict[str, float]] = {}
        undue: dict[int, list[str]] = {}
        ranked: dict[str, dict[str, float]] = {}
        for cid, p in ch.profiles.items():
            docs[cid] = codec.dumps(p)
            partition = ch.partition_of[cid]
            at = next_due(p, self.rules)
            if at is None:
                undue.setdefault(partition, []).append(cid)
            else:
                due.setdefault(partition, {})[cid] = at.timestamp()
            for dim, score in rankings(p, ch.stored.get(cid)):
                ranked.setdefault(self.population.dims[dim][0], {})[cid] = score
        pipe.mset({self.keys.profile(cid): doc for cid, doc in docs.items()})
        for partition, gone in undue.items():
            pipe.zrem(self.keys.due(partition), *gone)
        for partition, members in due.items():
            pipe.zadd(self.keys.due(partition), members)
        for key, members in ranked.items():
            pipe.zadd(key, members)
        return docs

    def _write_fit_rows(self, pipe: aioredis.client.Pipeline, ch: Changes) -> None:
        """The rows customers left for fit times (``features.population``; the first row left for a
        customer and a fit time is kept, never overwritten), and the earliest event
        time of the customers seen first (the first fit is scheduled from it)."""
        rows: dict[tuple[float, str], bytes] = {}
        for at, r in ch.fit_rows:
            rows.setdefault((at.timestamp(), r.customer_id), codec.dumps(r))
        for (at, cid), doc in rows.items():
            pipe.hsetnx(self.keys.fit_rows(at), cid, doc)
        first = [p.first_seen.timestamp() for cid, p in ch.profiles.items() if ch.stored.get(cid) is None]
        if first:
            pipe.zadd(self.keys.first_event, {"first": min(first)}, lt=True)

    def _write_hourly(self, pipe: aioredis.client.Pipeline, hourly: Mapping[int, Mapping[str, int]]) -> None:
        for hour, counts in hourly.items():
            for name, n in counts.items():
                pipe.hincrby(self.keys.hourly(hour), name, n)
        if hourly:
            pipe.zadd(self.keys.hourly(), {str(h): h for h in hourly})

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

    def _write_outputs(self, pipe: aioredis.client.Pipeline, outputs: Iterable[object]) -> None:
        alerts = []
        for o in outputs:
            if isinstance(o, SegmentChange):
                if o.old:
                    pipe.hincrby(self.keys.segments(o.dimension), o.old, -1)
                    pipe.srem(self.keys.members(o.dimension, o.old), o.customer_id)
                pipe.hincrby(self.keys.segments(o.dimension), o.new, 1)
                pipe.sadd(self.keys.members(o.dimension, o.new), o.customer_id)
            elif isinstance(o, Alert):
                alerts.append(orjson.dumps(o.to_dict()))
        if alerts:
            pipe.lpush(self.keys.recent_alerts, *alerts)
            pipe.ltrim(self.keys.recent_alerts, 0, RECENT_ALERTS - 1)
