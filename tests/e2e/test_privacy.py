"""No raw customer id, e-mail, phone number or IP address leaves ingestion: the generator's
stream (dirty records included) goes through a real worker, then every Redis key and value,
every record on every output topic and the worker's log are searched for them. Feedback
texts carrying an e-mail address, a phone number and a card number (one valid and text-only,
one dead-lettered) are searched for too, and the text-only one is applied."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import redis

from streamproc.ops.dlq import read_all
from streamproc.ops.produce import event_records, publish, raw_records
from streamproc.settings import Settings
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


IN_TEXT = ("tweet.author@mailbox.test", "+44 7700 900123", "7700 900123", "4111 1111 1111 1111", "1111 1111")
TEXT = "Two charges on card 4111 1111 1111 1111, awful! Mail tweet.author@mailbox.test or call +44 7700 900123"


def texts_with_personal_data(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A text-only feedback (valid) and one with a rating of 9 (dead-lettered), after every other event."""
    ts = (max(datetime.fromisoformat(e["ts"]) for e in events) + timedelta(minutes=1)).isoformat()
    doc = {"type": "feedback", "customer_id": "TEXT-ONLY", "ts": ts, "channel": "app", "text": TEXT}
    return [doc | {"event_id": "text-1"}, doc | {"event_id": "text-2", "rating": 9}]


def redis_dump(url: str) -> str:
    """Every key with its value. The worker keeps running: a key the scan named may be gone by the
    time it is read (a population fit drops its rows, a published outbox is deleted), and a key
    that no longer exists holds nothing to leak."""
    r = redis.Redis.from_url(url)
    parts = []
    for key in r.scan_iter(count=1000):
        kind = r.type(key)
        if kind == b"none":
            continue
        value = {b"hash": r.hgetall, b"zset": lambda k: r.zrange(k, 0, -1, withscores=True),
                 b"list": lambda k: r.lrange(k, 0, -1), b"string": r.get, b"set": r.smembers}[kind](key)
        parts.append(f"{key!r} {value!r}")
    return "\n".join(parts)


def test_no_raw_identifier_reaches_redis_outputs_or_logs(kafka_url, redis_url, worker_env, spawn_worker, contracts,
                                                         tmp_path: Path):
    events = list(generate(GeneratorConfig(customers=60, days=60, seed=31)))[:6000]
    secrets = personal_data(events)
    assert len(secrets) > 60 * 3
    records = list(raw_records(contracts, dirty(events, seed=31)))
    records += event_records(contracts, texts_with_personal_data(events))
    spawn_worker(worker_env, "privacy-worker")
    asyncio.run(publish(kafka_url, records))
    wait_for(lambda: processed(redis_url) == len(records), 120, "all records")
    key = Settings().pseudonymiser().customer("TEXT-ONLY")
    profile = orjson.loads(redis.Redis.from_url(redis_url).get(f"sp:profile:{{{key}}}"))
    assert (profile["feedbacks"], profile["texts"], profile["ratings"]) == (1, 1, 0)
    assert profile["last_sentiment"] < 0  # "awful", once the personal data is masked

    haystacks = {"redis": redis_dump(redis_url), "log": (tmp_path / "privacy-worker.log").read_text()}
    for role in ("segments", "alerts", "dead-letter"):
        out = asyncio.run(read_all(kafka_url, contracts.one(role).name))
        assert out, f"no records on {role}: the scan would prove nothing"
        haystacks[role] = "\n".join(map(str, out))
    for where, text in haystacks.items():
        leaked = sorted(s for s in secrets | set(IN_TEXT) if s in text)
        assert leaked == [], f"{where} contains {leaked[:5]}"
    assert "@example.com" not in haystacks["dead-letter"]
    assert "card [number], awful! Mail [email] or call [phone]" in haystacks["dead-letter"]
