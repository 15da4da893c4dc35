"""Erasure on a real broker, Redis and worker: after 'streamproc erase', nothing in Redis (key names,
sorted-set, set and hash members, list items and string values), nothing published after the erase and
nothing in the worker's log names the customer; segment counts equal a recount; the audit record exists;
later events of the customer are suppressed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import redis
from aiokafka import AIOKafkaConsumer

from streamproc.contracts import Contracts
from streamproc.ops.produce import event_records, publish
from streamproc.runtime.admin import bootstrap
from streamproc.settings import Settings
from streamproc.sim.generator import GeneratorConfig, generate
from streamproc.tools.stack import start_worker, stop_process
from tests.conftest import FAST_WORKER
from tests.live import processed, report, wait_for

KEYS = Settings().pseudonymiser()
AUDIT = "sp:audit:erasures"


async def records_since(kafka_url: str, topics: list[str], since_ms: int) -> list[tuple[str, bytes, bytes]]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap(kafka_url), auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    out, last = [], time.monotonic()
    try:
        while time.monotonic() - last < 2.0:
            for tp, msgs in (await consumer.getmany(timeout_ms=200)).items():
                for m in msgs:
                    last = time.monotonic()
                    if m.timestamp >= since_ms:
                        out.append((tp.topic, m.key or b"", m.value))
    finally:
        await consumer.stop()
    return out


def everything_in_redis(r: redis.Redis) -> list[bytes]:
    """Every key name and every member, field, item and value Redis holds, but the audit hash."""
    out: list[bytes] = []
    for k in r.scan_iter(count=1000):
        if k == AUDIT.encode():
            continue
        out.append(k)
        kind = r.type(k)
        if kind == b"string":
            out.append(r.get(k) or b"")
        elif kind == b"hash":
            for f, v in r.hgetall(k).items():
                out += [f, v]
        elif kind == b"zset":
            out += r.zrange(k, 0, -1)
        elif kind == b"set":
            out += list(r.smembers(k))
        elif kind == b"list":
            out += r.lrange(k, 0, -1)
    return out


def test_erase_removes_every_trace(kafka_url, redis_url, contracts: Contracts, tmp_path: Path) -> None:
    env = {**os.environ, **FAST_WORKER, "STREAMPROC_KAFKA_URL": kafka_url, "STREAMPROC_REDIS_URL": redis_url,
           "STREAMPROC_DATA_DIR": str(tmp_path / "faust")}
    log = tmp_path / "worker.log"
    worker = start_worker(env, log)
    try:
        wait_for(lambda: b"Worker]: Ready" in log.read_bytes(), 60, "the worker")
        events = list(generate(GeneratorConfig(customers=60, days=45, seed=9)))
        asyncio.run(publish(kafka_url, event_records(contracts, events)))
        wait_for(lambda: processed(redis_url) == len(events), 120, "the events")
        counts = Counter(e["customer_id"] for e in events)
        raw = max(counts, key=lambda c: (any(e["customer_id"] == c and e["type"] == "purchase" for e in events), counts[c]))
        key = KEYS.customer(raw)
        r = redis.Redis.from_url(redis_url)
        assert any(key.encode() in item for item in everything_in_redis(r))

        erased_at_ms = int(time.time() * 1000)
        run = subprocess.run([sys.executable, "-m", "streamproc", "erase", raw, "--by", "dpo@example.com"], env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        audit = orjson.loads(run.stdout[run.stdout.index("{"):])
        assert audit["customer_id"] == key and audit["removed"]["profile"] == 1 and audit["requested_by"] == "dpo@example.com"
        assert raw not in run.stdout

        later = [dict(e, event_id=f"{e['event_id']}-after", ts=e["ts"]) for e in events if e["customer_id"] == raw][:5]
        others = [dict(e, event_id=f"{e['event_id']}-after") for e in events if e["customer_id"] != raw][:20]
        asyncio.run(publish(kafka_url, event_records(contracts, later + others)))
        wait_for(lambda: int(r.hget("sp:stats", "erased_dropped") or 0) == len(later), 60, "later events suppressed")

        leftovers = [item for item in everything_in_redis(r) if key.encode() in item or raw.encode() in item]
        assert leftovers == []
        outputs = [c.name for c in contracts.topics if c.role not in ("input", "erasure")]
        published = asyncio.run(records_since(kafka_url, outputs, erased_at_ms))
        naming = [(t, v[:120]) for t, k, v in published if key.encode() in k + v or raw.encode() in k + v]
        erased_notice = [orjson.loads(v) for t, _, v in published if b'"customer_erased"' in v]
        assert [n["request_id"] for n in erased_notice] == [audit["request_id"]]
        assert naming == [("alerts", erased_notice and orjson.dumps(erased_notice[0])[:120])] or \
            all(b'"customer_erased"' in v for _, v in naming)

        profiles = [orjson.loads(r.get(k)) for k in r.scan_iter(match="sp:profile:*")]
        recount = {"lifecycle": Counter(p["stage"] for p in profiles if p.get("stage")),
                   "rfm": Counter(p["rfm"]["segment"] for p in profiles if p.get("rfm")),
                   "value": Counter(p["value"]["tier"] for p in profiles if p.get("value") and p["value"].get("tier")),
                   "cluster": Counter(str(p["cluster"]) for p in profiles if p.get("cluster") is not None)}
        for dim, expected in recount.items():
            stored = {k.decode(): int(v) for k, v in r.hgetall(f"sp:segments:{dim}").items() if int(v)}
            assert stored == dict(expected), dim
            members = {m.decode() for k in r.scan_iter(match=f"sp:members:{dim}:*") for m in r.smembers(k)}
            assert members == {p["customer_id"] for p in profiles if dim != "lifecycle" or p.get("stage")} or dim != "lifecycle"
        report(f"erasure: removed {audit['removed']}; {len(published)} records published after it, "
               f"{len(naming)} naming the customer (the customer_erased notice); {len(later)} later events suppressed")
    finally:
        stop_process(worker)
    text = log.read_text()
    assert key not in text and raw not in text
