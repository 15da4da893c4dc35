"""The dead-letter path on real processes: reasons are counted, and a record rejected for an
unknown currency is replayed with ``streamproc dlq replay`` once the rate is configured."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import orjson

from streamproc.contracts import Contracts
from streamproc.ops.produce import event_records, publish
from streamproc.ops.stats import StatsReader
from streamproc.settings import Settings
from streamproc.tools.stack import stop_process
from tests.live import processed, wait_for

KEYS = Settings().pseudonymiser()


def cli(env: dict[str, str], *args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "streamproc", *args], env=env, capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode()
    return run.stdout.decode()


def order(eid: str, currency: str, total: float) -> dict:
    return {"event_id": eid, "type": "purchase", "customer_id": "D1", "ts": "2026-02-01T10:00:00Z",
            "order_id": f"o-{eid}", "items": [{"sku": "S", "quantity": 1, "price": total}], "total": total,
            "currency": currency}


def test_dlq_counts_and_replay_after_fix(kafka_url, redis_url, worker_env, spawn_worker, contracts: Contracts):
    worker = spawn_worker(worker_env)
    records = list(event_records(contracts, [order("p1", "EUR", 10.0), order("p2", "CHF", 100.0)]))
    records += [("purchases", b"D1", b'{"type": "purchase", "customer_id": "D1", "email": "d1@example.com"'),
                ("feedback", b"D1", orjson.dumps({"event_id": "f1", "type": "feedback", "customer_id": "D1",
                                                  "ts": "2026-02-01T10:00:00Z", "rating": 11, "channel": "web"}))]
    asyncio.run(publish(kafka_url, records))
    wait_for(lambda: processed(redis_url) == 4, 60, "4 records")

    summary = orjson.loads(cli(worker_env, "dlq", "--json").strip().splitlines()[-1])
    assert summary["total"] == 3
    assert summary["by_reason"] == {"unknown_currency": 1, "malformed_json": 1, "out_of_range": 1}
    assert "d1@example.com" not in orjson.dumps(summary).decode()
    assert "CHF" in summary["samples"]["unknown_currency"][0]["message"]

    stop_process(worker)
    spawn_worker({**worker_env, "STREAMPROC_FX_RATES": '{"EUR": 1.0, "CHF": 1.05}'}, "fixed-worker")
    out = cli(worker_env, "dlq", "replay", "--reason", "unknown_currency")
    assert "replayed 1 record(s)" in out
    reader = StatsReader(redis_url)
    customer = KEYS.customer("D1")
    wait_for(lambda: reader.profile(customer).purchases == 2, 60,
             f"the replayed purchase ({reader.snapshot(0).counters})")
    assert reader.profile(customer).spend == 115.0
