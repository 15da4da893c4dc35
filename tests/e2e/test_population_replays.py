"""Population fits as of one time: one history replayed twice, its partitions drained at
different speeds, each into a fresh broker and Redis, ends with the same population models
(version, fit time, customers, BG/NBD and Gamma-Gamma parameters) and, for every customer,
the same RFM scores and segment, value (P(alive), CLV, tier) and cluster as a read serves
them at the end of the history (``streamproc profile``: ``decisions.segments.as_of``).

Interleaved: the whole history is published at once, every partition in time order.
Uneven: partitions 0 and 1 are published at full speed, partitions 2 and 3 at a trickle
(never idle, weeks of event time behind): 0 and 1 run past fit times the slow ones have not
reached, leaving rows for those fits as they go.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import redis
from scipy.stats import spearmanr

from streamproc.contracts import Contracts
from streamproc.decisions import segments
from streamproc.decisions.learning import churn_as_of
from streamproc.ops.produce import event_records, publish
from streamproc.ops.scores import freshness
from streamproc.ops.stats import StatsReader
from streamproc.runtime.admin import create_topics
from streamproc.runtime.assemble import population_view
from streamproc.settings import Settings
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
    """Each customer's RFM scores, value (tier, CLV, P(alive), expected purchases, params version) and
    cluster as a read at the newest event time serves them, and the stored tier beside them."""
    settings = Settings(redis_url=redis_url)
    reader = StatsReader(redis_url)
    try:
        pop, now, profiles = reader.models(population_view(settings)), reader.event_time(), reader.all_profiles()
    finally:
        reader.close()
    assert now is not None
    read = {cid: segments.as_of(p, now, pop, settings.rules()) for cid, p in profiles.items()}
    ages = freshness(profiles, now, pop, settings.rules())
    report("score ages at the end of a replay: " + "; ".join(ages.lines()))
    assert ages.churn_read["q100"] == 0 and ages.churn_read["unscored"] == 0
    churn = {cid: churn_as_of(p, now, pop, settings.rules()) for cid, p in profiles.items()}
    return {cid: {"rfm": q.rfm, "value": q.value, "cluster": q.cluster, "churn": churn[cid],
                  "stored_tier": profiles[cid].value.tier if profiles[cid].value else None} for cid, q in read.items()}


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

    def same(key: str) -> int:
        return sum(first[c][key] == second.get(c, {}).get(key) for c in first)

    report(f"population replays: models {first_models} vs {second_models}; as read at the end, equal for "
           f"{same('rfm')}/{len(first)} RFM, {same('value')}/{len(first)} values (tier, CLV, P(alive)), "
           f"{same('cluster')}/{len(first)} clusters; stored tiers (decided when each customer last changed) "
           f"equal for {same('stored_tier')}/{len(first)}")
    assert first_models == second_models and first_models["version"] >= 3
    assert second.keys() == first.keys()
    assert sum(m["rfm"] is not None for m in first.values()) > len(first) // 2
    assert sum(m["value"] is not None and m["value"].tier != "" for m in first.values()) > len(first) // 2
    served = [(first[c]["churn"], second[c]["churn"]) for c in first]
    gaps = sorted(abs(a.p - b.p) for a, b in served)
    rho = spearmanr([a.p for a, _ in served], [b.p for _, b in served]).statistic
    report(f"served churn risk as read at the end of both replays: candidates {Counter(a.source for a, _ in served)} vs "
           f"{Counter(b.source for _, b in served)}, |difference| median {gaps[len(gaps) // 2]:.4f}, max {gaps[-1]:.4f}, "
           f"Spearman rank correlation {rho:.4f} (the online models learned the examples in arrival order)")
    assert rho > 0.9
    read = ("rfm", "value", "cluster")
    differing = {c: (first[c], second[c]) for c in first if any(first[c][k] != second[c][k] for k in read)}
    assert differing == {}, list(differing.items())[:3]
