"""The processor's batch logic on the in-memory store: holding and releasing events by the
watermark, dedupe by event id, redeliveries skipped by applied offsets, the outbox of a batch
that died before publishing, and dead letters (bad bytes, late events, processing errors,
held events included: their dead letter carries the bytes the producer sent)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import orjson
import pytest

from streamproc.contracts import Contracts
from streamproc.ingest.decode import Decoded, Source
from streamproc.ingest.redact import redact
from streamproc.ops.dlq import original_bytes
from streamproc.ordering import Consumed
from streamproc.runtime import assemble
from streamproc.runtime.store import MemoryStore
from tests.builders import SETTINGS, keyed_click
from tests.processing import Clock, Published, failing_on, processor

KEYS = SETTINGS.pseudonymiser()


def click(i: int, customer: str = "Z1", minute: int | None = None, event_id: str | None = None) -> bytes:
    return orjson.dumps({"event_id": event_id or f"e{i}", "type": "clickstream", "customer_id": customer,
                         "ts": f"2026-01-01T10:{i if minute is None else minute:02d}:00+00:00", "session_id": "s",
                         "page": "/", "action": "page_view"})


def run(*steps: Awaitable[None]) -> None:
    async def all_() -> None:
        for s in steps:
            await s
    asyncio.run(all_())


def stats(store: MemoryStore) -> dict[str, float]:
    return store.state.stats


def test_events_wait_for_the_watermark_and_are_applied_once_it_passes(contracts: Contracts) -> None:
    store, sent, clock = assemble.memory_store(SETTINGS), Published(), Clock()
    proc = processor(contracts, store, sent, idle_after_s=0.5, clock=clock)

    async def scenario() -> tuple[int, int]:
        await proc.handle([Consumed("clickstream", 0, 0, click(0))])  # other topics busy: held
        held = len(store.state.buffer[0])
        clock.now = 10.0  # every topic quiet: the watermark passes everything
        await proc.tick([0])
        return held, len(store.state.buffer[0])

    assert asyncio.run(scenario()) == (1, 0)
    assert store.state.profiles[KEYS.customer("Z1")].events == 1
    assert stats(store)["applied"] == 1 and stats(store)["held"] == 0


def test_a_resent_event_is_applied_once(contracts: Contracts) -> None:
    store = assemble.memory_store(SETTINGS)
    proc = processor(contracts, store, Published())
    run(proc.handle([Consumed("clickstream", 0, 0, click(0)), Consumed("clickstream", 0, 1, click(0))]))
    assert store.state.profiles[KEYS.customer("Z1")].events == 1
    assert (stats(store)["applied"], stats(store)["duplicates"], stats(store)["dup:clickstream"]) == (1, 1, 1)


def test_redelivered_records_are_skipped_by_their_applied_offsets(contracts: Contracts) -> None:
    store = assemble.memory_store(SETTINGS)
    proc = processor(contracts, store, Published())
    batch = [Consumed("clickstream", 0, i, click(i)) for i in range(5)]
    run(proc.handle(batch), proc.handle(batch[:3]), proc.handle(batch + [Consumed("clickstream", 0, 5, click(5))]))
    assert store.state.profiles[KEYS.customer("Z1")].events == 6
    assert store.state.offsets[0]["clickstream:0"] == 5
    assert (stats(store)["applied"], stats(store)["redelivered"]) == (6, 8)


class Died(BaseException):
    """The process ending: no handler of the processor's catches it."""


def test_an_outbox_committed_before_a_crash_is_published_by_the_next_batch(contracts: Contracts) -> None:
    store, sent = assemble.memory_store(SETTINGS), Published()

    async def die(topic: str, key: bytes, value: bytes) -> Awaitable[None]:
        raise Died

    batch = [Consumed("clickstream", 0, i, click(i)) for i in range(3)] + [Consumed("clickstream", 0, 3, b"{")]
    with pytest.raises(Died):
        run(processor(contracts, store, die).handle(batch))
    assert 0 in store.state.outboxes
    run(processor(contracts, store, sent).handle(batch))  # redelivered to a new processor
    assert [r["reason"] for r in sent.on("dead-letter")] == ["malformed_json"]
    assert [r["new"] for r in sent.on("segments") if r["dimension"] == "lifecycle"] == ["new"]
    assert store.state.outboxes == {} and stats(store)["applied"] == 3


def test_bad_bytes_and_late_events_are_dead_lettered(contracts: Contracts) -> None:
    store, sent = assemble.memory_store(SETTINGS), Published()
    proc = processor(contracts, store, sent)
    run(proc.handle([Consumed("clickstream", 0, 0, click(50)), Consumed("clickstream", 0, 1, b"\xff{"),
                     Consumed("clickstream", 0, 2, click(1, minute=1))]))
    dead = {r["offset"]: r for r in sent.on("dead-letter")}
    assert (dead[1]["reason"], dead[1]["original_encoding"]) == ("malformed_json", "base64")
    assert original_bytes(dead[1]) == b"\xff{"
    assert dead[2]["reason"] == "late_event" and original_bytes(dead[2]) == redact(click(1, minute=1), KEYS)
    assert (stats(store)["late:clickstream"], stats(store)["dead_lettered"]) == (1, 2)


def test_an_event_whose_processing_raises_is_dead_lettered_alone(contracts: Contracts, monkeypatch) -> None:
    store, sent = assemble.memory_store(SETTINGS), Published()
    failing_on(monkeypatch, KEYS.key("event", "e1"))
    run(processor(contracts, store, sent).handle([Consumed("clickstream", 0, i, click(i)) for i in range(3)]))
    (dead,) = sent.on("dead-letter")
    assert (dead["reason"], dead["offset"], dead["message"]) == ("processing_error", 1, "ValueError: bad state")
    assert original_bytes(dead) == redact(click(1), KEYS)
    assert store.state.profiles[KEYS.customer("Z1")].events == 2


def test_a_held_event_that_raises_is_dead_lettered_with_the_bytes_sent(contracts: Contracts, monkeypatch) -> None:
    """Keyed ids, as a replay re-publishes them: the dead letter holds exactly the bytes sent."""
    sent_bytes = keyed_click("h1")
    store, sent, clock = assemble.memory_store(SETTINGS), Published(), Clock()
    proc = processor(contracts, store, sent, idle_after_s=0.5, clock=clock)
    failing_on(monkeypatch, KEYS.key("event", "h1"))

    async def scenario() -> None:
        await proc.handle([Consumed("clickstream", 0, 7, sent_bytes)])
        assert len(store.state.buffer[0]) == 1 and not sent.on("dead-letter")
        clock.now = 10.0
        await proc.tick([0])

    asyncio.run(scenario())
    (dead,) = sent.on("dead-letter")
    assert (dead["reason"], dead["source_topic"], dead["offset"]) == ("processing_error", "clickstream", 7)
    assert original_bytes(dead) == sent_bytes
    again = SETTINGS.decoder(contracts).decode(original_bytes(dead), Source("clickstream", 0, 7), "clickstream",
                                      SETTINGS.min_event_time.replace(year=2026, month=6))
    assert isinstance(again, Decoded) and again.event.event_id == KEYS.key("event", "h1")
    assert store.state.buffer[0] == {}


def test_a_held_event_keeps_the_bytes_sent_with_identifiers_keyed(contracts: Contracts, monkeypatch) -> None:
    store, sent, clock = assemble.memory_store(SETTINGS), Published(), Clock()
    proc = processor(contracts, store, sent, idle_after_s=0.5, clock=clock)
    failing_on(monkeypatch, KEYS.key("event", "e3"))

    async def scenario() -> bytes:
        await proc.handle([Consumed("clickstream", 0, 3, click(3))])
        members = b"".join(store.state.buffer[0])
        clock.now = 10.0
        await proc.tick([0])
        return members

    members = asyncio.run(scenario())
    assert members and b"Z1" not in members  # no raw identifier in the buffer
    (dead,) = sent.on("dead-letter")
    assert original_bytes(dead) == redact(click(3), KEYS)
