"""The single learner on a real Redis and broker: exactly-once learning across restarts and
redeliveries, versioned publication of the models, and a model-health record on drift."""

from __future__ import annotations

import asyncio
import pickle
import random
from datetime import datetime, timezone
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from streamproc.models.training import LearnerState
from streamproc.records import Example
from streamproc.runtime.admin import bootstrap
from streamproc.runtime.learner import Learner, OnlineModels
from streamproc.runtime.redis_keys import RedisKeys
from tests.builders import churn_example
from tests.live import consume

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)



async def run_learner(redis_url: str, kafka_url: str, batches: list[list[tuple[int, bytes]]],
                      publish_examples: int = 100) -> Learner:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(kafka_url))
    await producer.start()

    async def send(topic: str, key: bytes, value: bytes) -> Any:
        return await producer.send(topic, value, key=key)

    client = aioredis.Redis.from_url(redis_url)
    learner = Learner(client, RedisKeys(), send, "model-health", publish_examples=publish_examples, publish_s=3600,
                      timeout_s=10.0, horizon_days=30.0)
    try:
        for batch in batches:
            await learner.handle(batch)
    finally:
        await producer.stop()
        await client.aclose()
    return learner


def test_each_example_is_learned_once_across_restarts_and_redeliveries(redis_url: str, kafka_url: str) -> None:
    rng = random.Random(1)
    records = [(i, churn_example(i, rng)) for i in range(600)]
    # a learner learns 0-399, "crashes"; its successor is redelivered 300-599 (Kafka's committed offset lagged)
    asyncio.run(run_learner(redis_url, kafka_url, [records[:200], records[200:400]]))
    second = asyncio.run(run_learner(redis_url, kafka_url, [records[300:500], records[450:]]))
    assert second.state is not None
    assert (second.state.churn.learned, second.state.churn_metrics.labels, second.offset) == (600, 600, 599)

    once = LearnerState()
    for _, raw in records:
        once.learn(Example.from_record(orjson.loads(raw)))
    x = orjson.loads(records[-1][1])["features"]
    assert second.state.churn.predict(x) == once.churn.predict(x)  # same state as learning each example once

    r = redis.Redis.from_url(redis_url)
    online = r.hgetall(RedisKeys().online_models)
    assert int(online[b"version"]) == 4  # after each batch that brought 100 or more new examples
    figures = orjson.loads(online[b"figures"])
    assert figures["churn"]["learned"] == 600 and figures["churn"]["labels"] == 600


def test_drift_after_a_concept_shift_emits_a_model_health_record(redis_url: str, kafka_url: str) -> None:
    rng = random.Random(2)
    records = [(i, churn_example(i, rng, flipped=i >= 3000)) for i in range(4000)]
    learner = asyncio.run(run_learner(redis_url, kafka_url, [records[i:i + 500] for i in range(0, 4000, 500)]))
    health = consume(kafka_url, "model-health")
    assert health, "no model-health record after the shift"
    first = health[0]
    assert first["model"] == "churn" and first["kind"] == "drift"
    assert first["details"]["labels"] > 3000  # found after the shift, not before
    assert first["details"]["mean_error_after"] > first["details"]["mean_error_before"]
    assert learner.state is not None and learner.state.churn_metrics.snapshot()["drift"]["detections"] >= 1


def test_state_and_models_of_another_layout_are_replaced_not_fatal(redis_url: str, kafka_url: str,
                                                                   caplog: Any) -> None:
    """A learner state and model snapshots from a streamproc whose models were laid out
    differently: the learner starts afresh from the next example and its next version
    replaces the old one; meanwhile a scoring worker scores without models."""
    r = redis.Redis.from_url(redis_url)
    old = LearnerState()
    old.format = 1
    r.hset(RedisKeys().learner, mapping={"state": old.dumps(), "offset": 9})
    r.hset(RedisKeys().online_models, mapping={"version": 4, "churn": pickle.dumps((1, 2)), "satisfaction": b"x"})

    async def score() -> OnlineModels:
        client = aioredis.Redis.from_url(redis_url)
        models = OnlineModels(client, RedisKeys())
        await models.refresh()
        await client.aclose()
        return models

    scorer = asyncio.run(score())
    assert (scorer.version, scorer.churn, scorer.satisfaction) == (4, None, None)
    rng = random.Random(4)
    learner = asyncio.run(run_learner(redis_url, kafka_url, [[(i, churn_example(i, rng)) for i in range(5, 40)]],
                                      publish_examples=20))
    assert learner.state is not None and learner.state.churn.learned == 30  # offsets 10-39, after the stored 9
    assert int(r.hget(RedisKeys().online_models, "version")) == 5
    assert asyncio.run(score()).churn is not None
    warnings = [rec.getMessage() for rec in caplog.records if rec.levelname == "WARNING"]
    assert any("cannot be loaded" in m for m in warnings) and any("learn afresh" in m for m in warnings)


def test_the_last_examples_are_published_though_none_follow(redis_url: str, kafka_url: str) -> None:
    rng = random.Random(5)

    async def run() -> Learner:
        client = aioredis.Redis.from_url(redis_url)

        async def send(topic: str, key: bytes, value: bytes) -> Any:
            raise AssertionError("no drift expected")

        learner = Learner(client, RedisKeys(), send, "model-health", publish_examples=1000, publish_s=0.2,
                          timeout_s=10.0, horizon_days=30.0)
        await learner.handle([(i, churn_example(i, rng)) for i in range(30)])
        await learner.flush()  # too soon: nothing published
        assert await client.hget(RedisKeys().online_models, "version") is None
        await asyncio.sleep(0.3)
        await learner.flush()
        await learner.flush()  # nothing new since: no new version
        await client.aclose()
        return learner

    asyncio.run(run())
    r = redis.Redis.from_url(redis_url)
    assert int(r.hget(RedisKeys().online_models, "version")) == 1
    assert orjson.loads(r.hget(RedisKeys().online_models, "figures"))["churn"]["learned"] == 30
