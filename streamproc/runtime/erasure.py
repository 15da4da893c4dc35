"""Erasure: one customer removed from everything streamproc keeps, with an audit record.

In: an erase command (``topics/schemas/erasures.v1.json``: the customer's key, never the raw id), on
the customer's partition number of the erasures topic, so the worker owning the customer's events
erases. Out: one Redis transaction that removes

* the profile (with its dedupe window, its label snapshots waiting to mature and its rules' memory),
  its timers, its place in the population rankings (spend, recency, frequency, CLV) and in the
  population-fit rows, its segment memberships (the segment counts are decremented);
* its events held for the watermark (their members carry the record's original bytes), its records
  in an outbox not yet published, its entries in the recent-alerts list;
* its webhook deliveries pending and dead-lettered;

then an audit record (``sp:audit:erasures``, by request id: the key, the times and what was removed,
never the raw id) and a ``customer_erased`` record on the alerts topic (the CRM webhooks get it).
The transaction also counts a write on the partition's offsets key, so a batch of that partition in
flight (which WATCHes it) re-reads before writing and cannot bring the profile back. With
``STREAMPROC_ERASED_EVENTS=suppress`` (default) a tombstone (a hash of the key, not the key) makes
later events of the customer be dropped; with ``new_profile`` they start a new profile.

A redelivered command finds nothing left to remove; the audit record and the published record are
the first run's (written once per request id), so the effect is exactly once.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from datetime import datetime, timezone
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from streamproc.records import CustomerErased
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.runtime.webhooks import Keys as WebhookKeys

log = logging.getLogger(__name__)
RANKINGS = ("recency", "frequency", "clv")


def tombstone(key: str) -> str:
    """The tombstone of an erased key: a hash, so the key itself is not kept."""
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def audit_key(keys: RedisKeys) -> str:
    return f"{keys.prefix}:audit:erasures"


def erased_key(keys: RedisKeys) -> str:
    return f"{keys.prefix}:erased"


def _memberships(doc: dict[str, Any]) -> dict[str, str]:
    """The segments a stored profile counts in (as the store's counts hold them)."""
    out = {}
    if doc.get("stage"):
        out["lifecycle"] = doc["stage"]
    if doc.get("rfm"):
        out["rfm"] = doc["rfm"]["segment"]
    if doc.get("value") and doc["value"].get("tier"):
        out["value"] = doc["value"]["tier"]
    if doc.get("cluster") is not None:
        out["cluster"] = str(doc["cluster"])
    return out


async def erase(client: aioredis.Redis, keys: RedisKeys, command: dict[str, Any], partitions: list[int],
                suppress: bool) -> CustomerErased:
    """Carry out one erase command; returns the ``customer_erased`` record to publish (the first run's)."""
    key, request = command["customer_key"], command["request_id"]
    needle = key.encode()
    while True:
        try:
            removed = await _erase_once(client, keys, key, needle, partitions, suppress)
            break
        except WatchError:
            continue  # a batch changed the customer meanwhile: read again
    record = CustomerErased(key, request, command["requested_at"], datetime.now(timezone.utc).isoformat(), removed)
    audit = record.to_dict() | {"requested_by": command.get("requested_by")}
    await client.hsetnx(audit_key(keys), request, orjson.dumps(audit))
    first = orjson.loads(await client.hget(audit_key(keys), request))
    log.info("erase request %s done: %s", request, ", ".join(f"{k} {v}" for k, v in first["removed"].items() if v))
    return CustomerErased(key, request, first["requested_at"], first["erased_at"], first["removed"])


async def _erase_once(client: aioredis.Redis, keys: RedisKeys, key: str, needle: bytes, partitions: list[int],
                      suppress: bool) -> dict[str, Any]:
    profile = keys.profile(key)
    watched = [profile] + [keys.outbox(p) for p in partitions] + [keys.buffer(p) for p in partitions]
    async with client.pipeline(transaction=True) as pipe:
        await pipe.watch(*watched)
        doc_raw = await pipe.get(profile)
        doc = orjson.loads(doc_raw) if doc_raw else None
        outboxes = {p: await pipe.get(keys.outbox(p)) for p in partitions}
        held = {p: [m for m in await pipe.zrange(keys.buffer(p), 0, -1) if needle in m] for p in partitions}
        recent = await pipe.lrange(keys.recent_alerts, 0, -1)
        fit_keys = [k async for k in client.scan_iter(match=keys.fit_rows("*"), count=1000)]
        fit_rows = [k for k in fit_keys if await client.hexists(k, key)]
        hooks = WebhookKeys(keys.prefix)
        deliveries = await _deliveries(client, hooks, needle)
        dead = [f for f, v in (await client.hgetall(hooks.dead)).items() if needle in v]
        removed: Counter[str] = Counter()
        pipe.multi()
        if doc is not None:
            removed["profile"] = 1
            removed["pending_labels"] = len(doc.get("pending") or [])
            for dim, value in _memberships(doc).items():
                pipe.hincrby(keys.segments(dim), value, -1)
                pipe.srem(keys.members(dim, value), key)
                removed["segment_memberships"] += 1
            pipe.delete(profile)
        for p in partitions:
            pipe.zrem(keys.due(p), key)
            if held[p]:
                pipe.zrem(keys.buffer(p), *held[p])
                removed["held_events"] += len(held[p])
            box = outboxes[p]
            if box and needle in box:
                doc_box = orjson.loads(box)
                kept = [r for r in doc_box["records"] if r[1] != key and key not in r[2]]
                removed["outbox_records"] += len(doc_box["records"]) - len(kept)
                pipe.set(keys.outbox(p), orjson.dumps({**doc_box, "records": kept}))
            pipe.hincrby(keys.offsets(p), "writes", 1)  # a batch of p in flight re-reads before it writes
        pipe.zrem(keys.spend, key)
        for dim in RANKINGS:
            pipe.zrem(keys.pop(dim), key)
        for k in fit_rows:
            pipe.hdel(k, key)
        removed["fit_rows"] = len(fit_rows)
        kept_alerts = [a for a in recent if needle not in a]
        if len(kept_alerts) != len(recent):
            removed["recent_alerts"] = len(recent) - len(kept_alerts)
            pipe.delete(keys.recent_alerts)
            if kept_alerts:
                pipe.rpush(keys.recent_alerts, *kept_alerts)
        for m in deliveries:
            pipe.zrem(hooks.pending, m)
            pipe.delete(hooks.delivery(m))
        removed["webhook_deliveries"] = len(deliveries)
        if dead:
            pipe.hdel(hooks.dead, *dead)
        removed["webhook_dead_letters"] = len(dead)
        if suppress:
            pipe.hset(erased_key(keys), tombstone(key), datetime.now(timezone.utc).timestamp())
        await pipe.execute()
    return {k: removed[k] for k in ("profile", "segment_memberships", "pending_labels", "held_events", "outbox_records",
                                    "fit_rows", "recent_alerts", "webhook_deliveries", "webhook_dead_letters")}


async def _deliveries(client: aioredis.Redis, hooks: WebhookKeys, needle: bytes) -> list[str]:
    """Pending webhook deliveries whose body names the customer."""
    members = [m.decode() for m in await client.zrange(hooks.pending, 0, -1)]
    if not members:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for m in members:
            pipe.hget(hooks.delivery(m), "body")
        bodies = await pipe.execute()
    return [m for m, body in zip(members, bodies) if body and needle in body]


def command(key: str, request_id: str, requested_by: str) -> dict[str, Any]:
    """An erase command for the customer ``key``."""
    return {"type": "erase", "request_id": request_id, "customer_key": key,
            "requested_at": datetime.now(timezone.utc).isoformat(), "requested_by": requested_by}


def partitions_of(id_or_key: str, is_key: bool, partitions: int) -> list[int]:
    """Where an erase command goes: the raw id's partition (Kafka's default partitioner over the
    producers' key, the raw id), or every partition when only the key is known."""
    if is_key:
        return list(range(partitions))
    from aiokafka.partitioner import murmur2

    return [(murmur2(id_or_key.encode()) & 0x7FFFFFFF) % partitions]


async def request(producer: Any, topic: str, key: str, parts: list[int], requested_by: str) -> dict[str, Any]:
    """Publish an erase command for ``key`` to ``parts`` of the erasures topic; returns the command."""
    import uuid

    cmd = command(key, uuid.uuid4().hex, requested_by)
    value = orjson.dumps(cmd)
    for p in parts:
        await producer.send_and_wait(topic, value, key=key.encode(), partition=p)
    return cmd
