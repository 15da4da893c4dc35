"""The webhook delivery agent: alerts from the alerts topic to CRM endpoints, signed, retried, never lost.

In: alert records (``topics/schemas/alerts.v2.json``) consumed in a consumer group of its own
(``<app id>-webhooks``), so that slow endpoints never hold back ingestion. Out: HTTP POSTs of each
alert's exact bytes to every endpoint that takes it (``WebhookEndpoint.takes``), signed as the
Standard Webhooks specification says: ``webhook-id`` is the alert's ``event_id`` (the same on
every retry and every redelivery), ``webhook-timestamp`` the attempt's time,
``webhook-signature`` ``v1,<HMAC-SHA256 of id.timestamp.body>``.

Delivery state lives in Redis, so it survives a crash of the delivering process:

* a consumed alert becomes one delivery per endpoint (``sp:wh:d:<endpoint>|<id>``: the body and
  every attempt) queued in ``sp:wh:pending`` by its next attempt time, and only then is the
  alert's offset committed;
* a delivery is claimed by moving its time one lease ahead (atomic; the longest endpoint timeout
  plus 5 s), so a process that dies mid-attempt leaves it to be retried when the lease ends;
* a 2xx ends it (``sp:wh:done`` remembers the id for a week, so a redelivered alert is not sent
  again); a 410 disables the endpoint (``streamproc webhooks enable`` re-enables it); any other
  answer, a timeout or a refused connection is retried after the next delay of the schedule
  (``STREAMPROC_WEBHOOK_RETRY_S``, with jitter), or after ``Retry-After`` on a 429 or 503;
* after the last attempt, or for a disabled endpoint, the delivery becomes a webhook dead letter
  (``sp:wh:dead``) with every attempt's status; ``streamproc webhooks replay`` queues chosen ones
  again under the same id.

So each alert is delivered at least once, and a repeat always carries the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterable
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from streamproc.delivery import schedule, signing
from streamproc.runtime.admin import bootstrap
from streamproc.settings import Settings, WebhookEndpoint

log = logging.getLogger(__name__)
DONE_FOR_S = 7 * 86400
LEASE_MARGIN_S = 5.0

CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], m) end
return due
"""


class Keys:
    """The delivery agent's Redis keys (under the store's prefix)."""

    def __init__(self, prefix: str) -> None:
        self.pending = f"{prefix}:wh:pending"
        self.done = f"{prefix}:wh:done"
        self.dead = f"{prefix}:wh:dead"
        self.disabled = f"{prefix}:wh:disabled"
        self.stats = f"{prefix}:wh:stats"
        self._delivery = f"{prefix}:wh:d:"

    def delivery(self, member: str) -> str:
        return self._delivery + member


def member(endpoint: str, alert_id: str) -> str:
    return f"{endpoint}|{alert_id}"


class Deliverer:
    """Consumes alerts and delivers them; ``run`` until cancelled."""

    def __init__(self, settings: Settings, client: aioredis.Redis, alerts_topic: str, *, group: str | None = None,
                 rng: random.Random | None = None) -> None:
        self.s, self.r, self.topic = settings, client, alerts_topic
        self.keys = Keys(settings.key_prefix)
        self.endpoints = {e.name: e for e in settings.webhooks}
        self.policy = schedule.RetryPolicy(tuple(settings.webhook_retry_s), settings.webhook_jitter)
        self.group = group or f"{settings.app_id}-webhooks"
        self.rng = rng or random.Random()
        self._slots = {name: asyncio.Semaphore(e.concurrency) for name, e in self.endpoints.items()}
        self._tasks: set[asyncio.Task[None]] = set()
        self._claim = self.r.register_script(CLAIM)
        self.lease_s = max((e.timeout_s for e in self.endpoints.values()), default=0.0) + LEASE_MARGIN_S
        self._session: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        """Consume and deliver until cancelled."""
        if not self.endpoints:
            log.info("no webhook endpoints configured (STREAMPROC_WEBHOOKS): nothing to deliver")
            return
        log.info("webhook delivery to %s, consuming %s as group %s", ", ".join(self.endpoints), self.topic, self.group)
        self._session = aiohttp.ClientSession()
        try:
            await asyncio.gather(self._consume(), self._send_due())
        finally:
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._session.close()

    # ----- intake: alerts -> queued deliveries ---------------------------------------------
    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=bootstrap(self.s.kafka_url), group_id=self.group,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    session_timeout_ms=int(self.s.broker_session_timeout_s * 1000),
                                    rebalance_timeout_ms=int(self.s.broker_rebalance_timeout_s * 1000),
                                    **self.s.kafka_security())
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                records = [r for rs in batch.values() for r in rs]
                if not records:
                    continue
                await self._retrying(self.enqueue, [r.value for r in records])
                await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs})
        finally:
            with contextlib.suppress(KafkaError):
                await consumer.stop()

    async def _retrying(self, fn: Any, *args: Any) -> Any:
        delay = 0.5
        while True:
            try:
                return await fn(*args)
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                log.warning("webhook state not written (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def enqueue(self, values: Iterable[bytes]) -> int:
        """Queue one delivery per (alert, endpoint that takes it), unless delivered already; idempotent."""
        wanted: list[tuple[str, bytes, dict[str, Any]]] = []
        for body in values:
            try:
                alert = orjson.loads(body)
            except orjson.JSONDecodeError:
                log.error("alerts topic record is not JSON; skipped")
                continue
            for e in self.endpoints.values():
                if e.takes(alert):
                    wanted.append((member(e.name, alert["event_id"]), body, alert))
        if not wanted:
            return 0
        async with self.r.pipeline(transaction=False) as pipe:
            for m, _, _ in wanted:
                pipe.zscore(self.keys.done, m)
            done = await pipe.execute()
        now = time.time()
        async with self.r.pipeline(transaction=True) as pipe:
            n = 0
            for (m, body, alert), seen in zip(wanted, done):
                if seen is not None:
                    continue
                pipe.hsetnx(self.keys.delivery(m), "body", body)
                pipe.hsetnx(self.keys.delivery(m), "attempts", b"[]")
                pipe.hsetnx(self.keys.delivery(m), "queued_at", now)
                pipe.zadd(self.keys.pending, {m: now}, nx=True)
                n += 1
            pipe.hincrby(self.keys.stats, "queued", n)
            await pipe.execute()
        return n

    # ----- sending -------------------------------------------------------------------------
    async def _send_due(self) -> None:
        while True:
            try:
                claimed = await self._claim(keys=[self.keys.pending], args=[time.time(), time.time() + self.lease_s, 100])
            except (RedisError, OSError) as exc:
                log.warning("webhook queue not read (%s: %s)", type(exc).__name__, exc)
                claimed = []
            for m in claimed:
                task = asyncio.ensure_future(self._attempt(m.decode()))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            await asyncio.sleep(0.05 if claimed else 0.2)

    async def _attempt(self, m: str) -> None:
        name, alert_id = m.split("|", 1)
        e = self.endpoints.get(name)
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.delivery(m))
            pipe.hexists(self.keys.disabled, name)
            state, disabled = await pipe.execute()
        if b"body" not in state:  # delivered or dead-lettered by another process meanwhile
            await self.r.zrem(self.keys.pending, m)
            return
        attempts = orjson.loads(state.get(b"attempts", b"[]"))
        if e is None or disabled:
            why = "endpoint no longer configured" if e is None else "endpoint disabled"
            await self._dead(m, state[b"body"], attempts, why)
            return
        async with self._slots[name]:
            status, retry_after, error = await self._post(e, alert_id, state[b"body"])
        attempts.append({"at": round(time.time(), 3), "status": status, "error": error})
        await self._settle(e, m, state[b"body"], attempts, status, retry_after)

    async def _post(self, e: WebhookEndpoint, alert_id: str, body: bytes) -> tuple[int | None, str | None, str | None]:
        headers = signing.headers(e.secret.get_secret_value(), alert_id, int(time.time()), body)
        assert self._session is not None
        try:
            async with self._session.post(e.url, data=body, headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=e.timeout_s)) as resp:
                await resp.read()
                return resp.status, resp.headers.get("Retry-After"), None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return None, None, f"{type(exc).__name__}: {exc}"[:200]

    async def _settle(self, e: WebhookEndpoint, m: str, body: bytes, attempts: list[dict[str, Any]],
                      status: int | None, retry_after: str | None) -> None:
        verdict = schedule.classify(status)
        key = self.keys.delivery(m)
        if verdict == "delivered":
            async with self.r.pipeline(transaction=True) as pipe:
                pipe.zrem(self.keys.pending, m)
                pipe.delete(key)
                pipe.zadd(self.keys.done, {m: time.time()})
                pipe.zremrangebyscore(self.keys.done, "-inf", time.time() - DONE_FOR_S)
                pipe.hincrby(self.keys.stats, f"{e.name}:{status}", 1)
                pipe.hincrby(self.keys.stats, "delivered", 1)
                await pipe.execute()
            return
        await self.r.hincrby(self.keys.stats, f"{e.name}:{status or 'error'}", 1)
        if verdict == "gone":
            log.error("webhook endpoint %s answered 410 Gone: disabled; 'streamproc webhooks enable %s' "
                      "re-enables it", e.name, e.name)
            await self.r.hset(self.keys.disabled, e.name, orjson.dumps({"at": time.time(), "status": 410}))
            await self._dead(m, body, attempts, "endpoint answered 410 Gone")
            return
        later = schedule.next_attempt(self.policy, len(attempts), time.time(), retry_after if status in (429, 503) else None,
                                      self.rng)
        if later is None:
            await self._dead(m, body, attempts, f"no 2xx answer after {len(attempts)} attempts")
            return
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(key, "attempts", orjson.dumps(attempts))
            pipe.zadd(self.keys.pending, {m: later})
            await pipe.execute()

    async def _dead(self, m: str, body: bytes, attempts: list[dict[str, Any]], why: str) -> None:
        name, alert_id = m.split("|", 1)
        record = {"member": m, "endpoint": name, "alert_id": alert_id, "reason": why, "attempts": attempts,
                  "dead_at": round(time.time(), 3), "body": body.decode()}
        log.warning("webhook %s to %s dead-lettered: %s", alert_id, name, why)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.dead, m, orjson.dumps(record))
            pipe.zrem(self.keys.pending, m)
            pipe.delete(self.keys.delivery(m))
            pipe.hincrby(self.keys.stats, "dead", 1)
            await pipe.execute()


# ----- operations: dead letters, replay, endpoints -----------------------------------------------
async def dead_letters(client: aioredis.Redis, prefix: str) -> list[dict[str, Any]]:
    raw = await client.hgetall(Keys(prefix).dead)
    return sorted((orjson.loads(v) for v in raw.values()), key=lambda d: d["dead_at"])


async def replay(client: aioredis.Redis, prefix: str, members: list[str]) -> int:
    """Queue dead-lettered deliveries again, now, under the same id (their attempts are kept)."""
    keys, n = Keys(prefix), 0
    for m in members:
        raw = await client.hget(keys.dead, m)
        if raw is None:
            continue
        d = orjson.loads(raw)
        attempts = d["attempts"] + [{"at": round(time.time(), 3), "status": None, "error": "replayed"}]
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.delivery(m), mapping={"body": d["body"].encode(), "attempts": orjson.dumps([]),
                                                 "history": orjson.dumps(attempts), "queued_at": time.time()})
            pipe.zadd(keys.pending, {m: time.time()})
            pipe.hdel(keys.dead, m)
            await pipe.execute()
        n += 1
    return n


async def status(client: aioredis.Redis, prefix: str) -> dict[str, Any]:
    keys = Keys(prefix)
    stats = {k.decode(): int(v) for k, v in (await client.hgetall(keys.stats)).items()}
    return {"pending": await client.zcard(keys.pending), "dead": await client.hlen(keys.dead),
            "delivered_recently": await client.zcard(keys.done),
            "disabled": sorted(k.decode() for k in await client.hkeys(keys.disabled)), "counts": stats}


async def enable(client: aioredis.Redis, prefix: str, name: str) -> bool:
    return bool(await client.hdel(Keys(prefix).disabled, name))
