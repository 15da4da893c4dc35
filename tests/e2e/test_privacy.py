"""No raw customer id, e-mail, phone number or IP address leaves ingestion: the generator's
stream (dirty records included) goes through a real worker, then every Redis key and value,
every record on every output topic and the worker's log are searched for them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis

from streamproc.ops.dlq import read_all
from streamproc.ops.produce import publish, raw_records
from streamproc.sim.dirty import dirty
from streamproc.sim.generator import GeneratorConfig, generate
from tests.live import processed, wait_for


def personal_data(events: list[dict]) -> set[str]:
    found: set[str] = set()
    for e in events:
        found.add(e["customer_id"])
        for name in ("email", "phone", "ip"):
            if name in e:
                found.add(e[name])
    return found


def redis_dump(url: str) -> str:
    r = redis.Redis.from_url(url)
    parts = []
    for key in r.scan_iter(count=1000):
        kind = r.type(key)
        value = {b"hash": r.hgetall, b"zset": lambda k: r.zrange(k, 0, -1, withscores=True),
                 b"list": lambda k: r.lrange(k, 0, -1), b"string": r.get}[kind](key)
        parts.append(f"{key!r} {value!r}")
    return "\n".join(parts)


def test_no_raw_identifier_reaches_redis_outputs_or_logs(kafka_url, redis_url, worker_env, spawn_worker, contracts,
                                                         tmp_path: Path):
    events = list(generate(GeneratorConfig(customers=60, days=60, seed=31)))[:6000]
    secrets = personal_data(events)
    assert len(secrets) > 60 * 3
    records = list(raw_records(contracts, dirty(events, seed=31)))
    spawn_worker(worker_env, "privacy-worker")
    asyncio.run(publish(kafka_url, records))
    wait_for(lambda: processed(redis_url) == len(records), 120, "all records")

    haystacks = {"redis": redis_dump(redis_url), "log": (tmp_path / "privacy-worker.log").read_text()}
    for role in ("segments", "alerts", "dead-letter"):
        out = asyncio.run(read_all(kafka_url, contracts.one(role).name))
        assert out, f"no records on {role}: the scan would prove nothing"
        haystacks[role] = "\n".join(map(str, out))
    for where, text in haystacks.items():
        leaked = sorted(s for s in secrets if s in text)
        assert leaked == [], f"{where} contains {leaked[:5]}"
    assert "@example.com" not in haystacks["dead-letter"]
