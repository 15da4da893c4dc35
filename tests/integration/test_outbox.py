"""A worker that dies between committing a batch and publishing its records: the batch's
outbox, written in the same transaction as its state, is published by the next batch of
those partitions, once, with the content decided at the commit."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from streamproc.ordering import Consumed
from streamproc.runtime import assemble
from streamproc.runtime.admin import bootstrap
from streamproc.runtime.processor import Processor
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.settings import Settings
from tests.builders import minute_click
from tests.live import consume, processed


class Died(BaseException):
    """The process ending: no handler of the processor's catches it."""


async def crash_then_recover(kafka_url: str, redis_url: str, contracts) -> list[str]:  # noqa: ANN001
    s = Settings()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(kafka_url))
    await producer.start()
    sent: list[str] = []

    async def send(topic: str, key: bytes, value: bytes):  # noqa: ANN202
        sent.append(topic)
        return await producer.send(topic, value, key=key)

    async def die(topic: str, key: bytes, value: bytes):  # noqa: ANN202
        raise Died

    def processor(publish) -> Processor:  # noqa: ANN001
        store = assemble.redis_store(s, aioredis.Redis.from_url(redis_url))
        return assemble.processor(s.model_copy(update={"idle_after_s": 0.0}), contracts, publish, store=store)

    batch = [Consumed("clickstream", 0, i, minute_click(i)) for i in range(10)] + [Consumed("clickstream", 0, 10, b"{")]
    try:
        with pytest.raises(Died):
            await processor(die).handle(batch)  # committed, then died publishing
        assert redis.Redis.from_url(redis_url).get(RedisKeys().outbox(0)) is not None
        await processor(send).handle(batch)  # the same records, redelivered to a new worker
    finally:
        await producer.stop()
    return sent


def test_records_of_a_batch_committed_before_a_crash_are_published_once(kafka_url, redis_url, contracts):
    sent = asyncio.run(crash_then_recover(kafka_url, redis_url, contracts))
    segments, dead = consume(kafka_url, "segments"), consume(kafka_url, "dead-letter")
    assert [r["new"] for r in segments if r["dimension"] == "lifecycle"] == ["new"]
    assert len(dead) == 1 and dead[0]["reason"] == "malformed_json"
    assert sorted(sent) == sorted(["segments"] * len(segments) + ["dead-letter"])  # once each, nothing else
    assert redis.Redis.from_url(redis_url).get(RedisKeys().outbox(0)) is None
    assert processed(redis_url) == 11  # counted once
