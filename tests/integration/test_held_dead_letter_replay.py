"""A held event whose processing raises is dead-lettered with the bytes its producer sent, and
``streamproc dlq replay`` (``ops.dlq.replay``) re-publishes those bytes to a real broker,
where they decode again as the same event."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from aiokafka import AIOKafkaConsumer

from streamproc.contracts import Contracts
from streamproc.ingest.decode import Decoded, Source
from streamproc.ops.dlq import original_bytes, replay
from streamproc.ordering import Consumed
from streamproc.runtime import assemble
from streamproc.runtime.admin import bootstrap
from tests.builders import SETTINGS, keyed_click
from tests.processing import Clock, Published, failing_on, processor

KEYS = SETTINGS.pseudonymiser()


async def first_record(kafka_url: str, topic: str) -> bytes:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap(kafka_url), auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        for _ in range(100):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                return records[0].value
        raise AssertionError(f"nothing on {topic}")
    finally:
        await consumer.stop()


def test_the_dead_letter_of_a_held_event_replays_and_decodes(kafka_url: str, contracts: Contracts,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    sent_bytes = keyed_click("h1")
    store, sent, clock = assemble.memory_store(SETTINGS), Published(), Clock()
    proc = processor(contracts, store, sent, idle_after_s=0.5, clock=clock)
    failing_on(monkeypatch, KEYS.key("event", "h1"))

    async def scenario() -> bytes:
        await proc.handle([Consumed("clickstream", 1, 7, sent_bytes)])  # held: the other inputs are not idle yet
        assert len(store.state.buffer[1]) == 1 and not sent.on("dead-letter")
        clock.now = 10.0
        await proc.tick([1])  # released, applied, raises: dead-lettered
        (dead,) = sent.on("dead-letter")
        assert (dead["reason"], dead["source_topic"], dead["partition"]) == ("processing_error", "clickstream", 1)
        assert await replay(kafka_url, [dead]) == 1
        return await first_record(kafka_url, "clickstream")

    replayed = asyncio.run(scenario())
    assert replayed == sent_bytes
    again = SETTINGS.decoder(contracts).decode(replayed, Source("clickstream", 1, 0), "clickstream",
                                               datetime(2026, 1, 2, tzinfo=timezone.utc))
    assert isinstance(again, Decoded) and again.event.event_id == KEYS.key("event", "h1")
    assert original_bytes(sent.on("dead-letter")[0]) == sent_bytes
