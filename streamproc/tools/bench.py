"""``streamproc bench``: events/s of the worker against a Faust agent that does nothing, in
alternating runs, and the latency of steady live traffic.

A backlog of generated events (about four months of history, dated so that its last event
falls at the moment the bench starts) is made once. Each of ``repeat`` rounds then starts a
broker and a Redis of its own, so that every round begins from the same empty state, and:

1. publishes the backlog to the input topics;
2. runs the do-nothing agent over it: one do-nothing rate (first to last record);
3. runs the worker over it: one worker rate (start of first batch to end of last, from Redis).

So the two sides alternate (do-nothing, worker, do-nothing, worker, ...) on the same events.
The report gives each side's median events/s, its min, max and every run's rate, the ratio of
the medians (worker / do-nothing), and the 1-minute load average sampled every second from
before the first round to after the last: the rates move by a quarter or more with whatever
else the machine does, so they mean something only when ``load_average`` stayed low.

4. In the last round, with the worker caught up, events of new customers are published at a
   steady rate, dated "now": they continue the backlog's event time, so the watermark moves
   by the minutes the bench has run, not by months, and no burst of event-time timers rides
   on them. The latency measured is that of steady live traffic: each event yields a
   lifecycle change on ``segments``, and the time from its publication to its output
   record's timestamp gives ``p50_ms`` and ``p99_ms``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from streamproc.contracts import Contracts, load_contracts
from streamproc.delivery.signing import new_secret
from streamproc.errors import ConfigError, StackError
from streamproc.ingest.pseudonym import Pseudonymiser
from streamproc.ops.produce import ProducerRecord, event_records, publish
from streamproc.ops.stats import StatsReader
from streamproc.runtime.admin import bootstrap
from streamproc.settings import Settings
from streamproc.tools.crm import CrmReceiver
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
    repeat: int = 3
    rules: str | None = None
    """The worker's rules file; ``"none"``: no trigger rules at all; None: the default rules."""
    webhook: bool = False
    """Deliver alerts to one local webhook endpoint (``tools.crm``) from the worker."""
    offers: bool = True
    """The item model and offers on (False: ``STREAMPROC_OFFERS=false``)."""
    api_reads: int = 0
    """Most profile reads (``GET /v1/customers/{id}``) to make while the worker applies the backlog:
    they start once its web server answers and stop when it has applied everything."""
    api_concurrency: int = 8
    api_rate: float = 0.0
    """Reads a second at most (0: as fast as the worker answers)."""

    @property
    def steps(self) -> int:
        """Steps shown by the progress bar: publish, do-nothing, worker per round, then latency."""
        return 3 * self.repeat + 1


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


def latency_events(n: int, sent_at: dict[str, float], contracts: Contracts, pseudonyms: Pseudonymiser) -> Iterator[ProducerRecord]:
    """Single clicks of brand-new customers at the current time, each stamped (under the key
    its id gets at ingestion) with the moment it is handed to the producer."""
    for i in range(n):
        now = time.time()
        e = {"event_id": f"lat-{i}", "type": "clickstream", "customer_id": f"LAT{i:06d}",
             "ts": datetime.fromtimestamp(now, timezone.utc).isoformat(), "session_id": f"lat-{i}",
             "page": "/", "action": "page_view"}
        sent_at[pseudonyms.key("event", e["event_id"])] = now
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


def latencies(stack: Stack, contracts: Contracts, opts: BenchOptions, pseudonyms: Pseudonymiser) -> list[float]:
    sent_at: dict[str, float] = {}
    records = latency_events(opts.latency_events, sent_at, contracts, pseudonyms)
    asyncio.run(publish(stack.kafka_url, records, rate=opts.latency_rate, chunk=100))
    lat = asyncio.run(_collect(stack.kafka_url, contracts.one("segments").name, sent_at, 60))
    if len(lat) < opts.latency_events:
        raise StackError(f"only {len(lat)} of {opts.latency_events} latency events reached the segments topic")
    return lat


def _pct(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000, 2)


def spread(rates: list[float]) -> dict[str, Any]:
    """Median, min, max and every run's rate, in events/s.

    >>> spread([4216.0, 10196.04, 5000.0])
    {'median': 5000.0, 'min': 4216.0, 'max': 10196.0, 'runs': [4216.0, 10196.0, 5000.0]}
    """
    runs = [round(r, 1) for r in rates]
    return {"median": round(statistics.median(rates), 1), "min": min(runs), "max": max(runs), "runs": runs}


class LoadSampler:
    """The machine's 1-minute load average (``os.getloadavg``), sampled on entry, every
    ``every_s`` seconds in a background thread, and on exit."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s, self.samples = every_s, [os.getloadavg()[0]]
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self.every_s):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, Any]:
        """Load at the start, the highest and the last sample, and the CPUs it compares with."""
        return {"start": round(self.samples[0], 2), "max": round(max(self.samples), 2),
                "end": round(self.samples[-1], 2), "samples": len(self.samples), "cpus": os.cpu_count()}


class Reporter(Protocol):
    """Where the bench tells what it is doing: ``step`` starts a step, ``note`` keeps a line."""

    def step(self, what: str) -> None: ...

    def note(self, message: str) -> None: ...


@dataclass(frozen=True)
class RoundResult:
    """The rates of one round, in events/s, and the latencies in seconds if it timed them."""

    noop_rate: float
    worker_rate: float
    latencies: list[float] | None
    reads: list[float] | None = None
    """Seconds each profile read took, if the round made them."""
    read_span_s: float = 0.0


class Reads(threading.Thread):
    """Profile reads against the worker's API over loopback, at ``concurrency``, until ``n`` are made
    or ``stop`` is set; ``seconds`` of each successful read."""

    def __init__(self, url: str, token: str, ids: list[str], n: int, concurrency: int, rate: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.ids, self.n, self.concurrency = url, token, ids, n, concurrency
        self.rate = rate
        self._next = 0.0
        self.seconds: list[float] = []
        self.errors = 0
        self.stop = threading.Event()
        self.started = self.ended = 0.0

    def run(self) -> None:
        asyncio.run(self._all())

    async def _all(self) -> None:
        import aiohttp

        left = iter(range(self.n))
        headers = {"Authorization": f"Bearer {self.token}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            while not self.stop.is_set():  # from the moment the worker's web server answers
                try:
                    async with session.get(f"{self.url}/livez") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            self.started = time.monotonic()
            async def one_by_one() -> None:
                for i in left:
                    if self.stop.is_set():
                        return
                    if self.rate:  # at most ``rate`` reads a second, over all the coroutines
                        self._next = max(self._next, time.monotonic()) + 1 / self.rate
                        await asyncio.sleep(max(self._next - 1 / self.rate - time.monotonic(), 0.0))
                    started = time.perf_counter()
                    try:
                        async with session.get(f"{self.url}/v1/customers/{self.ids[i % len(self.ids)]}") as resp:
                            await resp.read()
                            ok = resp.status in (200, 404)
                    except aiohttp.ClientError:
                        ok = False
                    if ok:
                        self.seconds.append(time.perf_counter() - started)
                    else:
                        self.errors += 1
                        await asyncio.sleep(0.05)
            await asyncio.gather(*(one_by_one() for _ in range(self.concurrency)))
            self.ended = time.monotonic()


def worker_env(opts: BenchOptions, workdir: Path, receiver: CrmReceiver | None) -> dict[str, str]:
    """What the bench changes in the worker's environment: its rules, its webhook endpoint."""
    env: dict[str, str] = {"STREAMPROC_OFFERS": "true" if opts.offers else "false"}
    if opts.rules == "none":
        path = workdir / "no-rules.yaml"
        path.write_text("rules: []\n")
        env["STREAMPROC_RULES_FILE"] = str(path)
    elif opts.rules:
        env["STREAMPROC_RULES_FILE"] = str(Path(opts.rules).resolve())
    if receiver is not None:
        env["STREAMPROC_WEBHOOKS"] = orjson.dumps([{"name": "bench", "url": receiver.url, "secret": receiver.secret,
                                                    "concurrency": 8}]).decode()
    return env


def run_round(settings: Settings, events: list[dict[str, Any]], opts: BenchOptions, workdir: Path,
              report: Reporter, latency: bool, receiver: CrmReceiver | None = None) -> RoundResult:
    """One round on a fresh stack: publish the backlog, the do-nothing agent, the worker, and,
    if ``latency``, the latency of live traffic."""
    contracts = load_contracts(settings.topics_dir)
    with prepare(settings, workdir) as stack:
        report.step(f"publishing {len(events):,} events")
        asyncio.run(publish(stack.kafka_url, event_records(contracts, events)))
        report.step("the do-nothing agent")
        noop = noop_rate(stack, len(events), opts)
        report.step("the worker")
        port, token = free_port(), secrets.token_urlsafe(16)
        env = {**stack.env(), **worker_env(opts, workdir, receiver), "STREAMPROC_API_TOKENS": orjson.dumps(
            [{"name": "bench", "sha256": hashlib.sha256(token.encode()).hexdigest(), "scopes": ["profiles:read"]}]).decode()}
        worker = start_worker(env, workdir / "worker.log", port)
        reads = None
        if opts.api_reads:
            ids = sorted({e["customer_id"] for e in events})
            reads = Reads(f"http://127.0.0.1:{port}", token, ids, opts.api_reads, opts.api_concurrency, opts.api_rate)
            reads.start()
        try:
            rate = worker_rate(stack, worker, len(events), opts)
            if reads is not None:
                reads.stop.set()
                reads.join(30)
                span = max(reads.ended - reads.started, 1e-9)
                report.note(f"{len(reads.seconds):,} profile reads in {span:.1f}s while the worker ran "
                            f"({len(reads.seconds) / span:,.0f}/s, {reads.errors} failed)")
            report.note(f"do-nothing agent {noop:,.0f} events/s, worker {rate:,.0f} events/s")
            timed = reads.seconds if reads is not None else None
            span = reads.ended - reads.started if reads is not None else 0.0
            if not latency:
                return RoundResult(noop, rate, None, timed, span)
            report.step(f"latency at {opts.latency_rate:,.0f} events/s")
            return RoundResult(noop, rate, latencies(stack, contracts, opts, settings.pseudonymiser()), timed, span)
        finally:
            stop_process(worker)


class _RoundReporter:
    """Prefixes what a round reports with ``round n/of``."""

    def __init__(self, report: Reporter, n: int, of: int) -> None:
        self.report, self.prefix = report, f"round {n}/{of}: "

    def step(self, what: str) -> None:
        self.report.step(self.prefix + what)

    def note(self, message: str) -> None:
        self.report.note(self.prefix + message)


def run_bench(settings: Settings, opts: BenchOptions, report: Reporter) -> dict[str, Any]:
    """``opts.repeat`` rounds, each on a broker and Redis of its own; the report as a dict."""
    if settings.kafka_url or settings.redis_url:
        raise ConfigError("bench starts a fresh broker and Redis for every round: "
                          "unset STREAMPROC_KAFKA_URL and STREAMPROC_REDIS_URL")
    events = backlog(opts)
    rounds: list[RoundResult] = []
    receiver = CrmReceiver(new_secret()).start() if opts.webhook else None
    try:
        with LoadSampler() as load, scratch_dir("streamproc-bench-") as workdir:
            for n in range(1, opts.repeat + 1):
                rounds.append(run_round(settings, events, opts, workdir / f"round-{n}",
                                        _RoundReporter(report, n, opts.repeat), latency=n == opts.repeat,
                                        receiver=receiver))
    finally:
        if receiver is not None:
            receiver.stop()
    out = summary(rounds, len(events), opts, settings, load.summary())
    out["rules"] = opts.rules or "default"
    out["offers"] = opts.offers
    timed = [s for r in rounds for s in (r.reads or [])]
    out["api_reads"] = None if not opts.api_reads else {
        "reads": len(timed), "concurrency": opts.api_concurrency, "rate_cap": opts.api_rate or None,
        "reads_per_s": round(len(timed) / max(sum(r.read_span_s for r in rounds), 1e-9)),
        "p50_ms": _pct(timed, 50) if timed else None,
        "p99_ms": _pct(timed, 99) if timed else None}
    out["webhooks_received"] = len(receiver.received) if receiver is not None else None
    return out


def summary(rounds: list[RoundResult], events: int, opts: BenchOptions, settings: Settings,
            load: dict[str, Any]) -> dict[str, Any]:
    """The report: each side's spread, the ratio of the medians, latency (last round) and load."""
    noop, worker = spread([r.noop_rate for r in rounds]), spread([r.worker_rate for r in rounds])
    lat = rounds[-1].latencies or []
    return {
        "events": events, "repeat": len(rounds), "worker_events_per_s": worker, "noop_events_per_s": noop,
        "ratio": float(f"{worker['median'] / noop['median']:.3g}"), "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99),
        "latency_events": len(lat), "latency_rate": opts.latency_rate, "batch_size": settings.batch_size,
        "load_average": load,
    }


class ProgressReporter:
    """A ``Reporter`` drawing a rich progress bar of ``total`` steps; notes stay above it."""

    def __init__(self, console: Console, total: int) -> None:
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True)
        self.task = self.progress.add_task("starting", total=total)
        self.started = 0

    def step(self, what: str) -> None:
        self.progress.update(self.task, description=what, completed=self.started)
        self.started += 1

    def note(self, message: str) -> None:
        self.progress.console.print(message)

    def __enter__(self) -> ProgressReporter:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()


def print_report(console: Console, r: dict[str, Any]) -> None:
    """The report as a short table and three lines."""
    table = Table(title=f"events/s over {r['events']:,} events, alternating, {r['repeat']} per side")
    for col in ("", "median", "min", "max", "runs"):
        table.add_column(col, justify="left" if col in ("", "runs") else "right")
    for name, key in (("do-nothing agent", "noop_events_per_s"), ("worker", "worker_events_per_s")):
        s = r[key]
        table.add_row(name, f"{s['median']:,.0f}", f"{s['min']:,.0f}", f"{s['max']:,.0f}",
                      " / ".join(f"{x:,.0f}" for x in s["runs"]))
    console.print(table)
    load = r["load_average"]
    console.print(f"ratio of medians (worker / do-nothing): {r['ratio']:.2f}")
    console.print(f"latency at {r['latency_rate']:,.0f} events/s: p50 {r['p50_ms']:,.0f} ms, "
                  f"p99 {r['p99_ms']:,.0f} ms ({r['latency_events']:,} events)")
    hooks = r.get("webhooks_received")
    if r.get("api_reads"):
        a = r["api_reads"]
        console.print(f"profile reads during the worker runs: {a['reads']:,} at concurrency {a['concurrency']}, "
                      f"p50 {a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms")
    console.print(f"worker rules: {r.get('rules', 'default')}; offers: {'on' if r.get('offers', True) else 'off'}; webhooks: "
                  + ("none" if hooks is None else f"one local endpoint, {hooks:,} requests received"))
    console.print(f"load average (1 min): start {load['start']}, max {load['max']}, end {load['end']} "
                  f"on {load['cpus']} CPUs (idle: near 0)")
