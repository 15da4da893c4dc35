"""Population fits as of one time: one history replayed twice, its partitions drained at
different speeds, each into a fresh broker and Redis, ends with the same population models
(version, fit time, BG/NBD and Gamma-Gamma parameters) and, for every customer, the same RFM
scores and segment, value tier and cluster.

Interleaved: the whole history is published at once, every partition in time order.
Uneven: partitions 0 and 1 are published at full speed, partitions 2 and 3 at a trickle
(never idle, weeks of event time behind): 0 and 1 run ahead to each fit time and wait there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import redis

from streamproc.contracts import Contracts
from streamproc.ops.produce import event_records, publish
from streamproc.runtime.admin import create_topics
from streamproc.sim.generator import GeneratorConfig, generate
from streamproc.testing.reference import partition_of
from streamproc.tools.stack import start_broker, stop_process
from tests.live import processed, report, wait_for

CONFIG = GeneratorConfig(customers=120, days=42, seed=29)
SLOW_RATE = 600
Records = list[tuple[str, bytes, bytes]]


def models(redis_url: str) -> dict[str, Any]:
    """The population models as stored: version, fit time, customers and the lifetime-value parameters."""
    doc = redis.Redis.from_url(redis_url).hgetall("sp:models")
    return {"version": int(doc[b"version"]), "fitted_at": doc[b"fitted_at"].decode(),
            "customers": int(doc[b"customers"]), "ltv": orjson.loads(doc[b"ltv"])}


def memberships(redis_url: str) -> dict[str, dict[str, Any]]:
    """Each customer's RFM scores, value (tier, CLV, P(alive), expected purchases, params version) and cluster."""
    r = redis.Redis.from_url(redis_url)
    docs = [orjson.loads(d) for d in r.mget(list(r.scan_iter(match="sp:profile:*", count=1000)))]
    return {d["customer_id"]: {"rfm": d["rfm"], "value": d["value"], "cluster": d["cluster"]} for d in docs}


def settled(redis_url: str, n: int) -> bool:
    """Every record handled, nothing left waiting in a buffer, and no fit due before the newest event."""
    r = redis.Redis.from_url(redis_url)
    newest = max((float(t) for t in r.hvals("sp:watermarks")), default=0.0)
    return (processed(redis_url) == n and not any(r.zcard(f"sp:buffer:{{p{p}}}") for p in range(4))
            and float(r.hget("sp:models", "next_fit") or 0) > newest)


def run(events: list[dict[str, Any]], kafka_url: str, redis_url: str, contracts: Contracts,
        publish_all: Callable[[Records, str], None]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    records = list(event_records(contracts, events))
    publish_all(records, kafka_url)
    wait_for(lambda: settled(redis_url, len(records)), 120, "the history applied")
    time.sleep(1.0)  # timers and a last fit that the final watermark made due
    wait_for(lambda: settled(redis_url, len(records)), 30, "the history applied")
    return models(redis_url), memberships(redis_url)


def interleaved(records: Records, kafka_url: str) -> None:
    asyncio.run(publish(kafka_url, records))


def uneven(records: Records, kafka_url: str) -> None:
    """Partitions 0 and 1 at full speed, 2 and 3 at a trickle that keeps them busy and weeks behind."""
    fast = [r for r in records if partition_of(r[1], 4) in (0, 1)]
    slow = [r for r in records if partition_of(r[1], 4) in (2, 3)]

    async def both() -> None:
        await asyncio.gather(publish(kafka_url, fast), publish(kafka_url, slow, rate=SLOW_RATE, chunk=50))

    asyncio.run(both())


def test_replays_drained_at_different_speeds_fit_the_same_population(
        tmp_path: Path, contracts: Contracts, redis_url: str, worker_env: dict[str, str], spawn_worker: Any) -> None:
    events = sorted(generate(CONFIG), key=lambda e: e["ts"])
    worker = spawn_worker(worker_env, "interleaved")
    first_models, first = run(events, worker_env["STREAMPROC_KAFKA_URL"], redis_url, contracts, interleaved)
    stop_process(worker)

    redis.Redis.from_url(redis_url).flushall()
    proc, kafka = start_broker(tmp_path / "uneven-broker")
    try:
        asyncio.run(create_topics(kafka, contracts))
        spawn_worker({**worker_env, "STREAMPROC_KAFKA_URL": kafka}, "uneven")
        second_models, second = run(events, kafka, redis_url, contracts, uneven)
    finally:
        stop_process(proc)

    rfm_same = sum(first[c]["rfm"] == second.get(c, {}).get("rfm") for c in first)
    tier_same = sum((first[c]["value"] or {}).get("tier") == ((second.get(c) or {}).get("value") or {}).get("tier")
                    for c in first)
    report(f"population replays: models {first_models} vs {second_models}; RFM equal for {rfm_same}/{len(first)}, "
           f"tiers equal for {tier_same}/{len(first)}")
    assert first_models == second_models and first_models["version"] >= 3
    assert second.keys() == first.keys()
    assert sum(m["rfm"] is not None for m in first.values()) > len(first) // 2
    differing = {c: (first[c], second[c]) for c in first if first[c] != second[c]}
    assert differing == {}, list(differing.items())[:3]
