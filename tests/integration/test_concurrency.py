"""Two processors applying records of the same partition at the same moment lose no update.

The scene: a worker that lost partition 0 in a rebalance still finishes the batch it had
(records 0-19), while the worker that took the partition over starts from the committed
offset and applies records 0-39. The old worker is made to write last, after both have
read the same state; the applied offsets it WATCHes make its write fail, so it re-reads,
finds its records applied, and changes nothing."""

from __future__ import annotations

import asyncio

import orjson
import redis
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from streamproc.ordering import Consumed
from streamproc.runtime import assemble
from streamproc.runtime.admin import bootstrap
from streamproc.runtime.processor import Processor
from streamproc.runtime.store import RedisStore
from streamproc.settings import Settings
from tests.builders import minute_click


async def run_pair(kafka_url: str, redis_url: str, contracts) -> None:  # noqa: ANN001
    s = Settings()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(kafka_url))
    await producer.start()

    async def send(topic: str, key: bytes, value: bytes):  # noqa: ANN202
        return await producer.send(topic, value, key=key)

    new_done = asyncio.Event()

    class WritesLast(RedisStore):
        async def write(self, ch, pipe):  # noqa: ANN001, ANN202
            await new_done.wait()
            await super().write(ch, pipe)

    def processor(store_class: type[RedisStore] = RedisStore) -> Processor:
        store = assemble.redis_store(s, aioredis.Redis.from_url(redis_url), kind=store_class)
        return assemble.processor(s.model_copy(update={"idle_after_s": 0.0}), contracts, send, store=store)

    old = [Consumed("clickstream", 0, i, minute_click(i)) for i in range(0, 20)]
    new = [Consumed("clickstream", 0, i, minute_click(i)) for i in range(0, 40)]

    async def take_over() -> None:
        await processor().handle(new)
        new_done.set()

    try:
        await asyncio.gather(processor(WritesLast).handle(old), take_over())
    finally:
        await producer.stop()


def test_concurrent_batches_of_one_partition_lose_nothing(kafka_url, redis_url, contracts):
    asyncio.run(run_pair(kafka_url, redis_url, contracts))
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    key = Settings().pseudonymiser().customer("Z1")
    assert orjson.loads(r.get(f"sp:profile:{{{key}}}"))["events"] == 40
    assert r.hget("sp:offsets:{p0}", "clickstream:0") == "39"
    assert int(r.hget("sp:stats", "applied")) == 40
    assert int(r.hget("sp:stats", "redelivered")) == 20
