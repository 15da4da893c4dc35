"""The dead-letter topic, read back: counts by reason, samples, and replay after a fix.

In: the dead-letter records (see ``topics/schemas/dead-letter.v1.json``). Out: a summary,
or the chosen records' original bytes re-published to the partition they came from.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from streamproc.ops.produce import producer
from streamproc.runtime.admin import bootstrap


async def read_all(kafka_url: str, topic: str, idle_s: float = 1.5) -> list[dict[str, Any]]:
    """Every record of ``topic``, read until no new record arrives for ``idle_s`` seconds."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap(kafka_url), auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        last = time.monotonic()
        while time.monotonic() - last < idle_s:
            batches = await consumer.getmany(timeout_ms=200)
            for msgs in batches.values():
                for m in msgs:
                    out.append(orjson.loads(m.value))
                    last = time.monotonic()
    finally:
        await consumer.stop()
    return out


def summarise(records: list[dict[str, Any]], samples: int = 3) -> dict[str, Any]:
    """Counts by reason and by source topic, and up to ``samples`` examples per reason."""
    examples: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        shown = examples.setdefault(r["reason"], [])
        if len(shown) < samples:
            shown.append({"source": f"{r['source_topic']}[{r['partition']}]@{r['offset']}", "message": r["message"],
                          "original": r["original"][:160], "rejected_at": r["rejected_at"]})
    return {
        "total": len(records),
        "by_reason": dict(Counter(r["reason"] for r in records).most_common()),
        "by_topic": dict(Counter(r["source_topic"] for r in records).most_common()),
        "samples": examples,
    }


@dataclass(frozen=True)
class Selection:
    """Which dead letters to replay: by reason, by source topic, or by exact source position."""

    reasons: frozenset[str] = frozenset()
    topic: str | None = None
    positions: frozenset[tuple[str, int, int]] = frozenset()

    def __call__(self, r: dict[str, Any]) -> bool:
        if self.positions and (r["source_topic"], r["partition"], r["offset"]) not in self.positions:
            return False
        if self.reasons and r["reason"] not in self.reasons:
            return False
        return self.topic is None or r["source_topic"] == self.topic


def original_bytes(r: dict[str, Any]) -> bytes:
    return base64.b64decode(r["original"]) if r["original_encoding"] == "base64" else r["original"].encode()


async def replay(kafka_url: str, records: Iterable[dict[str, Any]]) -> int:
    """Re-publish each record's original bytes to its source topic and partition."""
    prod = producer(kafka_url)
    await prod.start()
    n = 0
    try:
        for r in records:
            await prod.send_and_wait(r["source_topic"], original_bytes(r), partition=r["partition"])
            n += 1
    finally:
        await prod.stop()
    return n
