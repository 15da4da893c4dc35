"""CRM webhooks on real processes: a real broker and Redis, a real HTTP receiver that fails, throttles,
goes down, and a delivery process that is SIGKILLed mid-stream. Every alert arrives, repeats carry the
same id, and every signature checks out with an independent implementation (``standardwebhooks``)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import redis
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from streamproc.contracts import Contracts
from streamproc.delivery.signing import new_secret
from streamproc.ops.produce import publish
from streamproc.records import Alert, Fact
from streamproc.runtime.webhooks import Deliverer, dead_letters, replay, status
from streamproc.settings import Settings
from streamproc.tools.crm import CrmReceiver
from streamproc.tools.stack import spawn, stop_process
from tests.conftest import FAST_WORKER
from tests.live import report, wait_for

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
FAST_RETRIES = "[0, 0.5, 1, 2, 4, 8, 15" + ", 5" * 15 + "]"
"""The Standard Webhooks schedule compressed: 30 s of backoff (the outage's length), then every 5 s;
21 attempts, so that none of the alerts reaches its last one while the receiver fails 40 % of requests."""


def independent(secret: str):  # noqa: ANN201 - the receiver's verifier, not streamproc's code
    hook = Webhook(secret)

    def verify(headers: Mapping[str, str], body: bytes) -> bool:
        try:
            hook.verify(body, {k.lower(): v for k, v in headers.items()})
        except WebhookVerificationError:
            return False
        return True

    return verify


def alerts(n: int, start: int = 0, held_every: int = 10) -> list[tuple[str, bytes, bytes]]:
    out = []
    for i in range(start, start + n):
        a = Alert(customer_id=f"k1_{i:05d}", ts=T0 + timedelta(minutes=i), rule="cart_abandoned", severity="info",
                  message=f"cart {i}", cause_event_id=None, trigger="cart_abandoned", action="cart reminder",
                  facts=(Fact("event.value", ">", 0, 12.5),), held_out=(i + 1) % held_every == 0,
                  control="global" if (i + 1) % held_every == 0 else None)
        out.append(("alerts", a.customer_id.encode(), orjson.dumps(a.to_dict())))
    return out


def env_for(base: dict[str, str], receiver: CrmReceiver, secret: str, name: str = "crm") -> dict[str, str]:
    return {**base, "STREAMPROC_WEBHOOKS": orjson.dumps([{"name": name, "url": receiver.url, "secret": secret,
                                                          "timeout_s": 2, "concurrency": 8}]).decode(),
            "STREAMPROC_WEBHOOK_RETRY_S": FAST_RETRIES}


def start_deliverer(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-m", "streamproc", "webhooks", "run"], log, env)


def test_webhooks_survive_failures_throttling_an_outage_and_a_sigkill(kafka_url, redis_url, tmp_path: Path) -> None:
    secret = new_secret()
    receiver = CrmReceiver(secret, fail_share=0.3, throttle_share=0.1, retry_after_s=1, seed=5,
                           verify=independent(secret)).start()
    env = env_for({**os.environ, **FAST_WORKER, "STREAMPROC_KAFKA_URL": kafka_url, "STREAMPROC_REDIS_URL": redis_url},
                  receiver, secret)
    log = tmp_path / "deliverer.log"
    try:
        deliverer = start_deliverer(env, log)
        first, second, third = alerts(150), alerts(150, 150), alerts(100, 300)
        asyncio.run(publish(kafka_url, first))
        wait_for(lambda: len(receiver.delivered_ids()) >= 60, 60, "first deliveries")
        receiver.set_down(True)  # down for 30 s while more alerts arrive
        down_at = time.monotonic()
        asyncio.run(publish(kafka_url, second))
        time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
        receiver.set_down(False)
        wait_for(lambda: len(receiver.received) > 0 and receiver.received[-1].at > time.time() - 1, 30, "traffic again")
        deliverer.send_signal(signal.SIGKILL)  # mid-stream: deliveries claimed, alerts consumed but not committed
        deliverer.wait(10)
        asyncio.run(publish(kafka_url, third))
        deliverer = start_deliverer(env, log)
        expected = {orjson.loads(v)["event_id"] for _, _, v in first + second + third if not orjson.loads(v)["held_out"]}
        missing = receiver.wait_for(expected, 240)
        time.sleep(2)  # let late repeats show
        received = receiver.received
        ok = [r for r in received if 200 <= r.status < 300]
        per_id = Counter(r.msg_id for r in ok)
        store = redis.Redis.from_url(redis_url, decode_responses=True)
        dead = store.hlen("sp:wh:dead")
        sent = {k.split(":", 1)[1]: int(v) for k, v in store.hgetall("sp:wh:stats").items() if k.startswith("crm:")}
        figures = {
            "alerts": len(first + second + third), "to deliver (not held out)": len(expected), "dead letters": dead,
            "delivered": len(set(per_id) & expected), "attempts": len(received),
            "answers": dict(Counter(r.status for r in received)), "repeats": sum(c - 1 for c in per_id.values()),
            "lost": len(missing), "verified": f"{sum(r.verified for r in received)}/{len(received)}",
            "attempts made, by answer (error: refused, cut off or timed out)": sent,
        }
        report(f"webhook faults: {figures}")
        print(figures)
        assert not missing, f"{len(missing)} alerts never delivered"
        assert set(per_id) <= expected  # held-out customers get nothing, repeats only of the same ids
        assert all(r.verified for r in received)
        assert {r.status for r in received} >= {204, 500, 429}
        assert sent.get("error", 0) > 0  # the outage refused attempts
        assert log.read_text().count("webhook delivery to crm") == 2
    finally:
        stop_process(deliverer)
        receiver.stop()


def test_a_410_disables_the_endpoint_dead_letters_keep_every_attempt_and_replay_resends_the_same_id(
        kafka_url, redis_url, contracts: Contracts) -> None:
    secret = new_secret()
    receiver = CrmReceiver(secret, fail_share=1.0, verify=independent(secret)).start()
    s = Settings(kafka_url=kafka_url, redis_url=redis_url, webhook_retry_s=(0, 0.2, 0.2),
                 webhooks=[{"name": "crm", "url": receiver.url, "secret": secret, "timeout_s": 2}])

    async def scenario() -> tuple[list, int, dict, list]:
        from streamproc.runtime.assemble import redis_client

        client = redis_client(s)
        d = Deliverer(s, client, contracts.one("alerts").name)
        task = asyncio.ensure_future(d.run())
        await publish(kafka_url, alerts(3, held_every=1000))
        while len(await dead_letters(client, s.key_prefix)) < 3:
            await asyncio.sleep(0.2)
        dead = await dead_letters(client, s.key_prefix)
        receiver.fail_share = 0.0
        n = await replay(client, s.key_prefix, [x["member"] for x in dead])
        while (await status(client, s.key_prefix))["counts"].get("delivered", 0) < 3:
            await asyncio.sleep(0.2)
        receiver.gone = True
        await publish(kafka_url, alerts(1, start=10, held_every=1000))
        while len(await dead_letters(client, s.key_prefix)) < 1:
            await asyncio.sleep(0.2)
        st = await status(client, s.key_prefix)
        gone = await dead_letters(client, s.key_prefix)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        return dead, n, st, gone

    try:
        dead, n, st, gone = asyncio.run(asyncio.wait_for(scenario(), 90))
    finally:
        receiver.stop()
    assert [[a["status"] for a in d["attempts"]] for d in dead] == [[500, 500, 500]] * 3
    assert n == 3 and st["disabled"] == ["crm"]
    by_id = Counter(r.msg_id for r in receiver.received)
    assert all(by_id[d["alert_id"]] == 4 for d in dead)  # three failures, then the replay, same id
    assert {r.msg_id for r in receiver.received if r.status == 204} == {d["alert_id"] for d in dead}
    assert gone[0]["reason"] == "endpoint answered 410 Gone" and [a["status"] for a in gone[0]["attempts"]] == [410]
