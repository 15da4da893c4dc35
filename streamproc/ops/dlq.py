"""The dead-letter topic, read back: counts by reason, samples, and replay after a fix.

In: the dead-letter records (see ``topics/schemas/dead-letter.v1.json``). Out: a summary
and its text lines, or the chosen records' original bytes re-published to the partition
they came from.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from streamproc.contracts import Contracts
from streamproc.ops.produce import producer
from streamproc.runtime.admin import bootstrap
from streamproc.settings import get_settings


async def read_all(kafka_url: str, topic: str, idle_s: float = 1.5) -> list[dict[str, Any]]:
    """Every record of ``topic``, read until no new record arrives for ``idle_s`` seconds."""
    return [orjson.loads(v) for v in await read_all_raw(kafka_url, topic, idle_s)]


async def read_all_raw(kafka_url: str, topic: str, idle_s: float = 1.5) -> list[bytes]:
    """The value bytes of every record of ``topic``, read until none arrives for ``idle_s`` seconds."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap(kafka_url), auto_offset_reset="earliest",
                                **get_settings().kafka_security(),
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list[bytes] = []
    try:
        last = time.monotonic()
        while time.monotonic() - last < idle_s:
            batches = await consumer.getmany(timeout_ms=200)
            for msgs in batches.values():
                for m in msgs:
                    out.append(m.value)
                    last = time.monotonic()
    finally:
        await consumer.stop()
    return out


def read_dead_letters(kafka_url: str, contracts: Contracts) -> list[dict[str, Any]]:
    """Every record of the dead-letter topic the contracts name (``read_all``, synchronously)."""
    return asyncio.run(read_all(kafka_url, contracts.one("dead-letter").name))


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


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary of ``summarise`` as text: the total, each reason with its samples, each source topic.

    >>> for line in summary_lines({
    ...         "total": 1200, "by_reason": {"late_event": 1200}, "by_topic": {"purchases": 1200},
    ...         "samples": {"late_event": [{"source": "purchases[0]@7", "message": "too late"}]}}):
    ...     print(line)
    1,200 dead-lettered records
      late_event              1,200
          purchases[0]@7: too late
      from purchases          1,200
    """
    lines = [f"{summary['total']:,} dead-lettered records"]
    for reason, n in summary["by_reason"].items():
        lines.append(f"  {reason:<20} {n:>8,}")
        lines += [f"      {ex['source']}: {ex['message'][:100]}" for ex in summary["samples"][reason]]
    lines += [f"  from {topic:<15} {n:>8,}" for topic, n in summary["by_topic"].items()]
    return lines


def position(text: str) -> tuple[str, int, int]:
    """``TOPIC:PARTITION:OFFSET`` as a tuple (a topic name may hold colons).

    >>> position("orders:v2:3:1041")
    ('orders:v2', 3, 1041)
    """
    topic, partition, offset = text.rsplit(":", 2)
    return topic, int(partition), int(offset)


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


def replay_line(r: dict[str, Any], dry_run: bool) -> str:
    """One line naming a chosen record: where it came from and why it was dead-lettered."""
    verb = "would replay" if dry_run else "replaying"
    return f"{verb} {r['source_topic']}[{r['partition']}]@{r['offset']} ({r['reason']})"


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
