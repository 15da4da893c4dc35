"""``streamproc replay`` on a real broker: every event arrives once, on its customer's partition, in time order."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import murmur2
from aiokafka.structs import ConsumerRecord
from click.testing import CliRunner

from streamproc.cli import cli
from streamproc.contracts import Contracts
from streamproc.ops.stats import StatsReader
from streamproc.runtime.admin import bootstrap
from streamproc.settings import get_settings
from streamproc.sim.generator import generate
from streamproc.tools.replay import (
    Display,
    ReplayOptions,
    event_time,
    run_replay,
)
from tests.builders import RETAIL_CSV, RETAIL_TOML, SMALL, write
from tests.live import processed, wait_for

# --------------------------------------------------------------------------- real broker


async def _consume(kafka_url: str, topics: list[str], expected: int) -> list[ConsumerRecord]:
    """Records of ``topics`` until ``expected`` arrived and nothing more comes for a moment."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap(kafka_url), auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list[ConsumerRecord] = []
    try:
        deadline, quiet_until = time.monotonic() + 30, None
        while time.monotonic() < deadline and (quiet_until is None or time.monotonic() < quiet_until):
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                out += msgs
            if len(out) >= expected and quiet_until is None:
                quiet_until = time.monotonic() + 1.0
    finally:
        await consumer.stop()
    return out


def test_replay_publishes_each_event_once_on_its_partition_in_time_order(tmp_path: Path, kafka_url: str,
                                                                         contracts: Contracts) -> None:
    events = list(generate(SMALL))
    path = tmp_path / "shuffled.csv"
    run = CliRunner().invoke(cli, ["generate", "--customers", "30", "--days", "10", "--seed", "5", "--out", str(path)])
    assert run.exit_code == 0
    header, *rows = path.read_text().splitlines(keepends=True)
    random.Random(1).shuffle(rows)
    path.write_text(header + "".join(rows))

    summary = run_replay(ReplayOptions(path), contracts, kafka_url, Display())
    assert summary.published == summary.events == len(events)

    got = asyncio.run(_consume(kafka_url, [t.name for t in contracts.inputs], len(events)))
    docs = [orjson.loads(r.value) for r in got]
    assert Counter(d["event_id"] for d in docs) == Counter(e["event_id"] for e in events)  # each once
    assert sorted(docs, key=lambda d: d["event_id"]) == sorted(events, key=lambda e: e["event_id"])
    per_partition = defaultdict(list)
    for r, d in zip(got, docs):
        assert r.key == d["customer_id"].encode()
        assert r.partition == (murmur2(r.key) & 0x7FFFFFFF) % 4  # as generate --publish keys it
        per_partition[(r.topic, r.partition)].append((r.offset, event_time(d["ts"])))
    for records in per_partition.values():
        times = [t for _, t in sorted(records)]
        assert times == sorted(times)


def test_replaying_an_export_twice_counts_each_order_once(tmp_path: Path, kafka_url: str, redis_url: str,
                                                          worker_env: dict[str, str], spawn_worker: Callable[..., Any],
                                                          contracts: Contracts) -> None:
    export, mapping = write(tmp_path / "retail.csv", RETAIL_CSV), write(tmp_path / "m.toml", RETAIL_TOML)
    spawn_worker(worker_env)
    stats = StatsReader(redis_url)
    keys = get_settings().pseudonymiser()
    for n in (1, 2):
        summary = run_replay(ReplayOptions(export, mapping=mapping), contracts, kafka_url, Display())
        assert summary.published == 6
        wait_for(lambda: processed(redis_url) == 6 * n, 60, f"replay {n} to be processed")
        profile = stats.profile(keys.customer("17850"))
        assert profile is not None and profile.purchases == 2
        assert profile.spend == pytest.approx((35.64 + 11.1) * 1.17, abs=0.01)  # GBP at the default rate
    snap = stats.snapshot(0)
    assert snap.count("applied") == 5  # the sixth has an unreadable time: dead-lettered each time
    assert snap.dead_letter_reasons["bad_timestamp"] == 2
