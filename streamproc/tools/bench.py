"""``streamproc bench``: end-to-end throughput and latency of the worker, against the rate of
a do-nothing Faust agent on the same broker, in one run.

1. A backlog of generated events (about four months of history, dated so that its last
   event falls at the moment the bench starts) is published to the input topics.
2. The do-nothing agent consumes it: ``noop_events_per_s`` (first to last record).
3. The worker consumes it: ``events_per_s`` (start of first batch to end of last, from Redis).
4. With the worker caught up, events of new customers are published at a steady rate, dated
   "now": they continue the backlog's event time, so the watermark moves by the minutes the
   bench has run, not by months, and no burst of event-time timers rides on them. The
   latency measured is that of steady live traffic: each event yields a lifecycle change on
   ``segments``, and the time from its publication to its output record's timestamp gives
   ``p50_ms`` and ``p99_ms``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from streamproc.contracts import Contracts, load_contracts
from streamproc.errors import StackError
from streamproc.ingest.pseudonym import Pseudonymiser
from streamproc.ops.produce import ProducerRecord, event_records, publish
from streamproc.ops.stats import StatsReader
from streamproc.runtime.admin import bootstrap
from streamproc.settings import Settings
from streamproc.tools.demo import first_events
from streamproc.tools.dev import prepare
from streamproc.tools.stack import Stack, free_port, scratch_dir, spawn, start_worker, stop_process


@dataclass(frozen=True)
class BenchOptions:
    events: int = 50000
    latency_events: int = 2000
    latency_rate: float = 1000.0
    seed: int = 11
    timeout_s: float = 600.0


def backlog(opts: BenchOptions, end: datetime | None = None) -> list[dict[str, Any]]:
    """``opts.events`` generated events over about 120 days, shifted in time so that the last
    one is at ``end`` (the current time by default)."""
    events = list(first_events(opts.events, days=120, seed=opts.seed))
    if not events:
        return events
    end = end or datetime.now(timezone.utc)
    shift = end.replace(microsecond=end.microsecond // 1000 * 1000) - datetime.fromisoformat(events[-1]["ts"])
    return [_shifted(e, shift) for e in events]


def _shifted(event: dict[str, Any], by: timedelta) -> dict[str, Any]:
    return {**event, "ts": (datetime.fromisoformat(event["ts"]) + by).isoformat()}


def _wait(check: Callable[[], bool], procs: list[Any], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if any(p.poll() is not None for p in procs):
            raise StackError(f"a process exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.2)


def noop_rate(stack: Stack, n: int, opts: BenchOptions) -> float:
    out = stack.workdir / "noop.json"
    env = {**stack.env(), "STREAMPROC_WEB_PORT": str(free_port())}
    proc = spawn([sys.executable, "-m", "streamproc", "bench-noop", "--target", str(n), "--out", str(out)],
                 stack.workdir / "noop.log", env)
    try:
        _wait(out.exists, [proc], opts.timeout_s, "the do-nothing agent")
    finally:
        stop_process(proc)
    r = orjson.loads(out.read_bytes())
    return r["events"] / max(r["last_at"] - r["first_at"], 1e-9)


def worker_rate(stack: Stack, worker: Any, n: int, opts: BenchOptions) -> float:
    reader = StatsReader(stack.redis_url)
    _wait(lambda: reader.snapshot(0).processed >= n, [worker], opts.timeout_s, "the worker")
    c = reader.snapshot(0).counters
    return n / max(c["last_at"] - c["first_at"], 1e-9)


def latency_events(n: int, sent_at: dict[str, float], contracts: Contracts, keys: Pseudonymiser) -> Iterator[ProducerRecord]:
    """Single clicks of brand-new customers at the current time, each stamped (under the key
    its id gets at ingestion) with the moment it is handed to the producer."""
    for i in range(n):
        now = time.time()
        e = {"event_id": f"lat-{i}", "type": "clickstream", "customer_id": f"LAT{i:06d}",
             "ts": datetime.fromtimestamp(now, timezone.utc).isoformat(), "session_id": f"lat-{i}",
             "page": "/", "action": "page_view"}
        sent_at[keys.key("event", e["event_id"])] = now
        yield from event_records(contracts, [e])


async def _collect(kafka_url: str, topic: str, ids: dict[str, float], timeout_s: float) -> list[float]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap(kafka_url), auto_offset_reset="earliest",
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    lat: dict[str, float] = {}
    try:
        deadline = time.monotonic() + timeout_s
        while len(lat) < len(ids) and time.monotonic() < deadline:
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                for m in msgs:
                    cause = orjson.loads(m.value).get("cause_event_id")
                    if cause in ids:
                        lat[cause] = m.timestamp / 1000 - ids[cause]
    finally:
        await consumer.stop()
    return sorted(lat.values())


def latencies(stack: Stack, contracts: Contracts, opts: BenchOptions, keys: Pseudonymiser) -> list[float]:
    sent_at: dict[str, float] = {}
    records = latency_events(opts.latency_events, sent_at, contracts, keys)
    asyncio.run(publish(stack.kafka_url, records, rate=opts.latency_rate, chunk=100))
    lat = asyncio.run(_collect(stack.kafka_url, contracts.one("segments").name, sent_at, 60))
    if len(lat) < opts.latency_events:
        raise StackError(f"only {len(lat)} of {opts.latency_events} latency events reached the segments topic")
    return lat


def _pct(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000, 2)


def run_bench(settings: Settings, opts: BenchOptions, say: Callable[[str], None]) -> dict[str, Any]:
    contracts = load_contracts(settings.topics_dir)
    events = backlog(opts)
    with scratch_dir("streamproc-bench-") as workdir, prepare(settings, workdir) as stack:
        say(f"publishing a backlog of {len(events):,} events")
        asyncio.run(publish(stack.kafka_url, event_records(contracts, events)))
        say("measuring the do-nothing Faust agent")
        noop = noop_rate(stack, len(events), opts)
        say(f"  {noop:,.0f} events/s; measuring the worker")
        worker = start_worker(stack.env(), workdir / "worker.log")
        try:
            rate = worker_rate(stack, worker, len(events), opts)
            say(f"  {rate:,.0f} events/s; measuring latency at {opts.latency_rate:,.0f} events/s")
            lat = latencies(stack, contracts, opts, settings.pseudonymiser())
        finally:
            stop_process(worker)
    return {
        "events": len(events), "events_per_s": round(rate, 1), "noop_events_per_s": round(noop, 1),
        "ratio": round(rate / noop, 3), "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99),
        "latency_events": len(lat), "latency_rate": opts.latency_rate, "batch_size": settings.batch_size,
    }
