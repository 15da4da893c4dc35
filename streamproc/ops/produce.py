"""Publishing input events to the input topics (used by ``generate --publish``, demo, bench).

In: event dicts (or raw records). Out: Kafka records keyed by customer on the topic whose
contract carries the event's ``type``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streamproc.contracts import Contracts
from streamproc.runtime.admin import bootstrap
from streamproc.settings import get_settings

ProducerRecord = tuple[str, bytes | None, bytes]


def event_records(contracts: Contracts, events: Iterable[dict[str, Any]]) -> Iterator[ProducerRecord]:
    """``(topic, key, value)`` for each event, routed by its ``type``."""
    return raw_records(contracts, ((e, orjson.dumps(e)) for e in events))


def raw_records(contracts: Contracts, pairs: Iterable[tuple[dict[str, Any], bytes]]) -> Iterator[ProducerRecord]:
    """``(topic, key, raw)`` for events sent as ``raw`` bytes (possibly dirtied), routed and
    keyed by the clean event, as a producer routes by its own canonical customer id."""
    topic_of = {t.event_type: t.name for t in contracts.inputs}
    for e, raw in pairs:
        yield topic_of[e["type"]], str(e["customer_id"]).encode(), raw


def producer(kafka_url: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap(kafka_url), linger_ms=5, acks="all", **get_settings().kafka_security(),
                            max_batch_size=256 * 1024)


async def publish(kafka_url: str, records: Iterable[ProducerRecord], rate: float | None = None,
                  on_sent: Callable[[int], None] | None = None, chunk: int = 1000) -> int:
    """Send every record (at most ``rate`` per second if given); returns the count sent."""
    prod = producer(kafka_url)
    await prod.start()
    sent, futs = 0, []
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        for topic, key, value in records:
            futs.append(await prod.send(topic, value, key=key))
            sent += 1
            if len(futs) >= chunk:
                await asyncio.gather(*futs)
                futs.clear()
                if on_sent:
                    on_sent(sent)
            if rate and sent % 100 == 0:
                await asyncio.sleep(max(0.0, started + sent / rate - loop.time()))
        await asyncio.gather(*futs)
        if on_sent:
            on_sent(sent)
    finally:
        await prod.stop()
    return sent
