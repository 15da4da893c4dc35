"""Ordered records onto the input topics of a Kafka broker.

In: ``Out`` records in event-time order and the broker's address. Out: each record on its
topic, on the partition aiokafka's default partitioner picks for its key, every partition
receiving its records in list order; the number the broker acknowledged, also reported as the
acknowledgements arrive; or a ``ReplayError`` saying how to reach the broker or create the
topics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.partitioner import DefaultPartitioner

from streamproc.ops.produce import producer
from streamproc.tools.replay.exceptions import ReplayError
from streamproc.tools.replay.order import Out

if TYPE_CHECKING:
    from aiokafka.producer.message_accumulator import BatchBuilder


async def publish_ordered(kafka_url: str, records: list[Out], on_acked: Callable[[int], None]) -> int:
    """Publish ``records``, each partition's in list order, in batches. A key goes to the partition
    ``AIOKafkaProducer.send(key=...)`` would pick (aiokafka's default partitioner), as with
    ``generate --publish``. Returns the number of records the broker acknowledged."""
    prod = producer(kafka_url)
    try:
        await prod.start()
    except KafkaConnectionError as exc:
        await prod.stop()
        raise ReplayError(f"cannot reach the broker at {kafka_url} ({exc}): start one with 'streamproc dev' "
                          "and export the STREAMPROC_KAFKA_URL it prints, or use --dry-run") from exc
    try:
        parts = await _partitions(prod, kafka_url, {r[1] for r in records})
        return await _Batches(prod, parts, on_acked).send(records)
    except KafkaError as exc:
        raise ReplayError(f"the broker at {kafka_url} did not accept the records: {exc}") from exc
    finally:
        await prod.stop()


async def _partitions(prod: AIOKafkaProducer, kafka_url: str, topics: set[str]) -> dict[str, list[int]]:
    cluster = await prod.client.fetch_all_metadata()
    found = {}
    for topic in sorted(topics):
        parts = cluster.partitions_for_topic(topic)
        if not parts:
            raise ReplayError(f"topic {topic!r} does not exist on {kafka_url}: create the topics with "
                              "'streamproc topics create' (or run 'streamproc dev')")
        found[topic] = sorted(parts)
    return found


class _Batches:
    """One open batch per topic-partition, handed to the producer when full. The producer sends
    one batch per partition at a time, so each partition receives its records in list order."""

    def __init__(self, prod: AIOKafkaProducer, parts: dict[str, list[int]], on_acked: Callable[[int], None]) -> None:
        self.prod, self.parts, self.on_acked = prod, parts, on_acked
        self.chosen: dict[tuple[str, bytes | None], int] = {}
        self.open: dict[tuple[str, int], BatchBuilder] = {}
        self.futures: list[asyncio.Future[Any]] = []
        self.acked = 0

    async def send(self, records: list[Out]) -> int:
        for _, topic, key, value in records:
            tp = (topic, self._partition(topic, key))
            batch = self.open.get(tp)
            if batch is None:
                batch = self.open[tp] = self.prod.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full; an empty one takes any record
                await self._flush(tp)
                self.open[tp] = self.prod.create_batch()
                self.open[tp].append(key=key, value=value, timestamp=None)
        for tp in list(self.open):
            await self._flush(tp)
        await asyncio.gather(*self.futures)
        return self.acked

    def _partition(self, topic: str, key: bytes | None) -> int:
        p = self.chosen.get((topic, key))
        if p is None:
            p = self.chosen[(topic, key)] = DefaultPartitioner()(key, self.parts[topic], self.parts[topic])
        return p

    async def _flush(self, tp: tuple[str, int]) -> None:
        batch = self.open.pop(tp)
        size = batch.record_count()
        future = await self.prod.send_batch(batch, tp[0], partition=tp[1])
        future.add_done_callback(lambda f: self._acked(f, size))
        self.futures.append(future)

    def _acked(self, future: asyncio.Future[Any], size: int) -> None:
        if not future.cancelled() and future.exception() is None:
            self.acked += size
            self.on_acked(self.acked)
