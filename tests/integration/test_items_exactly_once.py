"""The item model's counters in Redis are as exactly-once as the profiles: a redelivered batch, or
events resent under new offsets, change nothing; and they equal the in-memory store's."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from streamproc.ops.produce import event_records
from streamproc.ordering import Consumed
from streamproc.runtime import assemble
from streamproc.runtime.admin import bootstrap
from streamproc.runtime.store import MemoryStore
from streamproc.settings import Settings
from streamproc.sim.generator import GeneratorConfig, generate

Snapshot = dict[str, list[tuple[str, float]]]


def counters(redis_url: str) -> Snapshot:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    return {key: r.zrange(key, 0, -1, withscores=True) for key in sorted(r.scan_iter("sp:items:*"))}


def table(store: MemoryStore) -> Snapshot:
    t = store.table
    assert t is not None
    out = {"sp:items:pop": sorted(t.popularity.items(), key=lambda kv: (kv[1], kv[0]))}
    out |= {f"sp:items:co:{a}": sorted(row.items(), key=lambda kv: (kv[1], kv[0])) for a, row in t.co.items() if row}
    return dict(sorted(out.items()))


async def apply(kafka_url: str, redis_url: str | None, contracts: Any, chunks: list[list[Consumed]],
                memory: MemoryStore | None = None) -> None:
    s = Settings()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(kafka_url))
    await producer.start()

    async def send(topic: str, key: bytes, value: bytes):  # noqa: ANN202
        return await producer.send(topic, value, key=key)

    store = memory if memory is not None else assemble.redis_store(s, aioredis.Redis.from_url(redis_url))
    proc = assemble.processor(s.model_copy(update={"idle_after_s": 0.0}), contracts, send, store=store)
    try:
        for chunk in chunks:
            await proc.handle(chunk, [0])
    finally:
        await producer.stop()


def test_a_redelivered_batch_leaves_the_item_model_unchanged(kafka_url, redis_url, contracts) -> None:
    events = list(generate(GeneratorConfig(customers=12, days=30, seed=3)))
    offsets: dict[str, int] = {}
    records = []
    for topic, _, value in event_records(contracts, events):
        records.append(Consumed(topic, 0, offsets.setdefault(topic, 0), value))
        offsets[topic] += 1
    chunks = [records[i:i + 250] for i in range(0, len(records), 250)]

    asyncio.run(apply(kafka_url, redis_url, contracts, chunks))
    first = counters(redis_url)
    assert len(first) > 20 and first["sp:items:pop"], "the stream taught the item model nothing"

    r = redis.Redis.from_url(redis_url)
    applied = int(r.hget("sp:stats", "applied"))
    asyncio.run(apply(kafka_url, redis_url, contracts, chunks[-2:]))  # redelivered: the same offsets again
    assert counters(redis_url) == first
    assert int(r.hget("sp:stats", "redelivered")) == sum(map(len, chunks[-2:]))
    resent = [Consumed(r.topic, 0, r.offset + 100_000, r.value) for r in records[-30:]]
    asyncio.run(apply(kafka_url, redis_url, contracts, [resent]))  # resent events under new offsets
    assert counters(redis_url) == first
    assert int(r.hget("sp:stats", "applied")) == applied  # each a duplicate, or too late: none applied again
    assert int(r.hget("sp:stats", "duplicates")) + int(r.hget("sp:stats", "dead_lettered")) == len(resent)

    memory = assemble.memory_store(Settings())
    asyncio.run(apply(kafka_url, None, contracts, chunks, memory))
    assert table(memory) == first  # the in-memory store counts exactly what Redis counts
    assert orjson.loads(orjson.dumps(first))  # JSON-ready, for the failure message
