"""Fault injection against the real broker, Redis and worker processes.

Each test publishes a generated stream, injects one fault, waits until every record is
processed and compares the worker's final Redis state with a single-pass reference
computation (``streamproc.testing.reference``), then checks the output topics: records that repeat
must repeat with identical ids and content, every customer has exactly one "new" change,
and the stage counts agree with the stored profiles.

``FAULT_EVENTS`` sets the stream length (20,000 by default; ``FAULT_EVENTS=200000
scripts/test tests/test_faults.py`` for the long run). Figures are printed in the summary.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.contracts import Contracts
from streamproc.ops.dlq import read_all
from streamproc.ops.produce import ProducerRecord, event_records, publish, raw_records
from streamproc.ops.stats import StatsReader
from streamproc.settings import Settings
from streamproc.sim.dirty import DirtyRates, dirty
from streamproc.sim.generator import GeneratorConfig, generate
from streamproc.testing.reference import compare, reference
from streamproc.tools.stack import free_port, start_redis, stop_process
from tests.live import processed, report, wait_for

N = int(os.environ.get("FAULT_EVENTS", "20000"))
LIMIT_S = max(300, N // 100)  # generous: about ten times the time a healthy worker needs
pytestmark = pytest.mark.timeout(LIMIT_S)
PAUSE_S = float(os.environ.get("FAULT_PAUSE_S", "30"))


def events(seed: int) -> list[dict[str, Any]]:
    customers = max(20, N // 250)
    return list(generate(GeneratorConfig(customers=customers, days=120, seed=seed)))[:N]


def wait_processed(redis_url: str, target: int, procs: list[Any], timeout_s: float = LIMIT_S) -> None:
    def done() -> bool:
        assert all(p.poll() is None for p in procs), "a process died"
        return processed(redis_url) >= target
    wait_for(done, timeout_s, f"{target} records processed")


def check_outputs(kafka_url: str, contracts: Contracts, reader: StatsReader) -> int:
    """Output invariants; returns how many output records were repeats (identical by id)."""
    seen: dict[str, bytes] = {}
    repeats = 0
    for role in ("segments", "alerts"):
        for rec in asyncio.run(read_all(kafka_url, contracts.one(role).name)):
            body = orjson.dumps(rec, option=orjson.OPT_SORT_KEYS)
            if rec["event_id"] in seen:
                assert seen[rec["event_id"]] == body, f"id {rec['event_id']} repeated with other content"
                repeats += 1
            seen[rec["event_id"]] = body
    profiles = reader.all_profiles()
    news = Counter(orjson.loads(b)["customer_id"] for b in seen.values() if orjson.loads(b).get("new") == "new")
    assert news == Counter(profiles.keys()), "each customer must have exactly one 'new' change"
    assert reader.snapshot(0).lifecycle == dict(Counter(p.stage for p in profiles.values()))
    return repeats


def verify(name: str, records: list[ProducerRecord], contracts: Contracts, redis_url: str, kafka_url: str,
           recover_s: float | None = None) -> None:
    reader = StatsReader(redis_url)
    expected = reference(records, contracts, Settings())
    snap = reader.snapshot(0)
    problems = compare(expected, reader.all_profiles(), {k: snap.count(k) for k in ("applied", "duplicates", "dead_lettered")})
    assert problems == [], "\n".join([str(snap.counters)] + problems[:20])
    assert snap.dead_letter_reasons == {k[4:]: v for k, v in expected.counters.items() if k.startswith("dlq:")}
    assert snap.count("applied") + snap.count("duplicates") + snap.count("dead_lettered") == len(records)
    repeats = check_outputs(kafka_url, contracts, reader)
    report(f"{name:<22} in={len(records):>7,} applied={snap.count('applied'):>7,} "
           f"dead_lettered={snap.count('dead_lettered'):>5,} duplicates={snap.count('duplicates'):>5,} "
           f"redelivered={snap.count('redelivered'):>5,} repeated_outputs={repeats:>4,} "
           f"recover_s={'-' if recover_s is None else f'{recover_s:.1f}'}")


def first_progress_after(redis_url: str, since: int, timeout_s: float = 120) -> float:
    t0 = time.monotonic()
    wait_for(lambda: processed(redis_url) > since, timeout_s, "progress after the fault")
    return time.monotonic() - t0


def test_worker_sigkill_and_restart(kafka_url, redis_url, worker_env, spawn_worker, contracts):
    records = list(event_records(contracts, events(seed=21)))
    asyncio.run(publish(kafka_url, records))
    worker = spawn_worker(worker_env)
    recover = []
    for share in (0.25, 0.5, 0.75):
        wait_processed(redis_url, int(len(records) * share), [worker])
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        before = processed(redis_url)
        worker = spawn_worker(worker_env, f"worker-after-kill-{share}")
        recover.append(first_progress_after(redis_url, before))
    wait_processed(redis_url, len(records), [worker])
    verify("worker SIGKILL x3", records, contracts, redis_url, kafka_url, max(recover))


def processing_child(worker: Any) -> int:
    """The pid of the worker's processing process (``runtime.offload``): its child started by
    multiprocessing's spawn (not the resource tracker, its other child)."""
    for pid in (Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()):
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return int(pid)
        except OSError:
            continue
    raise AssertionError("the worker has no processing process")


def test_processing_process_sigkill_ends_the_worker(kafka_url, redis_url, worker_env, spawn_worker, contracts):
    records = list(event_records(contracts, events(seed=26)))
    asyncio.run(publish(kafka_url, records))
    worker = spawn_worker(worker_env)
    recover = []
    wait_processed(redis_url, len(records) // 2, [worker])
    os.kill(processing_child(worker), signal.SIGKILL)
    assert worker.wait(60) == 1
    before = processed(redis_url)
    worker = spawn_worker(worker_env, "worker-after-child-kill")
    recover.append(first_progress_after(redis_url, before))
    wait_processed(redis_url, len(records), [worker])
    verify("processing SIGKILL", records, contracts, redis_url, kafka_url, max(recover))


def test_redis_killed_and_restarted(kafka_url, worker_env, spawn_worker, contracts, tmp_path: Path):
    port = free_port()
    proc, url = start_redis(tmp_path / "aof", appendonly=True, port=port)
    env = {**worker_env, "STREAMPROC_REDIS_URL": url}
    records = list(event_records(contracts, events(seed=22)))
    asyncio.run(publish(kafka_url, records))
    worker = spawn_worker(env)
    try:
        wait_processed(url, len(records) // 3, [worker])
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(2)
        proc, _ = start_redis(tmp_path / "aof", appendonly=True, port=port)
        t0 = time.monotonic()
        wait_for(lambda: processed(url) >= 0, LIMIT_S, "Redis to load its append-only file")
        first_progress_after(url, processed(url), LIMIT_S)
        recover = time.monotonic() - t0
        wait_processed(url, len(records), [worker])
        verify("redis SIGKILL+restart", records, contracts, url, kafka_url, recover)
    finally:
        stop_process(proc)


def test_duplicates_malformed_and_invalid(kafka_url, redis_url, worker_env, spawn_worker, contracts):
    counts: Counter[str] = Counter()
    pairs = dirty(events(seed=23), seed=23, rates=DirtyRates(0.05, 0.01, 0.01, 0.02), counts=counts)
    records = list(raw_records(contracts, pairs))
    asyncio.run(publish(kafka_url, records))
    spawn_worker(worker_env)
    wait_processed(redis_url, len(records), [])
    snap = StatsReader(redis_url).snapshot(0)
    assert snap.count("duplicates") == counts["duplicate"]
    assert snap.count("dead_lettered") >= counts["malformed"] + counts["invalid"]
    verify("5% dup, 1%+1% bad", records, contracts, redis_url, kafka_url)


def shuffled_in_time(evs: list[dict[str, Any]], rng: random.Random) -> tuple[list[dict[str, Any]], int]:
    """Some events moved back in event time: most within the allowed lateness, a few far beyond."""
    out, far = [], 0
    for e in evs:
        r = rng.random()
        if r < 0.05:
            e = {**e, "ts": (datetime.fromisoformat(e["ts"]) - timedelta(seconds=rng.uniform(1, 240))).isoformat()}
        elif r < 0.055:
            e = {**e, "ts": (datetime.fromisoformat(e["ts"]) - timedelta(days=2)).isoformat()}
            far += 1
        out.append(e)
    return out, far


def test_out_of_order_within_and_beyond_lateness(kafka_url, redis_url, worker_env, spawn_worker, contracts):
    evs, far = shuffled_in_time(events(seed=24), random.Random(24))
    records = list(event_records(contracts, evs))
    asyncio.run(publish(kafka_url, records))
    spawn_worker(worker_env)
    wait_processed(redis_url, len(records), [])
    late = sum(StatsReader(redis_url).snapshot(0).by_prefix("late").values())
    assert 0 < late <= far
    verify("out of order (+late)", records, contracts, redis_url, kafka_url)


def test_broker_paused(kafka_url, redis_url, worker_env, spawn_worker, contracts, broker_proc: Callable[[], Any]):
    records = list(event_records(contracts, events(seed=25)))
    asyncio.run(publish(kafka_url, records))
    worker = spawn_worker(worker_env)
    wait_processed(redis_url, len(records) // 3, [worker])
    broker = broker_proc()
    broker.send_signal(signal.SIGSTOP)
    time.sleep(PAUSE_S)
    broker.send_signal(signal.SIGCONT)
    recover = first_progress_after(redis_url, processed(redis_url))
    wait_processed(redis_url, len(records), [worker])
    verify(f"broker paused {PAUSE_S:.0f}s", records, contracts, redis_url, kafka_url, recover)
